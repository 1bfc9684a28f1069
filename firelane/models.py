"""The incident domain: alerts, incidents and their lifecycle, executions, timeline, action items.

Plain pydantic models with no I/O. The lifecycle rules live here so the store, the CLI and the
flows enforce the same ones; every change an incident goes through yields a `TimelineEvent`.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from firelane.errors import InvalidTransition

__all__ = [
    "TITLE_MAX",
    "ActionItem",
    "Alert",
    "Approval",
    "Execution",
    "ExecutionStatus",
    "Incident",
    "IncidentDraft",
    "IncidentStatus",
    "Role",
    "Severity",
    "StepStatus",
    "TimelineEvent",
    "fit_title",
    "new_id",
    "time_ordered_id",
    "utcnow",
]


def utcnow() -> datetime:
    """Timezone-aware now in UTC; every stored time is UTC."""
    return datetime.now(UTC)


_IDS = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(32)))
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_RAND_B = (1 << 62) - 1


def new_id() -> str:
    """A random identifier (UUID4 hex) for rows created by Firelane: 122 random bits from a
    generator of its own seeded from the OS (and reseeded in a forked child), not a system
    call per id as `uuid.uuid4()` makes (30 µs each, a fifth of an alert's cost in a storm).
    Random from the first digit: idempotency keys quote an id's first 12 digits. Not for
    secrets: tokens and keys use `secrets`."""
    return f"{(_IDS.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"


def time_ordered_id() -> str:
    """A UUID version 7 (RFC 9562) as 32 hex digits, for alert rows: the first 48 bits are the
    Unix time in milliseconds, so a storm's alerts land together at the end of the `alerts`
    primary-key index instead of each on a random page (a group commit measured 49 µs an alert
    with random ids against 34 µs with these, 100,000 alerts in; the gap grows with the
    table). The other 74 bits are random, from `new_id`'s generator. Only for rows whose id
    no key quotes a prefix of: ids made in one millisecond share their first 12 digits."""
    rand = _IDS.getrandbits(74)
    value = (time.time_ns() // 1_000_000 << 80) | (0x7 << 76) | (rand >> 62 << 64) \
        | (0b10 << 62) | (rand & _RAND_B)
    return f"{value:032x}"


TITLE_MAX = 500
TITLE_MARKER = "…"


def fit_title(text: str) -> str:
    """An incident or alert title cut to `TITLE_MAX` characters, ending in `TITLE_MARKER` when
    cut: the one rule the intake and `firelane run --incident` share, so a long title is
    shortened the same way wherever it comes in instead of refused."""
    if len(text) <= TITLE_MAX:
        return text
    return text[: TITLE_MAX - len(TITLE_MARKER)].rstrip() + TITLE_MARKER

class Severity(StrEnum):
    """SEV1 is the worst."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


class IncidentStatus(StrEnum):
    """declared → acknowledged → mitigated → resolved → closed."""

    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


_S = IncidentStatus
ALLOWED_TRANSITIONS: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    _S.DECLARED: frozenset({_S.ACKNOWLEDGED, _S.MITIGATED, _S.RESOLVED}),
    _S.ACKNOWLEDGED: frozenset({_S.MITIGATED, _S.RESOLVED}),
    _S.MITIGATED: frozenset({_S.ACKNOWLEDGED, _S.RESOLVED}),
    _S.RESOLVED: frozenset({_S.CLOSED, _S.DECLARED, _S.ACKNOWLEDGED}),
    _S.CLOSED: frozenset(),
}
"""Forward moves may skip steps (an alert can auto-resolve a declared incident). A mitigated
incident whose fix did not hold goes back to acknowledged. A resolved incident may be reopened
(to declared or acknowledged); a closed one is final: open a follow-up incident instead."""


class Role(StrEnum):
    """Incident roles; investigators is a list, the others one person each."""

    COMMANDER = "commander"
    COMMUNICATOR = "communicator"
    INVESTIGATOR = "investigator"


class ExecutionStatus(StrEnum):
    """The state of one run of one runbook: `pending` waits for a responder, `ready` has had
    its urgent steps run and waits for a flow runner (`firelane respond --role flows`),
    `interrupted` was stopped by a signal and waits for `firelane resume` (nobody takes it up
    on their own)."""

    PENDING = "pending"
    RUNNING = "running"
    READY = "ready"
    INTERRUPTED = "interrupted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class StepStatus(StrEnum):
    """A step's recorded outcome; `claimed` means a worker holds its lease."""

    CLAIMED = "claimed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class TimelineEvent(BaseModel):
    """One thing that happened to an incident. Appended, never rewritten."""

    id: str = Field(default_factory=new_id)
    incident_id: str
    at: datetime = Field(default_factory=utcnow)
    source: str = "firelane"
    kind: str
    actor: str | None = None
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)
    execution_id: str | None = None
    step_id: str | None = None


class Alert(BaseModel):
    """A monitoring alert in Firelane's own shape, whatever source sent it."""

    id: str = Field(default_factory=time_ordered_id)
    source: str
    fingerprint: str
    status: Literal["firing", "resolved"] = "firing"
    title: str
    severity: Severity = Severity.SEV3
    service: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(default_factory=utcnow)
    ends_at: datetime | None = None
    received_at: datetime = Field(default_factory=utcnow)
    raw: dict[str, Any] = Field(default_factory=dict)
    incident_id: str | None = None
    group: str | None = Field(default=None, exclude=True, description=(
        "The sender's own notification group (Alertmanager's and Grafana's `groupKey`): "
        "alerts the sender grouped into one notification join one incident unless the "
        "intake's `group_by` says otherwise. Not stored with the alert; the timeline's "
        "`alert.grouped` event carries it."))
    group_title: str | None = Field(default=None, exclude=True, description=(
        "A title for the whole notification group (`HighErrorRate: 2 alerts (web-1, web-2)`) "
        "when its alerts' own titles differ: the incident a group declares is about all of "
        "them, not the first one. Not stored with the alert."))
    gaps: dict[str, str] = Field(default_factory=dict, exclude=True, description=(
        "What the alert did not say and Firelane filled in (field → what was used and which "
        "mapping to fix), set by the source's parser; an incident it declares says so in its "
        "description. Not stored with the alert."))

    def gaps_text(self) -> str:
        """The gaps as a paragraph for the incident's description ("" when there are none)."""
        if not self.gaps:
            return ""
        lines = "\n".join(f"- {field}: {why}" for field, why in self.gaps.items())
        return (f"The {self.source} alert that declared this incident left out what Firelane "
                f"needs, so defaults were used:\n{lines}\nFix the mapping named on each "
                "line; until then these defaults decide the runbook, the severity and who is "
                "paged.")


class IncidentDraft(BaseModel):
    """What it takes to declare an incident: title, severity and service; the rest is optional."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    severity: Severity
    service: str = Field(min_length=1, max_length=200)
    labels: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    commander: str | None = None
    private: bool = Field(default=False, description=(
        "A security incident: its channel is private and it is left out of listings for "
        "tokens and channels without access"))

    @model_validator(mode="before")
    @classmethod
    def _fit_title(cls, data: Any) -> Any:
        """A title over `TITLE_MAX` is cut (as the intake cuts alert titles) rather than the
        incident refused; the full title goes at the top of the description."""
        if isinstance(data, dict) and isinstance(data.get("title"), str) \
                and len(data["title"]) > TITLE_MAX:
            full, rest = data["title"], str(data.get("description") or "")
            data = {**data, "title": fit_title(full),
                    "description": f"{full}\n\n{rest}" if rest else full}
        return data


class Incident(BaseModel):
    """An incident and its lifecycle. Mutators return the timeline event that records the change."""

    id: str = Field(default_factory=new_id)
    number: int = 0
    title: str
    severity: Severity
    service: str
    status: IncidentStatus = IncidentStatus.DECLARED
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    commander: str | None = None
    communicator: str | None = None
    investigators: list[str] = Field(default_factory=list)
    links: dict[str, str] = Field(default_factory=dict)
    reopened: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    private: bool = False

    def transition(self, to: IncidentStatus, actor: str | None = None,
                   reason: str = "", via: str = "firelane") -> TimelineEvent:
        """Move to `to` if the lifecycle allows it; raise `InvalidTransition` otherwise. `via`
        says where the change came from (cli, slack, api, pagerduty, runbook, alert)."""
        if to not in ALLOWED_TRANSITIONS[self.status]:
            allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[self.status])) or "nothing (final)"
            raise InvalidTransition(
                f"incident {self.number} is {self.status}; it cannot become {to} "
                f"(allowed from {self.status}: {allowed})"
            )
        before = self.status
        reopening = before in (_S.RESOLVED,) and to in (_S.DECLARED, _S.ACKNOWLEDGED)
        self.status = to
        self.reopened += int(reopening)
        self.updated_at = utcnow()
        verb = "reopened" if reopening else to.value
        return TimelineEvent(
            incident_id=self.id, kind="incident.reopened" if reopening else "incident.status",
            source=via, actor=actor,
            summary=f"Incident {verb}" + (f" by {actor}" if actor else "") + f" via {via}"
                    + (f": {reason}" if reason else ""),
            details={"from": before.value, "to": to.value, "reason": reason, "via": via},
        )

    def change_severity(self, to: Severity, actor: str | None = None) -> TimelineEvent:
        """Raise or lower the severity."""
        before, self.severity = self.severity, to
        self.updated_at = utcnow()
        return TimelineEvent(incident_id=self.id, kind="incident.severity", actor=actor,
                             summary=f"Severity {before} → {to}",
                             details={"from": before.value, "to": to.value})

    def assign(self, role: Role, person: str, actor: str | None = None) -> TimelineEvent:
        """Give `person` a role; investigators accumulate, the other roles are replaced."""
        if role is Role.INVESTIGATOR:
            if person not in self.investigators:
                self.investigators.append(person)
            before = None
        elif role is Role.COMMANDER:
            before, self.commander = self.commander, person
        else:
            before, self.communicator = self.communicator, person
        self.updated_at = utcnow()
        return TimelineEvent(incident_id=self.id, kind="incident.role", actor=actor,
                             summary=f"{person} is {role.value}",
                             details={"role": role.value, "person": person, "previous": before})

    @property
    def is_open(self) -> bool:
        """True until the incident is resolved or closed."""
        return self.status not in (_S.RESOLVED, _S.CLOSED)


class Execution(BaseModel):
    """One run of one runbook for one incident, with a snapshot of the runbook it ran."""

    id: str = Field(default_factory=new_id)
    incident_id: str
    runbook_name: str
    runbook_hash: str
    runbook_source: str
    runbook_path: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    status: ExecutionStatus = ExecutionStatus.PENDING
    dry_run: bool = False
    sandbox: bool = False
    flow_run_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    first_action_at: datetime | None = None


class ActionItem(BaseModel):
    """A postmortem follow-up with an owner and a due date."""

    id: str = Field(default_factory=new_id)
    incident_id: str
    title: str
    owner: str | None = None
    due: datetime | None = None
    status: Literal["open", "done"] = "open"
    external_key: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None
    closed_at: datetime | None = None


class Approval(BaseModel):
    """A request for a person to approve one step of one execution, and its decision."""

    id: str = Field(default_factory=new_id)
    incident_id: str
    execution_id: str
    step_id: str
    status: Literal["pending", "approved", "rejected"] = "pending"
    approvers: list[str] = Field(default_factory=list)
    message: str = ""
    requested_at: datetime = Field(default_factory=utcnow)
    deadline: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    flow_run_id: str | None = None
