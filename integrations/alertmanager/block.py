"""`AlertmanagerConnection`: where an Alertmanager is, how to authenticate and verify TLS;
builds the client."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from integrations.alertmanager.client import AlertmanagerClient
from integrations.common import ssl_context
from integrations.http_auth import auth_parts, check_auth

__all__ = ["AlertmanagerConnection"]


class AlertmanagerConnection(Block):
    """An Alertmanager's API v2: its URL, optional bearer token or basic auth, TLS.

    Runbooks name it under `credentials: {alertmanager: BLOCK_NAME}` (default `default`);
    `alertmanager.silence` and `alertmanager.expire_silence` create and expire silences
    through it.

    Example:
        ```python
        from integrations.alertmanager.block import AlertmanagerConnection
        alertmanager_connection = AlertmanagerConnection.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane Alertmanager Connection"
    _documentation_url: ClassVar[Any] = "https://github.com/firelane/firelane#alertmanager"

    url: str = Field(pattern=r"^https?://", description=(
        "Base URL of the Alertmanager, with its path prefix if any (http://alertmanager:9093)."))
    bearer_token: SecretStr | None = Field(default=None, description=(
        "Sent as `Authorization: Bearer ...` (a reverse proxy's or Alertmanager's web config)."))
    basic_username: str | None = Field(default=None, description="Basic auth user.")
    basic_password: SecretStr | None = Field(default=None, description="Basic auth password.")
    verify: str | bool = Field(default=True, description=(
        "TLS verification: true, false, or the path of a CA bundle."))
    timeout_seconds: float = Field(default=10.0, gt=0, le=300,
                                   description="Per-request timeout.")

    @model_validator(mode="after")
    def _one_auth(self) -> Self:
        check_auth(self.bearer_token, self.basic_username, self.basic_password)
        return self

    def get_client(self) -> AlertmanagerClient:
        """A client for this Alertmanager (the one place its secrets are read)."""
        headers, auth = auth_parts(self.bearer_token, self.basic_username, self.basic_password)
        return AlertmanagerClient(self.url, headers=headers, auth=auth,
                                  verify=ssl_context(self.verify),
                                  timeout_seconds=self.timeout_seconds)
