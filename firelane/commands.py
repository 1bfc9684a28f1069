"""The verbs people run an incident with, one implementation for every surface.

The CLI (`firelane declare`, `firelane incidents ack|severity|role|note|status`), the Prefect UI
(the `incident-command` deployment) and, as they are added, the HTTP API and Slack call these
and nothing else, so a verb behaves the same wherever it is used. Each change is one timeline
event carrying its actor, the surface it came through (`via`) and whether that surface proved
who the actor is (`verified`: a signed Slack request, the owner of an API token) or only took
their word for it (the CLI's OS user, the Prefect UI's form). Changes are serialised on the
incident's row, so two people changing the severity at once both land, in order, both recorded.
A change that changes nothing (acknowledging twice, naming the same investigator again) records
nothing and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from firelane.catalog import Catalog
from firelane.errors import ConfigError, NotFound
from firelane.inputs import new_execution
from firelane.matching import newly_matching
from firelane.models import (
    ALLOWED_TRANSITIONS,
    Incident,
    IncidentDraft,
    IncidentStatus,
    Role,
    Severity,
    TimelineEvent,
    utcnow,
)
from firelane.run_marks import DRY_RUN, SANDBOX
from firelane.runbook import LoadedRunbook
from firelane.store import Store
from firelane.updates import (
    Audience,
    IncidentUpdate,
    UpdateDraft,
    UpdateState,
    UpdateStatus,
    cadence_for,
    refuse_update,
)

__all__ = ["NOTE_MAX", "OPEN_STATUSES", "STAKEHOLDER_RUNBOOK", "Actor", "Changed",
           "IncidentCommands", "Posted", "allowed_next"]

NOTE_MAX = 10_000
STAKEHOLDER_RUNBOOK = "stakeholder-update"
OPEN_STATUSES = (IncidentStatus.DECLARED, IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED)


@dataclass(frozen=True)
class Actor:
    """Who made a change, through which surface, and whether that surface proved it."""

    name: str
    via: str
    verified: bool = False
    ref: str | None = None

    def details(self) -> dict[str, object]:
        """Where a change came from and how sure Firelane is of who made it (and the
        surface's own id for the person, such as a Slack user id, when it has one)."""
        return {"via": self.via, "verified": self.verified,
                **({"actor_id": self.ref} if self.ref else {})}

    def stamp(self, event: TimelineEvent) -> TimelineEvent:
        """`event` with `details()` added."""
        event.details = {**event.details, **self.details()}
        return event


@dataclass(frozen=True)
class Changed:
    """The incident after a command, whether the command changed anything, and the runbooks
    it queued for the responders (a severity change that a runbook's `match:` now fits)."""

    incident: Incident
    changed: bool
    said: str
    queued: tuple[str, ...] = ()
    executions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Posted:
    """An update as recorded, the execution that delivers it, and what to tell its author."""

    update: IncidentUpdate
    execution_id: str | None
    said: str


class IncidentCommands:
    """Declare, acknowledge, set severity, assign roles, add notes, change status, list.

    Example:
        >>> cmds = IncidentCommands(store)
        >>> cmds.acknowledge("INC-7", Actor("alice", "cli"))
    """

    def __init__(self, store: Store,
                 runbooks: list[LoadedRunbook] | Callable[[], list[LoadedRunbook]] | None = None,
                 sandbox: bool = False, for_responder: bool = True) -> None:
        self.store, self.sandbox, self.for_responder = store, sandbox, for_responder
        self._runbooks = runbooks

    @property
    def runbooks(self) -> list[LoadedRunbook]:
        """The runbooks a severity change may start (read at each change: a reloaded set
        counts at once)."""
        found = self._runbooks() if callable(self._runbooks) else self._runbooks
        return list(found or [])

    def declare(self, draft: IncidentDraft, by: Actor) -> Incident:
        """A new incident (its commander when the draft names one)."""
        return self.store.declare_incident(draft, actor=by.name, details=by.details())

    def _apply(self, ref: str, by: Actor, change: Callable[[Incident], TimelineEvent | str],
               via: str | None = None) -> Changed:
        said: list[tuple[bool, str]] = []

        def wrapped(incident: Incident) -> TimelineEvent | None:
            event = change(incident)
            if isinstance(event, str):
                said[:] = [(False, event)]
                return None
            said[:] = [(True, event.summary)]
            return by.stamp(event)
        incident = self.store.mutate_incident(ref, wrapped, via)
        changed, text = said[-1]
        return Changed(incident=incident, changed=changed, said=text)

    def acknowledge(self, ref: str, by: Actor) -> Changed:
        """Acknowledge; the first to acknowledge becomes commander unless one is set."""
        def change(incident: Incident) -> TimelineEvent | str:
            if incident.status is not IncidentStatus.DECLARED:
                return f"INC-{incident.number} is already {incident.status}"
            event = incident.transition(IncidentStatus.ACKNOWLEDGED, by.name, "", by.via)
            if incident.commander is None:
                incident.commander = by.name
                event.summary += f"; {by.name} is commander"
                event.details = {**event.details, "commander": by.name}
            return event
        return self._apply(ref, by, change, via=by.via)

    def set_status(self, ref: str, to: IncidentStatus, by: Actor, reason: str = "") -> Changed:
        """Move along the lifecycle (the page and ticket follow through the lifecycle sync)."""
        def change(incident: Incident) -> TimelineEvent | str:
            if incident.status is to:
                return f"INC-{incident.number} is already {to}"
            return incident.transition(to, by.name, reason, by.via)
        return self._apply(ref, by, change, via=by.via)

    def set_severity(self, ref: str, to: Severity, by: Actor, reason: str = "") -> Changed:
        """Raise or lower the severity, with the reason on the timeline; queue, for the
        responders, each runbook whose `match:` fits the new severity and did not fit the old
        (once per incident and runbook)."""
        before: list[Severity] = []

        def change(incident: Incident) -> TimelineEvent | str:
            if incident.severity is to:
                return f"INC-{incident.number} is already {to}"
            before[:] = [incident.severity]
            event = incident.change_severity(to, by.name)
            if reason:
                event.summary += f" ({reason})"
                event.details = {**event.details, "reason": reason}
            return event
        done = self._apply(ref, by, change)
        if not done.changed or not before:
            return done
        ran = {e.runbook_name for e in self.store.list_executions(done.incident.id)}
        queued, ids = [], []
        for loaded in newly_matching(self.runbooks, done.incident, before[0]):
            if loaded.runbook.name not in ran:
                ids.append(self.store.create_execution(new_execution(
                    loaded, done.incident, {}, sandbox=self.sandbox,
                    for_responder=self.for_responder)).id)
                queued.append(loaded.runbook.name)
        said = done.said + (f"; started {', '.join(queued)}" if queued else "")
        return Changed(done.incident, True, said, tuple(queued), tuple(ids))

    def assign(self, ref: str, role: Role, person: str, by: Actor) -> Changed:
        """Name the commander or communicator (replacing), or add an investigator."""
        person = person.strip().removeprefix("@")
        if not person:
            raise ConfigError("a role needs a person: give a name or handle")

        def change(incident: Incident) -> TimelineEvent | str:
            held: list[str | None] = list(incident.investigators)
            if role is Role.COMMANDER:
                held = [incident.commander]
            elif role is Role.COMMUNICATOR:
                held = [incident.communicator]
            if person in held:
                return f"{person} is already {role} of INC-{incident.number}"
            return incident.assign(role, person, by.name)
        return self._apply(ref, by, change)

    def note(self, ref: str, text: str, by: Actor) -> Changed:
        """Add a note to the timeline (a key event in the report)."""
        text = text.strip()
        if not text:
            raise ConfigError("an empty note: say what happened")
        if len(text) > NOTE_MAX:
            raise ConfigError(f"a note is at most {NOTE_MAX} characters (got {len(text)}): "
                              "link a document instead")

        def change(incident: Incident) -> TimelineEvent:
            return TimelineEvent(incident_id=incident.id, kind="incident.note", actor=by.name,
                                 summary=text, details={})
        return self._apply(ref, by, change)

    def post_update(self, ref: str, draft: UpdateDraft, by: Actor, catalog: Catalog,
                    update_id: str | None = None) -> Posted:
        """Record an update for stakeholders and queue its delivery (the `stakeholder-update`
        runbook). Internal updates are published at once; a public one waits for approval
        unless the draft or the catalog lets it publish alone. The delivery is a sandbox run
        or a dry run when every run of the incident was. With `update_id` (a runbook step's),
        posting again returns the update already recorded."""
        if update_id is not None:
            try:
                found = self.store.get_update(update_id)
                return Posted(found, found.execution_id, f"update #{found.seq} already posted")
            except NotFound:
                pass
        incident = self.store.get_incident(ref)
        refuse_update(incident, draft, catalog)
        delivery = next((r for r in self.runbooks if r.runbook.name == STAKEHOLDER_RUNBOOK),
                        None)
        if delivery is None:
            raise ConfigError(f"no {STAKEHOLDER_RUNBOOK!r} runbook is loaded: copy "
                              f"runbooks/{STAKEHOLDER_RUNBOOK}.yaml from Firelane into the "
                              "runbooks folder")
        now = utcnow()
        alone = draft.publish_alone or catalog.communications.publish_without_approval
        published = draft.audience is Audience.INTERNAL or alone
        cadence = cadence_for(catalog, incident.severity)
        due = (now + cadence if cadence is not None and draft.status is not UpdateStatus.RESOLVED
               and incident.status in OPEN_STATUSES else None)
        update = IncidentUpdate(
            **draft.model_dump(), **({"id": update_id} if update_id else {}),
            incident_id=incident.id, author=by.name, via=by.via, verified=by.verified,
            state=UpdateState.PUBLISHED if published else UpdateState.AWAITING_APPROVAL,
            created_at=now, published_at=now if published else None, next_due_at=due)
        state = "" if published else ", awaiting approval"
        event = by.stamp(TimelineEvent(
            incident_id=incident.id, kind="incident.update", actor=by.name, source=by.via,
            summary=f"Update #{{seq}} ({draft.audience}, {draft.status}{state}): "
                    f"{draft.message}",
            details={"status": draft.status.value, "audience": draft.audience.value,
                     "affected": {k: v.value for k, v in draft.affected.items()},
                     "state": update.state.value}))
        marks = self.store.run_marks([incident.id])[incident.id]
        self.store.add_update(update, event)
        execution = self.store.create_execution(new_execution(
            delivery, incident, {"update_id": update.id}, dry_run=DRY_RUN in marks,
            sandbox=self.sandbox or SANDBOX in marks, for_responder=self.for_responder))
        self.store.set_update_execution(update.id, execution.id)
        update.execution_id = execution.id
        said = (f"update #{update.seq} for INC-{incident.number} posted ({draft.audience}"
                f"{state})" + (f"; next due {due:%H:%M} UTC" if due else ""))
        return Posted(update, execution.id, said)

    def open_incidents(self, limit: int = 200) -> list[Incident]:
        """Open incidents, the most severe first, then the oldest first (the order in which
        an incident commander compares this incident with the others)."""
        return self.store.find_incidents(list(OPEN_STATUSES), limit=limit, by_severity=True)


def allowed_next(incident: Incident) -> list[str]:
    """The statuses `incident` may move to now (for error messages and forms)."""
    return sorted(s.value for s in ALLOWED_TRANSITIONS[incident.status])
