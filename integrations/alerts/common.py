"""What every alert source shares: severity spellings, fingerprints, safe field access."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from firelane.errors import AlertRejected
from firelane.models import Severity

__all__ = ["DEFAULT_SEVERITIES", "as_text_map", "fingerprint", "known_severity", "load_json",
           "parse_time", "severity"]

DEFAULT_SEVERITIES: dict[str, Severity] = {
    **{k: Severity.SEV1 for k in ("critical", "crit", "fatal", "emergency", "emerg", "page",
                                  "disaster", "p1", "sev1", "sev-1", "1", "urgent")},
    **{k: Severity.SEV2 for k in ("high", "error", "err", "major", "alert", "p2", "sev2",
                                  "sev-2", "2")},
    **{k: Severity.SEV3 for k in ("warning", "warn", "medium", "moderate", "average", "p3",
                                  "sev3", "sev-3", "3")},
    **{k: Severity.SEV4 for k in ("low", "minor", "info", "informational", "information",
                                  "notice", "debug", "none", "ok", "success", "p4", "p5",
                                  "sev4", "sev-4", "4", "5")},
}
"""Every spelling seen across Alertmanager, Grafana, Datadog, CloudWatch and PagerDuty, mapped
to SEV1-SEV4 (a source's own mapping, from configuration, is consulted first)."""

_SEVERITY_NAMES = frozenset(Severity.__members__)


def severity(raw: Any, overrides: Mapping[str, str] | None = None,
             default: Severity = Severity.SEV3) -> Severity:
    """Map a vendor's severity spelling to SEV1-SEV4 (unknown spellings get `default`)."""
    if raw is None:
        return default
    text = str(raw).strip().lower()
    if overrides and text in overrides:
        return Severity(overrides[text].upper())
    if text.upper() in _SEVERITY_NAMES:
        return Severity(text.upper())
    return DEFAULT_SEVERITIES.get(text, default)


def known_severity(raw: Any, overrides: Mapping[str, str] | None = None) -> bool:
    """Whether `severity(raw, overrides)` recognises the spelling (not the default's guess)."""
    text = str(raw).strip().lower()
    return bool(overrides and text in overrides) or text.upper() in _SEVERITY_NAMES \
        or text in DEFAULT_SEVERITIES


def fingerprint(source: str, *parts: Any) -> str:
    """A stable fingerprint: sha256 of the source and the identifying parts (canonical JSON)."""
    canon = json.dumps([source, *parts], sort_keys=True, separators=(",", ":"), default=str)
    return f"{source}:{hashlib.sha256(canon.encode()).hexdigest()[:32]}"


MAX_ALERTS_PER_REQUEST = 1000


def load_json(body: bytes, content_type: str | None, accept_text: bool = False) -> Any:
    """Decode a JSON body; a wrong content type or broken JSON is a 4xx naming the problem."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and kind != "application/json" and not kind.endswith("+json") and not (
            accept_text and kind == "text/plain"):
        raise AlertRejected(f"content type {kind!r} is not JSON; send application/json", 415)
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AlertRejected(f"body is not UTF-8 (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise AlertRejected(f"malformed JSON at line {exc.lineno} column {exc.colno}: "
                            f"{exc.msg}") from exc
    except RecursionError as exc:
        raise AlertRejected("JSON nested too deeply (hundreds of levels); no alert source "
                            "sends that") from exc


def check_count(items: list[Any]) -> None:
    """At most `MAX_ALERTS_PER_REQUEST` alerts in one request (413 beyond, before any is
    parsed): a 1 MiB body of 40,000 tiny alerts would otherwise hold the intake for seconds."""
    if len(items) > MAX_ALERTS_PER_REQUEST:
        raise AlertRejected(f"alerts: {len(items)} alerts in one request, more than "
                            f"{MAX_ALERTS_PER_REQUEST}; split them (Alertmanager: max_alerts)",
                            413)


def as_text_map(value: Any, where: str) -> dict[str, str]:
    """A label or annotation map with string values (numbers and booleans are stringified)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AlertRejected(f"{where}: expected an object of strings")
    out = {}
    for key, item in value.items():
        if isinstance(item, dict | list):
            raise AlertRejected(f"{where}.{key}: expected a string, got {type(item).__name__}")
        out[str(key)[:256]] = "" if item is None else str(item)[:4096]
    return out


def parse_time(value: Any, where: str) -> datetime | None:
    """An RFC 3339 time (or epoch seconds/milliseconds); Go's zero time means "none"."""
    if value in (None, "") or (isinstance(value, str) and value.startswith("0001-01-01")):
        return None
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
            number = float(value)
            return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
        text = str(value).replace("Z", "+00:00")
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = text[:-2] + ":" + text[-2:]
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise AlertRejected(f"{where}: {value!r} is not a time") from exc
