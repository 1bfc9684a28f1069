"""`SmtpClient`: one message to one address over `smtplib`, every failure one of Firelane's
errors and, past the end of DATA, told apart by whether the server may have the message.

SMTP replies (RFC 5321 §4.2, https://www.rfc-editor.org/rfc/rfc5321#section-4.2): 2xx done,
4xx (421 "closing channel", 450-452) transient → `VendorUnavailable`, 5xx permanent →
`VendorRejected`. A message is the server's once it has answered 250 to the end of DATA
(§4.1.1.4); a connection lost after the final "." and before that reply leaves the outcome
unknown (RFC 1047's duplicate-message problem): `DeliveryUnknown`, which no retry may repeat.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from firelane.errors import IntegrationError, VendorRejected, VendorUnavailable

__all__ = ["DeliveryUnknown", "SmtpClient", "reply_error"]

VENDOR = "email"
_LEADING_DOT = re.compile(rb"(?m)^\.")


class DeliveryUnknown(IntegrationError):
    """The whole message reached the server, but its answer did not reach us: it may have
    been delivered. Not retryable (a retry could deliver it twice); `address` is the recipient.
    """

    retryable = False

    def __init__(self, address: str, message: str) -> None:
        self.address = address
        super().__init__(VENDOR, message)


def reply_error(server: str, stage: str, code: int, text: str) -> IntegrationError:
    """The error for an SMTP reply `code` to `stage`: 4xx → `VendorUnavailable` (retried),
    5xx → `VendorRejected` (the server's text kept)."""
    said = f"{server} answered {code} {text} to {stage}".rstrip()
    if 400 <= code < 500:
        return VendorUnavailable(VENDOR, said)
    if code == 535 or (stage == "AUTH" and code >= 500):
        return VendorRejected(VENDOR, f"{said}; check the SmtpServer block's username and "
                              "password")
    if 500 <= code < 600:
        return VendorRejected(VENDOR, said)
    return VendorUnavailable(VENDOR, f"{said} (not an SMTP reply it should give)")


def _text(message: bytes | str) -> str:
    raw = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return " ".join(raw.split())[:300]


@dataclass(frozen=True)
class SmtpClient:
    """One SMTP server: where it is, how to secure the connection and whom to log in as.
    Each `send` opens its own connection, so an unknown outcome concerns one address only.
    Synchronous (`smtplib`); actions run it in a worker thread."""

    host: str
    port: int
    tls_context: ssl.SSLContext
    timeout_seconds: float = 10.0
    starttls: bool = True
    implicit_tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def server(self) -> str:
        """`host:port`, as errors name it."""
        return f"{self.host}:{self.port}"

    def probe(self) -> str:
        """Connect, EHLO, STARTTLS, log in if configured, QUIT; what happened, for a
        credentials check. Raises like `send` before DATA."""
        smtp = self._open()
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        secured = "implicit TLS" if self.implicit_tls else \
            "STARTTLS" if self.starttls else "no TLS"
        who = f", logged in as {self.username}" if self.username else ", no login"
        return f"{self.server} answered EHLO ({secured}{who})"

    def send(self, mail_from: str, to: str, message: bytes) -> str:
        """Deliver `message` (CRLF line ends) to `to`; the server's 250 reply text.

        Raises `VendorUnavailable` (refused, timed out, 4xx) or `VendorRejected` (5xx, TLS or
        login refused) when the server surely does not have the message, and
        `DeliveryUnknown` when it may."""
        smtp = self._open()
        try:
            self._command(smtp, "MAIL FROM", lambda: smtp.mail(mail_from), (250,))
            self._command(smtp, "RCPT TO", lambda: smtp.rcpt(to), (250, 251))
            self._command(smtp, "DATA", lambda: smtp.docmd("DATA"), (354,))
            payload = _LEADING_DOT.sub(b"..", message)
            payload += (b"" if payload.endswith(b"\r\n") else b"\r\n") + b".\r\n"
            try:
                smtp.send(payload)
            except smtplib.SMTPServerDisconnected as exc:
                raise VendorUnavailable(VENDOR, f"{self.server} closed the connection while "
                                        f"the message was sent, before its end: {exc}") from exc
            try:
                code, reply = smtp.getreply()
            except smtplib.SMTPServerDisconnected as exc:
                raise DeliveryUnknown(to, (
                    f"{self.server} took the whole message for {to} but the connection was "
                    f"lost before its reply ({exc}): it may have been delivered")) from exc
            if code != 250:
                raise reply_error(self.server, "the end of DATA", code, _text(reply))
            return _text(reply)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    def _command(self, smtp: smtplib.SMTP, stage: str,
                 call: Callable[[], tuple[int, bytes]], expected: tuple[int, ...]) -> None:
        try:
            code, reply = call()
        except smtplib.SMTPServerDisconnected as exc:
            raise VendorUnavailable(VENDOR, f"{self.server} closed the connection at "
                                    f"{stage}: {exc}") from exc
        if code not in expected:
            raise reply_error(self.server, stage, code, _text(reply))

    def _open(self) -> smtplib.SMTP:
        """A connection that has said EHLO, secured and logged in as configured."""
        try:
            if self.implicit_tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port,
                                                      timeout=self.timeout_seconds,
                                                      context=self.tls_context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        except smtplib.SMTPConnectError as exc:
            raise reply_error(self.server, "the connection", exc.smtp_code,
                              _text(exc.smtp_error)) from exc
        except ssl.SSLCertVerificationError as exc:
            raise VendorRejected(VENDOR, f"{self.server}: TLS certificate not trusted "
                                 f"({exc.verify_message}); check the block's verify") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise VendorUnavailable(VENDOR, f"cannot reach {self.server}: "
                                    f"{type(exc).__name__}: {exc}") from exc
        try:
            self._secure_and_login(smtp)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _secure_and_login(self, smtp: smtplib.SMTP) -> None:
        try:
            self._command(smtp, "EHLO", smtp.ehlo, (250,))
            if self.starttls and not self.implicit_tls:
                if not smtp.has_extn("starttls"):
                    raise VendorRejected(VENDOR, f"{self.server} does not offer STARTTLS; "
                                         "refusing to send in clear (set starttls: false only "
                                         "for a relay on a trusted network)")
                self._command(smtp, "STARTTLS", lambda: smtp.starttls(context=self.tls_context),
                              (220,))
                self._command(smtp, "EHLO", smtp.ehlo, (250,))
            if self.username is not None and self.password is not None:
                self._login(smtp, self.username, self.password)
        except smtplib.SMTPNotSupportedError as exc:
            raise VendorRejected(VENDOR, f"{self.server} offers no AUTH the client knows "
                                 f"(after TLS): {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise VendorRejected(VENDOR, f"{self.server}: TLS certificate not trusted "
                                 f"({exc.verify_message}); check the block's verify") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise VendorUnavailable(VENDOR, f"{self.server} failed during EHLO, STARTTLS or "
                                    f"AUTH: {type(exc).__name__}: {exc}") from exc

    def _login(self, smtp: smtplib.SMTP, username: str, password: str) -> None:
        try:
            smtp.login(username, password)
        except smtplib.SMTPResponseException as exc:
            raise reply_error(self.server, "AUTH", exc.smtp_code, _text(exc.smtp_error)) from exc
        except smtplib.SMTPNotSupportedError:
            raise
        except smtplib.SMTPServerDisconnected as exc:
            raise VendorUnavailable(VENDOR, f"{self.server} closed the connection during "
                                    f"AUTH: {exc}") from exc
        except smtplib.SMTPException as exc:
            raise VendorRejected(VENDOR, f"{self.server} offers no AUTH mechanism the client "
                                 f"knows ({exc}); check the SmtpServer block's login") from exc
