"""How Firelane's long-running processes log: one line per record, dated in UTC, with the
process role and, when known, the incident, execution and step.

`configure_logging(role, settings)` is called once at CLI start (`serve`, `respond`,
`serve-flows`, `worker`). It puts one stderr handler on the `firelane` and `uvicorn` loggers
(which then stop propagating), so Prefect's own handlers (its console handler on the root
logger, the API handlers on `prefect.flow_runs` and `prefect.task_runs`) stay as Prefect set
them. `FIRELANE_LOG_FORMAT=text` (default) gives

    2026-11-29T21:40:03.123Z INFO    intake firelane.audit - page sent: ... [INC-3 step=page]

and `json` one object per line, formatted by python-json-logger:

    {"time": "2026-11-29T21:40:03.123Z", "level": "INFO", "logger": "firelane.audit",
     "message": "page sent ...", "role": "responder-urgent", "pid": 4242, "incident": "INC-3",
     "execution": "...", "step": "page", ...}

The incident, execution and step come from `log_context()` (a `contextvars` context set where
a response or step runs, so asyncio tasks and `to_thread` calls carry it) unless the call passes
them with `extra=`. Every line is redacted (`firelane.redaction`): the message, a traceback and
any string passed with `extra=`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from contextvars import Context, ContextVar, copy_context
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from firelane.redaction import RedactingFilter, redact, redact_value
from firelane.settings import Settings

__all__ = ["ROLES", "ContextFilter", "JsonLineFormatter", "TextLineFormatter",
           "configure_logging", "context_with", "current_context", "log_context",
           "logging_for", "reset_logging"]

ROLES = ("intake", "responder-urgent", "responder-flows", "responder-all", "worker", "cli")
CONTEXT_FIELDS = ("incident", "execution", "step")
HANDLED_LOGGERS = ("firelane", "uvicorn")

_context: ContextVar[dict[str, str] | None] = ContextVar("firelane_log_context", default=None)
_role = "cli"


def current_context() -> dict[str, str]:
    """The incident, execution and step known where the caller runs."""
    return dict(_context.get() or {})


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Tag every record logged inside (this task, and threads it starts with `to_thread`) with
    these fields; `None` values are left out.

        with log_context(incident="INC-3", execution=execution_id):
            ...
    """
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def context_with(**fields: str | None) -> Context:
    """A copy of the current `contextvars` context with these fields added, for
    `asyncio.create_task(..., context=context_with(execution=...))`."""
    copied = copy_context()
    copied.run(_context.set, {**copied.run(current_context),
                              **{k: v for k, v in fields.items() if v}})
    return copied


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + \
        f".{int(created % 1 * 1000):03d}Z"


class ContextFilter(logging.Filter):
    """Adds `role` and `pid`, and the context's incident, execution and step unless the
    record already has them (from `extra=`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = getattr(record, "role", None) or _role
        record.pid = record.process
        for key, value in (_context.get() or {}).items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class TextLineFormatter(logging.Formatter):
    """`<ISO-8601 UTC> <LEVEL> <role> <logger> - <message> [<incident> execution=.. step=..]`."""

    def __init__(self) -> None:
        super().__init__("%(levelname)-7s %(role)s %(name)s - %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO-8601 in UTC with milliseconds and `Z`."""
        return _iso(record.created)

    def format(self, record: logging.LogRecord) -> str:
        """One line (a traceback follows on its own lines)."""
        if not hasattr(record, "role"):
            record.role = _role
        line = f"{self.formatTime(record)} {super().format(record)}"
        known = [str(getattr(record, k)) if k == "incident" else f"{k}={getattr(record, k)}"
                 for k in CONTEXT_FIELDS if getattr(record, k, None)]
        if known:
            first, _, rest = line.partition("\n")
            line = f"{first} [{' '.join(known)}]" + (f"\n{rest}" if rest else "")
        return redact(line)

    def formatException(self, ei: Any) -> str:
        """The traceback, redacted."""
        return redact(super().formatException(ei))


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, role, pid, then incident,
    execution, step and any `extra=` fields (every string redacted)."""

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}{role}{pid}", style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            reserved_attrs=[*JsonFormatter().reserved_attrs, "color_message"],
            json_ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO-8601 in UTC with milliseconds and `Z`."""
        return _iso(record.created)

    def formatException(self, ei: Any) -> str:
        """The traceback, redacted."""
        return redact(str(super().formatException(ei)))

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Redact every string value (`extra=` fields are not seen by the record filter)."""
        if "role" not in log_data or log_data["role"] is None:
            log_data["role"] = _role
        cleaned: dict[str, Any] = redact_value(log_data)
        return cleaned


def configure_logging(role: str, settings: Settings, stream: IO[str] | None = None) -> None:
    """Log `firelane.*` (and uvicorn) records to stderr in `settings.log_format` at
    `settings.log_level`, tagged with `role`. Safe to call again (the handler is replaced)."""
    global _role
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if settings.log_format == "json"
                         else TextLineFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.firelane_handler = True  # type: ignore[attr-defined]
    reset_logging()
    _role = role
    for name in HANDLED_LOGGERS:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).propagate = False
    logging.getLogger("firelane").setLevel(settings.log_level)


def reset_logging() -> None:
    """Undo `configure_logging`: the `firelane` and `uvicorn` loggers propagate again."""
    global _role
    _role = "cli"
    for name in HANDLED_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "firelane_handler", False)]:
            logger.removeHandler(old)
        logger.propagate = True
    logging.getLogger("firelane").setLevel(logging.NOTSET)


@contextlib.contextmanager
def logging_for(role: str | None, settings: Settings) -> Iterator[None]:
    """`configure_logging(role, settings)` for the duration of a command (nothing when `role`
    is None), undone afterwards so a process that runs commands in turn (tests, embedding)
    keeps its own logging."""
    if role is None:
        yield
        return
    configure_logging(role, settings)
    try:
        yield
    finally:
        reset_logging()
