"""Building one message: headers from typed values only (never from rendered text), a
Message-ID derived from the step's idempotency key, text/plain with an optional HTML part."""

from __future__ import annotations

import email.policy
import hashlib
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

__all__ = ["POLICY", "build_message", "check_address", "message_id"]

POLICY = email.policy.SMTP.clone(cte_type="7bit")
"""CRLF line ends, headers folded at 78 characters, and bodies in quoted-printable or base64
when they are not ASCII, so no server needs 8BITMIME."""


def check_address(value: str) -> str:
    """`value` if it is one bare ASCII address (`ops@example.com`); else `ValueError` saying
    why. Display names and lists are refused: each address gets its own message."""
    if not value.isascii():
        raise ValueError(f"{value!r} is not ASCII: write an international domain in its "
                         "punycode (xn--) form")
    try:
        parsed = Address(addr_spec=value)
    except (ValueError, MessageError) as exc:
        raise ValueError(f"{value!r} is not an e-mail address ({exc})") from exc
    if not parsed.domain or "." not in parsed.domain or parsed.addr_spec != value:
        raise ValueError(f"{value!r} is not an e-mail address (user@domain.tld)")
    return value


def message_id(idempotency_key: str, address: str, from_address: str) -> str:
    """`<digest@sender-domain>`: the same for every attempt of one step to one address, so
    a receiving system that keeps Message-IDs can tell a repeat."""
    digest = hashlib.sha256(f"{idempotency_key}\n{address.lower()}".encode()).hexdigest()
    return f"<{digest[:40]}@{from_address.rpartition('@')[2]}>"


def build_message(*, from_address: str, to: str, subject: str, body: str, html: str | None,
                  reply_to: str | None, msg_id: str, date: datetime | None = None) -> bytes:
    """The message as the bytes sent after DATA (CRLF line ends, not yet dot-stuffed).
    `Auto-Submitted: auto-generated` (RFC 3834) keeps vacation responders from answering."""
    message = EmailMessage(policy=POLICY)
    message["From"] = from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = msg_id
    if reply_to:
        message["Reply-To"] = reply_to
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes(policy=POLICY)
