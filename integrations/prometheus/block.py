"""`PrometheusConnection`: where a Prometheus server is, how to authenticate and verify TLS;
builds the client."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from integrations.common import ssl_context
from integrations.http_auth import auth_parts, check_auth
from integrations.prometheus.client import PrometheusClient

__all__ = ["PrometheusConnection"]


class PrometheusConnection(Block):
    """A Prometheus server's HTTP API: its URL, optional bearer token or basic auth, TLS.

    Runbooks name it under `credentials: {prometheus: BLOCK_NAME}` (default `default`);
    `prometheus.query` and `prometheus.check` only read through it.

    Example:
        ```python
        from integrations.prometheus.block import PrometheusConnection
        prometheus_connection = PrometheusConnection.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane Prometheus Connection"
    _documentation_url: ClassVar[Any] = "https://github.com/firelane/firelane#prometheus"

    url: str = Field(pattern=r"^https?://", description=(
        "Base URL of the server, with its path prefix if any (http://prometheus:9090)."))
    bearer_token: SecretStr | None = Field(default=None, description=(
        "Sent as `Authorization: Bearer ...` (a reverse proxy's or Prometheus' web config)."))
    basic_username: str | None = Field(default=None, description="Basic auth user.")
    basic_password: SecretStr | None = Field(default=None, description="Basic auth password.")
    verify: str | bool = Field(default=True, description=(
        "TLS verification: true, false, or the path of a CA bundle."))
    timeout_seconds: float = Field(default=10.0, gt=0, le=300, description=(
        "Per-request timeout (also sent to Prometheus as the query's own timeout)."))

    @model_validator(mode="after")
    def _one_auth(self) -> Self:
        check_auth(self.bearer_token, self.basic_username, self.basic_password)
        return self

    def get_client(self) -> PrometheusClient:
        """A client for this server (the one place its secrets are read)."""
        headers, auth = auth_parts(self.bearer_token, self.basic_username, self.basic_password)
        return PrometheusClient(self.url, headers=headers, auth=auth,
                                verify=ssl_context(self.verify),
                                timeout_seconds=self.timeout_seconds)
