"""Keeping secrets out of logs, the timeline and error messages.

Every secret a credentials block yields is registered here when the block is loaded
(`register_secrets_of`); `redact()` replaces registered values and token-shaped strings (Slack,
Jira, GitHub and AWS tokens, bearer and basic credentials, passwords in URLs, private keys)
with `[REDACTED]`. `install()` puts `RedactingFilter` on every logging handler that exists
(Prefect's console and API handlers included), so a vendor client that echoes a token in an
exception never ships it to the Prefect API. The store redacts timeline events and step errors
before writing them.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = ["MASK", "RedactingFilter", "install", "redact", "redact_value", "register_secret",
           "register_secrets_of"]

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 6

_TOKEN_SHAPES = [
    r"xox[abposr]-[A-Za-z0-9-]{10,}",
    r"xapp-[A-Za-z0-9-]{10,}",
    r"ATATT[A-Za-z0-9_=-]{20,}",
    r"gh[pousr]_[A-Za-z0-9]{30,}",
    r"AKIA[0-9A-Z]{16}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
]
_KEYED = [
    (re.compile(r"(?i)(\bbearer\s+)(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}"),
     r"\g<1>" + MASK),
    (re.compile(r"(?i)(\bbasic\s+)(?=[A-Za-z0-9+/=]*[0-9+/=])[A-Za-z0-9+/=]{8,}"),
     r"\g<1>" + MASK),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@"), r"\g<1>" + MASK + "@"),
    (re.compile(r"(?i)(\b(?:token|password|passwd|secret|api_key|apikey|routing_key)"
                r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]{6,}"), r"\g<1>" + MASK),
]
_SHAPES = re.compile("|".join(f"(?:{p})" for p in _TOKEN_SHAPES))

_lock = threading.Lock()
_secrets: set[str] = set()
_known: re.Pattern[str] | None = None


def register_secret(value: str | bytes | None) -> None:
    """Redact `value` from now on, wherever `redact()` runs (values shorter than six
    characters are ignored: masking them would mangle ordinary text)."""
    global _known
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    lines = {value, *(ln.strip() for ln in value.splitlines() if len(ln.strip()) >= 16)}
    with _lock:
        if lines <= _secrets:
            return
        _secrets.update(lines)
        ordered = sorted(_secrets, key=len, reverse=True)
        _known = re.compile("|".join(re.escape(s) for s in ordered))


def register_secrets_of(value: Any) -> None:
    """Register every `SecretStr`/`SecretBytes` inside a block or model (nested models,
    dicts and lists included)."""
    if isinstance(value, SecretStr | SecretBytes):
        register_secret(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            register_secrets_of(getattr(value, name, None))
    elif isinstance(value, dict):
        for item in value.values():
            register_secrets_of(item)
    elif isinstance(value, list | tuple):
        for item in value:
            register_secrets_of(item)


def redact(text: str) -> str:
    """`text` with registered secrets and token-shaped strings masked."""
    if not text:
        return text
    text = _SHAPES.sub(MASK, text)
    known = _known
    if known is not None:
        text = known.sub(MASK, text)
    for pattern, repl in _KEYED:
        text = pattern.sub(repl, text)
    return text


def redact_value(value: Any) -> Any:
    """`redact` applied to every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value


def _redact_args(record: logging.LogRecord, cleaned: str) -> bool:
    """Mask the record's string args in place if that yields `cleaned`; False otherwise."""
    if not isinstance(record.args, tuple) or not isinstance(record.msg, str):
        return False
    args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
    try:
        if record.msg % args != cleaned:
            return False
    except (TypeError, ValueError):
        return False
    record.args = args
    return True


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and its traceback text) through `redact`. The record
    keeps its `args` (masked one by one) when that gives the same text, since some formatters
    (uvicorn's access log) unpack them. An empty traceback (`exc_info=True` outside any
    exception, as Prefect logs every task run that returned a Failed state) is dropped: it
    would print a stray "NoneType: None" under the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message and not _redact_args(record, cleaned):
            record.msg, record.args = cleaned, None
        if record.exc_info is not None and record.exc_info[0] is None:
            record.exc_info = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def _redacting_factory(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _FILTER.filter(record)
        return record

    factory.firelane_redacts = True  # type: ignore[attr-defined]
    return factory


def install() -> int:
    """Redact every log record as it is made (a record factory, so handlers configured later,
    such as uvicorn's, get clean records too) and add the filter to every handler configured so
    far; returns how many handlers got it. Safe to call again."""
    if not getattr(logging.getLogRecordFactory(), "firelane_redacts", False):
        logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
    handlers: set[logging.Handler] = set(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.update(logger.handlers)
    added = 0
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
            added += 1
    return added
