"""`ZoomCredentials`: a Server-to-Server OAuth app; builds an httpx client with a token."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from integrations.common import sandbox_timeout, ssl_context
from integrations.credentials import VendorCredentials

__all__ = ["ZoomCredentials"]


class ZoomCredentials(VendorCredentials):
    """Zoom Server-to-Server OAuth credentials (scope meeting:write).

    Example:
        ```python
        from integrations.video.block import ZoomCredentials
        zoom_credentials = ZoomCredentials.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane Zoom Credentials"

    account_id: str = Field(description="The Zoom account id.")
    client_id: str = Field(description="The OAuth app's client id.")
    client_secret: SecretStr = Field(description="The OAuth app's client secret.")
    user_id: str = Field(default="me", description="Whose meetings to create.")
    spare_hosts: list[str] = Field(default_factory=list, description=(
        "Users (ids or e-mails) who host the bridge, in this order, once `user_id` has spent "
        "Zoom's daily limit of 100 meetings created per user (a 429 until 00:00 UTC)."))
    api_url: str = Field(default="https://api.zoom.us/v2", description="API base URL.")
    oauth_url: str = Field(default="https://zoom.us/oauth/token", description="Token URL.")

    @classmethod
    def for_sandbox(cls, url: str, ca_file: str) -> ZoomCredentials:
        """Credentials for the sandbox's Zoom at `url`."""
        return cls(account_id="sandbox", client_id="sandbox",
                   client_secret=SecretStr("sandbox-zoom-secret"), api_url=f"{url}/zoom/v2",
                   oauth_url=f"{url}/zoom/oauth/token", verify=ca_file,
                   timeout_seconds=sandbox_timeout())

    @property
    def hosts(self) -> list[str]:
        """`user_id`, then the spare hosts (each once)."""
        return list(dict.fromkeys([self.user_id, *self.spare_hosts]))

    @property
    def hosts_named(self) -> str:
        """The hosts for a message; Zoom's `me` said as whose it is."""
        return ", ".join("me, the user the credentials belong to" if host == "me" else host
                         for host in self.hosts)

    @property
    def _token_key(self) -> str:
        return f"{self.oauth_url}|{self.account_id}|{self.client_id}"

    def forget_token(self) -> None:
        """Drop the cached token (after the API refused it)."""
        _TOKENS.pop(self._token_key, None)

    def http(self) -> httpx.AsyncClient:
        """An httpx client for this account (TLS and timeout applied)."""
        return httpx.AsyncClient(verify=ssl_context(self.verify), timeout=self.timeout_seconds)

    async def token(self, client: httpx.AsyncClient) -> str:
        """A fresh access token (account_credentials grant); cached until near expiry."""
        cached: tuple[str, float] | None = _TOKENS.get(self._token_key)
        if cached and cached[1] > time.monotonic() + 60:
            return cached[0]
        resp = await client.post(self.oauth_url, params={
            "grant_type": "account_credentials", "account_id": self.account_id},
            auth=(self.client_id, self.client_secret.get_secret_value()))
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        _TOKENS[self._token_key] = (
            str(body["access_token"]), time.monotonic() + float(body.get("expires_in", 3600)))
        return str(body["access_token"])


_TOKENS: dict[str, tuple[str, float]] = {}
