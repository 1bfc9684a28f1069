"""`VendorCredentials`: the base of the vendors' credentials Blocks (Jira, PagerDuty, Slack,
Zoom, SMTP), holding the fields each of them has: TLS verification and the per-request timeout."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

from prefect.blocks.core import Block
from pydantic import Field

__all__ = ["VendorCredentials"]


class VendorCredentials(Block, ABC):
    """Where a vendor's API is and how to reach it; subclasses add the secret and build the
    client. Abstract: it is never saved or registered itself.

    Example:
        ```python
        from integrations.slack.block import SlackCredentials
        slack_credentials = SlackCredentials.load("BLOCK_NAME")
        ```
    """

    _documentation_url: ClassVar[Any] = "https://github.com/firelane/firelane#integrations"

    verify: str | bool = Field(default=True, description=(
        "TLS verification: true, false, or the path of a CA bundle."))
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per-request timeout.")

    @classmethod
    @abstractmethod
    def for_sandbox(cls, url: str, ca_file: str) -> Self:
        """Credentials for the sandbox's stand-in of this vendor at `url`."""
