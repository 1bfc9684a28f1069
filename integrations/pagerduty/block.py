"""`PagerDutyCredentials`: REST token, default routing key, endpoints; builds the clients."""

from __future__ import annotations

from typing import Any, ClassVar

import pagerduty
from pydantic import Field, SecretStr

from integrations.common import pooled, sandbox_timeout, ssl_context
from integrations.credentials import VendorCredentials

__all__ = ["PagerDutyCredentials"]

_NO_RETRY = {429: 1, 500: 1, 502: 1, 503: 1, 504: 1}



def _quiet(client: Any, timeout: float) -> Any:
    """Switch the client's own retries off (Firelane has exactly one retry layer): each status
    above is returned at once as a failure, and the first network error raises."""
    client.retry = dict(_NO_RETRY)
    client.max_http_attempts = -1
    client.max_network_attempts = 0
    client.timeout = timeout
    return client


class PagerDutyCredentials(VendorCredentials):
    """PagerDuty credentials: a REST API token and a default Events v2 routing key.

    Example:
        ```python
        from integrations.pagerduty.block import PagerDutyCredentials
        pagerduty_credentials = PagerDutyCredentials.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane PagerDuty Credentials"

    api_token: SecretStr | None = Field(default=None, description="REST API v2 token.")
    routing_key: SecretStr | None = Field(default=None, description=(
        "Default Events v2 routing key (a service's catalog entry may name its own)."))
    from_email: str = Field(default="firelane@example.com", description=(
        "A PagerDuty user's email, sent as the From header on REST writes."))
    rest_url: str = Field(default="https://api.pagerduty.com", description="REST API base.")
    events_url: str = Field(default="https://events.pagerduty.com",
                            description="Events API base.")

    @classmethod
    def for_sandbox(cls, url: str, ca_file: str) -> PagerDutyCredentials:
        """Credentials for the sandbox's PagerDuty at `url`."""
        return cls(api_token=SecretStr("sandbox-pd-token"), routing_key=SecretStr("R0SANDBOXKEY"),
                   from_email="alice@example.com", rest_url=f"{url}/pagerduty",
                   events_url=f"{url}/pagerduty", verify=ca_file,
                   timeout_seconds=sandbox_timeout())

    def events_client(self, routing_key: str | None = None) -> Any:
        """An Events v2 client for `routing_key` (or the block's default)."""
        key = routing_key or (self.routing_key.get_secret_value() if self.routing_key else "")
        if not key:
            from firelane.errors import ConfigError

            raise ConfigError("no PagerDuty routing key: set routing_key on the block or "
                              "pagerduty.routing_key_block in the service catalog")
        return pooled(("events", self.events_url, str(hash(key)), str(self.verify)),
                       lambda: _quiet(pagerduty.EventsApiV2Client(
                           key, base_url=self.events_url, verify=ssl_context(self.verify)),
                           self.timeout_seconds))

    def rest_client(self) -> Any:
        """A REST v2 client."""
        if self.api_token is None:
            from firelane.errors import ConfigError

            raise ConfigError("this action needs PagerDuty's REST API: set api_token on the "
                              "block")
        token = self.api_token.get_secret_value()
        return pooled(("rest", self.rest_url, str(hash(token)), self.from_email,
                        str(self.verify)),
                       lambda: _quiet(pagerduty.RestApiV2Client(
                           token, default_from=self.from_email, base_url=self.rest_url,
                           verify=ssl_context(self.verify)), self.timeout_seconds))
