"""`StatuspageCredentials`: a Statuspage API key and the page it updates; builds the client."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from integrations.common import sandbox_timeout, ssl_context
from integrations.credentials import VendorCredentials
from integrations.statuspage.client import StatuspageClient
from integrations.statuspage.limits import REQUEST_INTERVAL_SECONDS

__all__ = ["SANDBOX_API_KEY", "SANDBOX_PAGE_ID", "StatuspageCredentials"]

SANDBOX_API_KEY = "sandbox-statuspage-key"
SANDBOX_PAGE_ID = "fl0sandbox00"
SANDBOX_INTERVAL_SECONDS = REQUEST_INTERVAL_SECONDS
"""The pace against the sandbox's stand-in: the real one, so sandbox runs behave like real
ones (the fault-matrix tests lower it, with the stand-in's limit off)."""


class StatuspageCredentials(VendorCredentials):
    """An Atlassian Statuspage API key and the page Firelane posts incidents to.

    Runbooks name it under `credentials: {statuspage: BLOCK_NAME}` (default `default`); the
    `statuspage.*` actions use it. Each API key may make 1 request per second
    (https://developer.statuspage.io/, "Rate Limiting"); the client keeps to that pace.

    Example:
        ```python
        from integrations.statuspage.block import StatuspageCredentials
        statuspage_credentials = StatuspageCredentials.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane Statuspage Credentials"

    api_key: SecretStr = Field(description=(
        "A Statuspage API key (manage.statuspage.io → your profile → API info); sent as "
        "`Authorization: OAuth <key>`."))
    page_id: str = Field(min_length=1, description=(
        "The page's id (its API info page, or the URL of its management pages)."))
    api_url: str = Field(default="https://api.statuspage.io/v1", pattern=r"^https?://",
                         description="The Manage API base URL.")
    interval_seconds: float = Field(default=REQUEST_INTERVAL_SECONDS, ge=0, le=60, description=(
        "Least time between two requests with this key (Statuspage allows 1 per second; "
        "raise it when other tools share the key)."))

    @classmethod
    def for_sandbox(cls, url: str, ca_file: str) -> StatuspageCredentials:
        """Credentials for the sandbox's Statuspage at `url`."""
        return cls(api_key=SecretStr(SANDBOX_API_KEY), page_id=SANDBOX_PAGE_ID,
                   api_url=f"{url}/statuspage/v1", verify=ca_file,
                   timeout_seconds=sandbox_timeout(),
                   interval_seconds=SANDBOX_INTERVAL_SECONDS)

    def get_client(self) -> StatuspageClient:
        """A client for this page (the one place the key is read); `async with` it."""
        return StatuspageClient(self.api_url, self.page_id, self.api_key.get_secret_value(),
                                verify=ssl_context(self.verify),
                                timeout_seconds=self.timeout_seconds,
                                interval_seconds=self.interval_seconds)
