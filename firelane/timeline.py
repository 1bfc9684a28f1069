"""One ordered incident timeline from every source, and the key times computed from it.

Pure functions over plain data (no I/O): `flows.records.timeline_sources` fetches PagerDuty,
Slack and Jira entries; the store gives Firelane's own events. Entries are merged in time order
(UTC) and duplicates between sources are dropped: two entries with the same `dedup` key are one
thing seen twice (the first source in `SOURCE_ORDER` wins).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from firelane.models import Alert, Incident, TimelineEvent

__all__ = [
    "DEFAULT_MINUTES_SAVED",
    "SOURCE_ORDER",
    "Automation",
    "Entry",
    "KeyTimes",
    "automation_summary",
    "from_store",
    "key_times",
    "merge",
]

SOURCE_ORDER = ("firelane", "alert", "runbook", "pagerduty", "slack", "jira")

DEFAULT_MINUTES_SAVED: dict[str, float] = {
    "jira.create_issue": 3, "pagerduty.trigger": 2, "slack.create_channel": 2,
    "slack.invite": 2, "slack.set_topic": 1, "slack.post_message": 1, "slack.add_bookmark": 1,
    "video.create_meeting": 2, "release.rollback": 10, "supervisor.restart": 5,
    "http.check": 3, "shell.run": 5, "pagerduty.resolve": 1, "jira.transition": 1,
}


class Entry(BaseModel):
    """One line of the assembled timeline."""

    at: datetime
    source: str
    kind: str
    summary: str
    actor: str | None = None
    key: bool = False
    details: dict[str, Any] = Field(default_factory=dict)
    dedup: str | None = None


def from_store(events: Iterable[TimelineEvent], alerts: Iterable[Alert]) -> list[Entry]:
    """Firelane's own events, plus each alert's own start time (when it was detected)."""
    out = [Entry(at=e.at, source=e.source if e.source in ("runbook",) else
                 ("alert" if e.kind.startswith("alert.") else "firelane"), kind=e.kind,
                 summary=e.summary, actor=e.actor,
                 key=e.kind.startswith("incident.") or e.kind.startswith("approval."),
                 details={**e.details, "step_id": e.step_id} if e.step_id else e.details)
           for e in events]
    for alert in alerts:
        if alert.status == "firing":
            out.append(Entry(at=alert.starts_at, source="alert", kind="alert.started",
                             summary=f"{alert.source} alert started: {alert.title}",
                             key=True, details={"fingerprint": alert.fingerprint},
                             dedup=f"alert-start:{alert.fingerprint}:{alert.starts_at}"))
    return out


def merge(*sources: Iterable[Entry]) -> list[Entry]:
    """All entries in time order (ties: `SOURCE_ORDER`), duplicates dropped."""
    rank = {name: i for i, name in enumerate(SOURCE_ORDER)}
    ordered = sorted((e for s in sources for e in s),
                     key=lambda e: (rank.get(e.source, len(rank)), e.at))
    seen: set[str] = set()
    kept = []
    for entry in ordered:
        if entry.dedup is not None:
            if entry.dedup in seen:
                continue
            seen.add(entry.dedup)
        kept.append(entry)
    return sorted(kept, key=lambda e: (e.at, rank.get(e.source, len(rank))))


@dataclass(frozen=True)
class KeyTimes:
    """When the incident was detected, declared, acknowledged, mitigated and resolved."""

    detected: datetime | None
    declared: datetime | None
    acknowledged: datetime | None
    mitigated: datetime | None
    resolved: datetime | None

    def _since_detected(self, at: datetime | None) -> timedelta | None:
        start = self.detected or self.declared
        return at - start if at is not None and start is not None else None

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        """Detected → acknowledged."""
        return self._since_detected(self.acknowledged)

    @property
    def time_to_mitigate(self) -> timedelta | None:
        """Detected → mitigated (or resolved, when it never was mitigated first)."""
        return self._since_detected(self.mitigated or self.resolved)

    @property
    def time_to_resolve(self) -> timedelta | None:
        """Detected → resolved."""
        return self._since_detected(self.resolved)

    def rows(self) -> list[tuple[str, datetime | None, timedelta | None]]:
        """(name, when, since detected) for reports."""
        return [("detected", self.detected, None), ("declared", self.declared,
                 self._since_detected(self.declared)),
                ("acknowledged", self.acknowledged, self.time_to_acknowledge),
                ("mitigated", self.mitigated, self._since_detected(self.mitigated)),
                ("resolved", self.resolved, self.time_to_resolve)]


def _first(entries: list[Entry], test: Any) -> datetime | None:
    return next((e.at for e in entries if test(e)), None)


def _moved_to(to: str) -> Any:
    return lambda e: e.kind in ("incident.status", "incident.reopened") \
        and e.details.get("to") == to


REMEDIATIONS = frozenset({"release.rollback", "supervisor.restart", "shell.run"})
VERIFICATIONS = frozenset({"http.check"})


def _verified_remediation(entries: list[Entry]) -> datetime | None:
    """When a verification step first succeeded after a remediation step succeeded."""
    uses: dict[str, str] = {}
    remediated = False
    for e in entries:
        step = str(e.details.get("step_id") or "")
        if e.kind == "step.started" and step:
            uses.setdefault(step, str(e.details.get("uses") or ""))
        if e.kind != "step.succeeded" or not step:
            continue
        action = str(e.details.get("uses") or uses.get(step, ""))
        if action in REMEDIATIONS:
            remediated = True
        elif action in VERIFICATIONS and remediated:
            return e.at
    return None


def _resolved(entries: list[Entry]) -> datetime | None:
    """The incident's own resolution (closing counts when it skipped resolving), None when
    it was reopened since."""
    resolved: datetime | None = None
    for e in entries:
        if e.kind == "incident.reopened":
            resolved = None
        elif _moved_to("resolved")(e) or (_moved_to("closed")(e) and resolved is None):
            resolved = e.at
    return resolved


def key_times(incident: Incident, entries: list[Entry]) -> KeyTimes:
    """Key times from the incident's own lifecycle: detected (first alert's start), declared,
    acknowledged (first acknowledgement from any side: Firelane, or PagerDuty's own log),
    mitigated (set by a person or a runbook, else the first verification that succeeded after
    a remediation), resolved (the incident's own resolution, never a vendor's: PagerDuty
    resolving the page is not the incident resolving). Consistent by construction: a
    resolved incident was acknowledged and mitigated by then at the latest, so no time to
    resolve is ever below the time to acknowledge or mitigate."""
    detected = _first(entries, lambda e: e.kind == "alert.started")
    declared = _first(entries, lambda e: e.kind == "incident.declared") or incident.created_at
    acknowledged = _first(entries, lambda e: _moved_to("acknowledged")(e) or (
        e.source == "pagerduty" and e.kind == "acknowledge_log_entry"))
    mitigated = _first(entries, _moved_to("mitigated")) or _verified_remediation(entries)
    resolved = _resolved(entries)
    if resolved is not None:
        mitigated = min(mitigated or resolved, resolved)
    if mitigated is not None:
        acknowledged = min(acknowledged or mitigated, mitigated)
    return KeyTimes(detected=min(filter(None, [detected, declared])), declared=declared,
                    acknowledged=acknowledged, mitigated=mitigated, resolved=resolved)


@dataclass
class Automation:
    """What automation did for the incident."""

    automatic: int = 0
    by_person: int = 0
    minutes_saved: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)


def automation_summary(entries: list[Entry],
                       minutes_saved: dict[str, float] | None = None) -> Automation:
    """Steps that succeeded, whether a person approved them, their wall time, and the minutes
    a person would have spent doing each by hand (`minutes_saved` per action)."""
    table = {**DEFAULT_MINUTES_SAVED, **(minutes_saved or {})}
    approved = {e.details.get("step_id") for e in entries if e.kind == "approval.approved"}
    started: dict[str, Entry] = {}
    out = Automation()
    for e in entries:
        step = e.details.get("step_id")
        if e.kind == "step.started" and step:
            started.setdefault(step, e)
        if e.kind == "step.succeeded" and step:
            begin = started.get(step)
            uses = str(e.details.get("uses") or (begin.details.get("uses") if begin else ""))
            person = step in approved
            out.by_person += int(person)
            out.automatic += int(not person)
            out.minutes_saved += table.get(uses, 0.0)
            out.steps.append({"step": step, "uses": uses, "by": "person" if person else
                              "automation", "seconds": round((e.at - begin.at).total_seconds(),
                                                             3) if begin else None})
    return out
