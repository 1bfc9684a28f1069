"""`parse_time()`: the times operators type (`+30m`, `+2h`, `+1d`, or ISO 8601)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from firelane.errors import ConfigError
from firelane.models import utcnow

__all__ = ["parse_time"]

_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """`+30m`, `+2h`, `+1d` from now, or an ISO 8601 time (UTC when it has no offset)."""
    now = now or utcnow()
    relative = _RELATIVE.match(text.strip())
    if relative:
        return now + timedelta(**{_UNITS[relative.group(2)]: float(relative.group(1))})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not a time: use +30m, +2h, +1d or ISO 8601 like "
                          "2026-11-23T18:00Z") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)
