"""The sandbox's mail server: a real SMTP server (aiosmtpd) with STARTTLS on the sandbox's
certificate, optional AUTH, every message kept in the sandbox state, and SMTP faults.

Faults are armed in the sandbox's one `Faults` (so `/_admin/faults` and `/_admin/reset` cover
them) with `path="/smtp"` and the SMTP command as `method` (`MAIL`, `RCPT`, `DATA`; `*` is
whichever comes first). `DATA` faults act at the end of the message, when the server decides:

- `status`: reply with that code instead (421, 451: temporary; 550: permanent), nothing kept;
- `latency`: wait that many seconds, then behave normally (a client timeout sees a timeout);
  at `DATA` the message is kept first and only the reply is late, as a server that has
  queued it but is slow to say so;
- `reset` (or `drop`): cut the connection without a reply, nothing kept;
- `apply_then_reset` (`DATA` only): keep the message, then cut the connection before the 250
  reply: the client cannot know it was delivered.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import ssl
import time
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from integrations.sandbox.common import SANDBOX_SMTP_PASSWORD, SANDBOX_SMTP_USER
from integrations.sandbox.faults import Faults
from integrations.sandbox.state import SandboxState
from integrations.sandbox.tls import TlsFiles

__all__ = ["FAULT_PATH", "SandboxSmtp"]

FAULT_PATH = "/smtp"
_REPLIES = {421: "421 4.3.2 Service not available, closing transmission channel (sandbox fault)",
            450: "450 4.2.1 Mailbox busy, try again later (sandbox fault)",
            451: "451 4.3.0 Local error in processing, try again later (sandbox fault)",
            452: "452 4.3.1 Insufficient system storage (sandbox fault)",
            550: "550 5.7.1 Relaying denied: mailbox unavailable (sandbox fault)",
            552: "552 5.3.4 Message too big for system (sandbox fault)",
            554: "554 5.7.0 Transaction failed: message refused (sandbox fault)"}


def _cut(server: SMTP) -> None:
    """Abort the TCP connection under the (possibly TLS-wrapped) session."""
    transport: Any = getattr(server, "_original_transport", None) or server.transport
    if transport is not None:
        transport.abort()


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n")


def _summary(envelope: Envelope) -> dict[str, Any]:
    raw = envelope.original_content or b""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("plain",)) if message.is_multipart() else message
    html = message.get_body(("html",)) if message.is_multipart() else None
    return {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
            "message_id": str(message.get("Message-ID", "")),
            "from": str(message.get("From", "")), "to": str(message.get("To", "")),
            "subject": str(message.get("Subject", "")), "date": str(message.get("Date", "")),
            "reply_to": str(message.get("Reply-To", "")),
            "text": _lines(body.get_content()) if body is not None else "",
            "html": _lines(html.get_content()) if html is not None else None,
            "raw": raw.decode("utf-8", "replace"), "received_at": time.time()}


class _Handler:
    """aiosmtpd hooks: apply the armed fault of each command, keep what DATA delivers."""

    def __init__(self, state: SandboxState, faults: Faults) -> None:
        self.state, self.faults = state, faults

    async def _fault(self, command: str, server: SMTP) -> str | None:
        """Apply the armed rule for MAIL or RCPT: the reply it makes instead (None: go on)."""
        rule = self.faults.take(command, FAULT_PATH)
        if rule is None:
            return None
        if rule.kind == "latency":
            await asyncio.sleep(rule.latency)
            return None
        if rule.kind in ("reset", "drop", "apply_then_reset"):
            _cut(server)
            return "421 4.4.2 connection cut (sandbox fault)"
        return _REPLIES.get(rule.status, f"{rule.status} sandbox fault")

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        """MAIL FROM, unless a fault answers instead."""
        reply = await self._fault("MAIL", server)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        """RCPT TO, unless a fault answers instead."""
        reply = await self._fault("RCPT", server)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message, unless a fault answers instead; a `latency` fault keeps it first
        and answers late, `apply_then_reset` keeps it and cuts the reply off."""
        rule = self.faults.take("DATA", FAULT_PATH)
        if rule is not None and rule.kind not in ("latency", "apply_then_reset"):
            if rule.kind in ("reset", "drop"):
                _cut(server)
            return _REPLIES.get(rule.status, f"{rule.status} sandbox fault")
        kept = _summary(envelope)
        with self.state.lock:
            self.state.emails.append(kept)
            self.state.arrived("email", kept["message_id"])
        if rule is not None and rule.kind == "apply_then_reset":
            _cut(server)
        elif rule is not None:
            await asyncio.sleep(rule.latency)
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's threaded server, building each session with the current AUTH setting."""

    def __init__(self, owner: SandboxSmtp, handler: _Handler, port: int) -> None:
        self.owner = owner
        super().__init__(handler, hostname="127.0.0.1", port=port, ready_timeout=15)

    def factory(self) -> SMTP:
        """One SMTP session: STARTTLS offered, AUTH (over TLS) required when configured."""
        return SMTP(self.handler, hostname="sandbox.firelane.test",
                    tls_context=self.owner.tls_context, require_starttls=False,
                    auth_required=self.owner.state.smtp_require_auth, auth_require_tls=True,
                    authenticator=_authenticate, enable_SMTPUTF8=True, timeout=30)


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == SANDBOX_SMTP_USER.encode()
          and auth_data.password == SANDBOX_SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


class _QuietDeprecation(logging.Filter):
    """aiosmtpd 1.4 warns about its own legacy `login_data` on every AUTH; nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_QuietDeprecation())


class SandboxSmtp:
    """The mail server on 127.0.0.1:`port`, in its own thread.

    The state's `smtp_require_auth` (default off; `/_admin/config`) makes every new session
    log in (AUTH PLAIN or LOGIN, after STARTTLS) as `SANDBOX_SMTP_USER` /
    `SANDBOX_SMTP_PASSWORD`.

    Example:
        smtp = SandboxSmtp(state, faults, tls_files, port).start()
        faults.add(path="/smtp", method="DATA", kind="apply_then_reset")
    """

    def __init__(self, state: SandboxState, faults: Faults, tls: TlsFiles, port: int) -> None:
        self.state, self.port = state, port
        self.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls_context.load_cert_chain(str(tls.server_cert), str(tls.server_key))
        self._controller = _Controller(self, _Handler(state, faults), port)

    def start(self) -> SandboxSmtp:
        """Serve until `stop()`; returns once the port answers."""
        self._controller.start()
        self.state.smtp_port = self.port
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._controller.stop(no_assert=True)
