"""Credentials blocks for remediation: SSH targets, HTTP headers, supervisord."""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

__all__ = ["HttpHeaders", "SshTarget", "SupervisorCredentials"]

_DOCS = "https://github.com/firelane/firelane#remediation"


class SshTarget(Block):
    """A host `shell.run` may reach over OpenSSH: address, user, private key and the
    known_hosts lines that pin its host key (no trust on first use).

    Example:
        ```python
        from integrations.remediation.blocks import SshTarget
        ssh_target = SshTarget.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane SSH Target"
    _documentation_url: ClassVar[Any] = _DOCS

    host: str = Field(description="Host name or address.")
    port: int = Field(default=22, ge=1, le=65535, description="SSH port.")
    user: str = Field(description="Remote user.")
    private_key: SecretStr = Field(description="The private key (OpenSSH format).")
    known_hosts: str = Field(description="known_hosts lines for this host (its host key).")
    connect_timeout_seconds: int = Field(default=10, ge=1, le=120,
                                         description="ConnectTimeout for ssh.")


class HttpHeaders(Block):
    """Secret headers for `http.request` / `http.check` (an API token, a basic-auth header).

    Example:
        ```python
        from integrations.remediation.blocks import HttpHeaders
        http_headers = HttpHeaders.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane HTTP Headers"
    _documentation_url: ClassVar[Any] = _DOCS

    headers: dict[str, SecretStr] = Field(description="Header name to secret value.")


class SupervisorCredentials(Block):
    """Username and password of a supervisord `inet_http_server`.

    Example:
        ```python
        from integrations.remediation.blocks import SupervisorCredentials
        supervisor_credentials = SupervisorCredentials.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane Supervisor Credentials"
    _documentation_url: ClassVar[Any] = _DOCS

    username: str = Field(description="inet_http_server username.")
    password: SecretStr = Field(description="inet_http_server password.")
