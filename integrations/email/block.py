"""`SmtpServer`: the mail server Firelane sends through, how it secures the connection and
whom it logs in as; builds the `SmtpClient`."""

from __future__ import annotations

import ssl
from typing import ClassVar, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from integrations.common import sandbox_timeout, ssl_context
from integrations.credentials import VendorCredentials
from integrations.email.client import SmtpClient
from integrations.email.message import check_address

__all__ = ["SmtpServer"]


class SmtpServer(VendorCredentials):
    """An SMTP submission server (port 587 with STARTTLS, or 465 with implicit TLS) and the
    sender address of Firelane's messages. Runbooks name it under
    `credentials: {email: BLOCK_NAME}` (default `default`); `email.send` sends through it.

    A login is only ever sent over TLS: a block with a username must use STARTTLS or implicit
    TLS. `verify` takes a CA bundle's path for a server with a private CA.

    Example:
        ```python
        from integrations.email.block import SmtpServer
        smtp_server = SmtpServer.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane SMTP Server"

    host: str = Field(min_length=1, description="The server's host name (smtp.example.com).")
    port: int = Field(default=587, ge=1, le=65535, description=(
        "587 (submission, STARTTLS), 465 (implicit TLS) or 25 (a relay)."))
    username: str | None = Field(default=None, description="Login; none for an open relay.")
    password: SecretStr | None = Field(default=None, description="The login's password.")
    starttls: bool = Field(default=True, description=(
        "Upgrade the connection with STARTTLS, and refuse a server that does not offer it."))
    implicit_tls: bool = Field(default=False, description="TLS from the first byte (port 465).")
    from_address: str = Field(description=(
        "The From of every message (incidents@example.com); the Message-IDs use its domain."))

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_address(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.starttls and self.implicit_tls:
            raise ValueError("set starttls or implicit_tls, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("a login needs both username and password")
        if self.username is not None and not (self.starttls or self.implicit_tls):
            raise ValueError("a login without TLS would send the password in clear: set "
                             "starttls or implicit_tls")
        return self

    @classmethod
    def for_sandbox(cls, url: str, ca_file: str, smtp_port: int = 25) -> Self:
        """The sandbox's mail server: the host of its `url`, `smtp_port` (its `/_admin/state`
        says which), STARTTLS trusting its CA, its sandbox login."""
        from integrations.sandbox.common import SANDBOX_SMTP_PASSWORD, SANDBOX_SMTP_USER

        return cls(host=urlsplit(url).hostname or "127.0.0.1", port=smtp_port,
                   username=SANDBOX_SMTP_USER, password=SecretStr(SANDBOX_SMTP_PASSWORD),
                   from_address="firelane@sandbox.firelane.test", verify=ca_file,
                   timeout_seconds=sandbox_timeout())

    def tls_context(self) -> ssl.SSLContext:
        """The context STARTTLS and implicit TLS use: the system's CAs, the bundle `verify`
        names, or (verify false) none."""
        verify = ssl_context(self.verify)
        if isinstance(verify, ssl.SSLContext):
            return verify
        context = ssl.create_default_context()
        if verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def get_client(self) -> SmtpClient:
        """A client for this server (the one place its password is read)."""
        password = self.password.get_secret_value() if self.password is not None else None
        return SmtpClient(host=self.host, port=self.port, tls_context=self.tls_context(),
                          timeout_seconds=self.timeout_seconds, starttls=self.starttls,
                          implicit_tls=self.implicit_tls, username=self.username,
                          password=password)
