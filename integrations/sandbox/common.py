"""Helpers shared by the stand-in vendor apps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request

__all__ = ["SANDBOX_SMTP_PASSWORD", "SANDBOX_SMTP_USER", "now_iso", "read_body"]

SANDBOX_SMTP_USER = "sandbox"
SANDBOX_SMTP_PASSWORD = "sandbox-smtp-password"
"""The login the sandbox's mail server takes when it requires AUTH (`smtp_require_auth`)."""


def now_iso() -> str:
    """The current time as the vendors format it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def read_body(request: Request) -> dict[str, Any]:
    """A JSON or form body as a dict (Slack sends both; form values are single strings)."""
    raw = await request.body()
    if not raw:
        return {}
    kind = request.headers.get("content-type", "")
    if "json" in kind:
        data = json.loads(raw)
        return data if isinstance(data, dict) else {"_list": data}
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
