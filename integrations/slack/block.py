"""`SlackCredentials`: a bot token and the API base; builds a `slack_sdk` WebClient."""

from __future__ import annotations

import ssl
from typing import ClassVar

from pydantic import Field, SecretStr
from slack_sdk import WebClient

from integrations.common import pooled, sandbox_timeout, ssl_context
from integrations.credentials import VendorCredentials
from integrations.slack.transport import KeepAliveWebClient

__all__ = ["SlackCredentials"]

class SlackCredentials(VendorCredentials):
    """A Slack bot token (scopes: channels:manage, chat:write, pins:write, bookmarks:write,
    users:read.email, channels:history, files:write, and files:read, with which an upload finds
    itself after a lost answer; without it uploads go out unchecked and the timeline says so).

    Example:
        ```python
        from integrations.slack.block import SlackCredentials
        slack_credentials = SlackCredentials.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane Slack Credentials"

    token: SecretStr = Field(description="The bot token (xoxb-...).")
    base_url: str = Field(default="https://slack.com/api/", description="Web API base URL.")

    @classmethod
    def for_sandbox(cls, url: str, ca_file: str) -> SlackCredentials:
        """Credentials for the sandbox's Slack at `url`."""
        return cls(token=SecretStr("xoxb-sandbox"), base_url=f"{url}/slack/api/",
                   verify=ca_file,
                   timeout_seconds=sandbox_timeout())

    def get_client(self) -> WebClient:
        """A pooled WebClient with no retry handlers (Firelane retries, honouring
        Retry-After), whose calls reuse their connections (`KeepAliveWebClient`)."""
        token = self.token.get_secret_value()
        return pooled(("slack", self.base_url, str(hash(token))), lambda: self._build(token))

    def _build(self, token: str) -> WebClient:
        verify = ssl_context(self.verify)
        context: ssl.SSLContext | None = verify if isinstance(verify, ssl.SSLContext) else None
        if self.verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return KeepAliveWebClient(token=token, base_url=self.base_url, ssl=context,
                                  timeout=int(self.timeout_seconds), retry_handlers=[])
