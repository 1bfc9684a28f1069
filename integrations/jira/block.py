"""`JiraCredentials`: where Jira is and how to sign in; builds the `jira` client."""

from __future__ import annotations

from typing import Any, ClassVar

from jira import JIRA
from pydantic import Field, SecretStr

from integrations.common import pooled, sandbox_timeout
from integrations.credentials import VendorCredentials

__all__ = ["JiraCredentials"]

class JiraCredentials(VendorCredentials):
    """Credentials and endpoint of a Jira site (Cloud or Server/Data Center).

    Example:
        ```python
        from integrations.jira.block import JiraCredentials
        jira_credentials = JiraCredentials.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane Jira Credentials"

    base_url: str = Field(description="The Jira site, e.g. https://acme.atlassian.net.")
    username: str = Field(description="The account's email (Cloud) or user name (Server).")
    api_token: SecretStr = Field(description="An API token (Cloud) or password (Server).")

    @classmethod
    def for_sandbox(cls, url: str, ca_file: str) -> JiraCredentials:
        """Credentials for the sandbox's Jira at `url`."""
        return cls(base_url=f"{url}/jira", username="firelane",
                   api_token=SecretStr("sandbox-jira-token"), verify=ca_file,
                   timeout_seconds=sandbox_timeout())

    def get_client(self) -> JIRA:
        """A pooled `jira.JIRA` client with its own retries off (Firelane retries once)."""
        token = self.api_token.get_secret_value()
        options: dict[str, Any] = {"verify": self.verify}
        return pooled(("jira", self.base_url, self.username, str(hash(token))),
                      lambda: JIRA(server=self.base_url, basic_auth=(self.username, token),
                                   options=options, max_retries=0,
                                   timeout=self.timeout_seconds))
