"""Fetching the vendors' side of an incident for its timeline: PagerDuty log entries, Slack
channel messages (pinned ones, and those with a key reaction, marked as key events), Jira
status transitions and comments of the incident ticket. Where to
look comes from the incident's own executions (the page's dedup key, the war-room channel). A
source that is not configured or not reachable is left out, with the reason returned."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from firelane.inputs import execution_context
from firelane.loader import parse_snapshot
from firelane.models import Incident, StepStatus
from firelane.registry import ActionContext, call_action
from firelane.store import Store
from firelane.timeline import Entry

__all__ = ["KEY_REACTIONS", "Found", "find_artifacts", "vendor_entries"]

log = logging.getLogger("firelane.timeline")

KEY_REACTIONS = ("pushpin", "key", "star")
_KEY_PD = ("acknowledge_log_entry", "resolve_log_entry", "escalate_log_entry",
           "trigger_log_entry")

Found = dict[str, list[tuple[str, ActionContext]]]


def find_artifacts(store: Store, incident: Incident) -> Found:
    """Outputs of the incident's executions that point at vendor objects: `page` (dedup
    keys), `channel` (Slack ids) and `ticket` (Jira keys), each with a context to read it."""
    found: Found = {"page": [], "channel": [], "ticket": []}
    wanted = {"pagerduty.trigger": ("page", "dedup_key"), "slack.create_channel":
              ("channel", "id"), "jira.create_issue": ("ticket", "key")}
    for execution in store.list_executions(incident.id):
        loaded = parse_snapshot(execution.runbook_source, execution.runbook_path or "<snapshot>")
        uses = {s.id: s.uses for s in loaded.runbook.all_steps()}
        for step_id, record in store.step_records(execution.id).items():
            kind = wanted.get(uses.get(step_id, ""))
            if kind is None or record.status is not StepStatus.SUCCEEDED or not record.outputs \
                    or record.outputs.get("dry_run"):
                continue
            value = str(record.outputs.get(kind[1]) or "")
            if value and value not in [v for v, _ in found[kind[0]]]:
                found[kind[0]].append((value, execution_context(
                    execution, incident, f"timeline-{step_id}",
                    f"{record.idempotency_key}:timeline")))
    return found


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        if isinstance(value, (int, float)) or str(value).replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), UTC)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _pagerduty(got: Any, _: str, __: tuple[str, ...]) -> list[Entry]:
    return [Entry(at=at, source="pagerduty", kind=str(row["type"]),
                  summary=str(row.get("summary") or row["type"]), actor=row.get("agent"),
                  key=row["type"] in _KEY_PD, details={"incident": got.incident_id})
            for row in got.entries if (at := _when(row.get("at"))) is not None]


def _slack(got: Any, channel: str, key_reactions: tuple[str, ...]) -> list[Entry]:
    out = []
    for message in got.messages:
        at = _when(message.get("ts"))
        if at is None:
            continue
        reactions = [r for r in message.get("reactions") or [] if r in key_reactions]
        out.append(Entry(
            at=at, source="slack", kind="slack.pinned" if message.get("pinned") else
            "slack.message", summary=str(message.get("text") or "")[:300],
            actor=message.get("user"), key=bool(message.get("pinned") or reactions),
            details={"channel": channel, "ts": message.get("ts"), "reactions": reactions},
            dedup=f"slack:{channel}:{message.get('ts')}"))
    return out


def _jira(got: Any, issue: str, _: tuple[str, ...]) -> list[Entry]:
    return [Entry(at=at, source="jira", kind=str(row["kind"]), summary=str(row["summary"]),
                  actor=row.get("actor"), key=row["kind"] == "jira.transition",
                  details={"issue": issue})
            for row in got.entries if (at := _when(row.get("at"))) is not None]


_SOURCES = (("page", "pagerduty", "pagerduty.log_entries", "dedup_key", _pagerduty),
            ("channel", "slack", "slack.history", "channel", _slack),
            ("ticket", "jira", "jira.history", "issue", _jira))


async def vendor_entries(found: Found, key_reactions: tuple[str, ...] = KEY_REACTIONS,
                         ) -> tuple[list[Entry], dict[str, str]]:
    """Entries from PagerDuty, Slack and Jira; (entries, {source: why it was left out})."""
    entries: list[Entry] = []
    skipped: dict[str, str] = {}
    for kind, vendor, action_name, field, convert in _SOURCES:
        for value, ctx in found[kind]:
            inputs: dict[str, Any] = {field: value}
            if action_name == "slack.history":
                inputs["limit"] = 1000
            try:
                got = await call_action(action_name, inputs, ctx)
            except Exception as exc:
                skipped[f"{vendor} {value}"] = f"{type(exc).__name__}: {exc}"
                continue
            entries += convert(got, value, key_reactions)
    for name, why in skipped.items():
        log.info("timeline source %s left out: %s", name, why)
    return entries, skipped
