"""Incidents, their timeline, executions and action items."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from firelane.errors import NotFound, StoreError
from firelane.links import LINK_EVENT, Link
from firelane.models import (
    ActionItem,
    Execution,
    ExecutionStatus,
    Incident,
    IncidentDraft,
    IncidentStatus,
    Role,
    Severity,
    TimelineEvent,
    utcnow,
)
from firelane.redaction import redact, redact_value
from firelane.run_marks import marks_of
from firelane.store.base import StoreBase, aware
from firelane.store.lifecycle import insert_sync, sync_for
from firelane.store.notify import notify_work
from firelane.store.tables import action_items, executions, incidents, timeline_events

__all__ = ["IncidentOps"]


def event_rows(events: Iterable[TimelineEvent]) -> list[dict[str, Any]]:
    """Timeline events as redacted rows, ready to insert (built before a transaction where
    they can be, so a writer holds the lock only for the SQL)."""
    return [{**row, "summary": redact(row["summary"]), "details": redact_value(row["details"])}
            for row in (e.model_dump(mode="python") for e in events)]


def insert_event_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert rows made by `event_rows` (none: no statement)."""
    if rows:
        conn.execute(insert(timeline_events), rows)


def read_execution(conn: Connection, execution_id: str) -> Execution:
    """An execution by id, inside the caller's transaction."""
    row = conn.execute(select(executions).where(executions.c.id == execution_id)).first()
    if row is None:
        raise NotFound(f"no execution {execution_id!r}")
    return _execution(row)


def _incident(row: Any) -> Incident:
    data = dict(row._mapping)
    data["created_at"], data["updated_at"] = aware(data["created_at"]), aware(data["updated_at"])
    return Incident.model_validate(data)


def _event(row: Any) -> TimelineEvent:
    data = dict(row._mapping)
    data["at"] = aware(data["at"])
    return TimelineEvent.model_validate(data)


def _execution(row: Any) -> Execution:
    data = {k: v for k, v in row._mapping.items() if k not in ("owner", "heartbeat_at")}
    for key in ("created_at", "finished_at", "first_action_at"):
        data[key] = aware(data[key])
    return Execution.model_validate(data)


NUMBER_LOCK = 4242001


class IncidentOps(StoreBase):
    """Incident lifecycle, timeline, executions and action items."""

    def _insert_events(self, conn: Connection, events: Iterable[TimelineEvent]) -> None:
        insert_event_rows(conn, event_rows(events))

    def _declare(self, conn: Connection, draft: IncidentDraft,
                 actor: str | None = None, details: dict[str, Any] | None = None) -> Incident:
        if self.dialect == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({NUMBER_LOCK})")
        number = (conn.execute(select(func.max(incidents.c.number))).scalar() or 0) + 1
        incident = Incident(number=number, title=draft.title, severity=draft.severity,
                            service=draft.service, labels=draft.labels,
                            description=draft.description, commander=draft.commander,
                            private=draft.private)
        conn.execute(insert(incidents), incident.model_dump(mode="python"))
        self._insert_events(conn, [TimelineEvent(
            incident_id=incident.id, kind="incident.declared", actor=actor,
            summary=f"INC-{number} declared: [{draft.severity}] {draft.title}",
            details={"severity": draft.severity.value, "service": draft.service,
                     **(details or {})})])
        return incident

    def declare_incident(self, draft: IncidentDraft, actor: str | None = None,
                         details: dict[str, Any] | None = None) -> Incident:
        """Create an incident with the next human number and a `declared` timeline event
        (`details` added to the event's). On PostgreSQL the number is taken under an advisory
        lock, so concurrent declarations queue instead of colliding (SQLite serialises writers
        at BEGIN already)."""
        for _ in range(20):
            try:
                with self.tx() as conn:
                    return self._declare(conn, draft, actor, details)
            except IntegrityError:
                continue
        raise StoreError("could not allocate an incident number after 20 tries")

    def get_incident(self, ref: str) -> Incident:
        """An incident by id, number (`12`) or `INC-12`."""
        text = ref.strip()
        number = text.upper().removeprefix("INC-")
        cond = incidents.c.number == int(number) if number.isdigit() else incidents.c.id == text
        with self.tx(write=False) as conn:
            row = conn.execute(select(incidents).where(cond)).first()
        if row is None:
            raise NotFound(f"no incident {ref!r} (give its number, INC-number or id; "
                           "`firelane incidents list` shows them)")
        return _incident(row)

    def list_incidents(self, status: IncidentStatus | None = None,
                       limit: int = 50) -> list[Incident]:
        """Newest first."""
        return self.find_incidents([status] if status is not None else None, limit=limit)

    def find_incidents(self, statuses: list[IncidentStatus] | None = None,
                       severity: Severity | None = None, service: str | None = None,
                       limit: int = 50, offset: int = 0, by_severity: bool = False,
                       include_private: bool = True) -> list[Incident]:
        """Incidents matching every filter given: newest first, or (`by_severity`) the most
        severe first and then the oldest, the order an incident commander compares them in;
        private incidents only with `include_private`."""
        order = [incidents.c.severity, incidents.c.number] if by_severity \
            else [incidents.c.number.desc()]
        query = select(incidents).order_by(*order).limit(limit).offset(offset)
        if statuses is not None:
            query = query.where(incidents.c.status.in_([s.value for s in statuses]))
        if severity is not None:
            query = query.where(incidents.c.severity == severity.value)
        if service is not None:
            query = query.where(incidents.c.service == service)
        if not include_private:
            query = query.where(incidents.c.private.is_(False))
        with self.tx(write=False) as conn:
            return [_incident(r) for r in conn.execute(query)]

    def mutate_incident(self, ref: str, change: Callable[[Incident], TimelineEvent | None],
                        via: str | None = None) -> Incident:
        """Apply `change` under the incident's row lock and record the event it returns (None:
        nothing recorded); with `via`, a status change's lifecycle sync too."""
        return self._mutate(ref, change, via)

    def run_marks(self, incident_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Per incident, the marks (`dry run`, `sandbox`) all its executions carry."""
        if not incident_ids:
            return {}
        query = select(executions.c.incident_id, executions.c.dry_run, executions.c.sandbox
                       ).where(executions.c.incident_id.in_(list(incident_ids)))
        runs: dict[str, list[tuple[bool, bool]]] = {i: [] for i in incident_ids}
        with self.tx(write=False) as conn:
            for row in conn.execute(query):
                runs[row.incident_id].append((bool(row.dry_run), bool(row.sandbox)))
        return {i: marks_of(flags) for i, flags in runs.items()}

    def _mutate(self, ref: str, change: Callable[[Incident], TimelineEvent | None],
                via: str | None = None) -> Incident:
        incident_id = self.get_incident(ref).id
        with self.tx() as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id)
                               .with_for_update(key_share=True)).one()
            incident = _incident(row)
            event = change(incident)
            data = incident.model_dump(mode="python")
            conn.execute(update(incidents).where(incidents.c.id == incident_id).values(data))
            if event is not None:
                self._insert_events(conn, [event])
                if via is not None:
                    insert_sync(conn, sync_for(event, via, event.actor))
        return incident

    def set_status(self, ref: str, to: IncidentStatus, actor: str | None = None,
                   reason: str = "", via: str = "firelane") -> Incident:
        """Move an incident along its lifecycle (raises `InvalidTransition` when not allowed),
        recording where the change came from (`via`: cli, slack, api, runbook, ...) and, in
        the same transaction, the lifecycle sync that brings its page and ticket in step."""
        return self._mutate(ref, lambda i: i.transition(to, actor, reason, via), via)

    def follow_vendor(self, ref: str, to: IncidentStatus, via: str, actor: str | None,
                      at: datetime | None = None) -> Incident | None:
        """Take a status change that happened at a vendor (PagerDuty acknowledged or resolved
        the page): moved and recorded once, None when the incident is already there or past
        it (our own change coming back, or a repeated webhook). The first to acknowledge
        becomes commander unless one is set, as with Firelane's own acknowledgement."""
        rank = list(IncidentStatus)
        current = self.get_incident(ref)
        if current.status is to or rank.index(current.status) > rank.index(to):
            return None

        def change(incident: Incident) -> TimelineEvent | None:
            if incident.status is to or rank.index(incident.status) > rank.index(to):
                return None
            event = incident.transition(to, actor, f"at {via}", via)
            if to is IncidentStatus.ACKNOWLEDGED and incident.commander is None and actor:
                incident.commander = actor
                event.summary += f"; {actor} is commander"
                event.details = {**event.details, "commander": actor}
            if at is not None:
                event.at = at
            return event
        return self._mutate(ref, change, via)

    def change_severity(self, ref: str, to: Severity, actor: str | None = None) -> Incident:
        """Raise or lower an incident's severity."""
        return self._mutate(ref, lambda i: i.change_severity(to, actor))

    def assign_role(self, ref: str, role: Role, person: str, actor: str | None = None) -> Incident:
        """Name a commander, communicator or investigator."""
        return self._mutate(ref, lambda i: i.assign(role, person, actor))

    def set_link(self, ref: str, kind: str, url: str, actor: str | None = None) -> Incident:
        """Attach a ticket/page/channel/bridge link to the incident."""
        def change(incident: Incident) -> TimelineEvent:
            incident.links = {**incident.links, kind: url}
            return TimelineEvent(incident_id=incident.id, kind="incident.link", actor=actor,
                                 summary=f"{kind}: {url}", details={"kind": kind, "url": url})
        return self._mutate(ref, change)

    def _record_link(self, conn: Connection, incident_id: str, link: Link,
                     rows: list[dict[str, Any]] | None = None) -> bool:
        """Put `link` on the incident and the timeline, once per execution and kind: a re-run
        of the same execution, or a second worker finishing its step, records nothing more.
        With `rows`, the link's timeline event is added to them for the caller to insert
        with its own (one statement fewer)."""
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)
                           .with_for_update(key_share=True)).first()
        if row is None:
            raise NotFound(f"no incident {incident_id!r}")
        if link.execution_id is not None:
            earlier = conn.execute(select(timeline_events.c.details).where(
                timeline_events.c.incident_id == incident_id,
                timeline_events.c.kind == LINK_EVENT,
                timeline_events.c.execution_id == link.execution_id)).scalars()
            if any((d or {}).get("kind") == link.kind for d in earlier):
                return False
        links = {**(row.links or {}), link.kind: link.url}
        conn.execute(update(incidents).where(incidents.c.id == incident_id)
                     .values(links=links, updated_at=utcnow()))
        if rows is None:
            self._insert_events(conn, [link.event(incident_id)])
        else:
            rows.extend(event_rows([link.event(incident_id)]))
        return True

    def record_link(self, incident_id: str, link: Link) -> bool:
        """Record a link an execution created (see `_record_link`); True when it was new."""
        with self.tx() as conn:
            return self._record_link(conn, incident_id, link)

    def flag_incident(self, ref: str, label: str, event: TimelineEvent) -> Incident:
        """Set `label: "true"` on the incident and record why, in one transaction."""
        def change(incident: Incident) -> TimelineEvent:
            incident.labels = {**incident.labels, label: "true"}
            return event
        return self._mutate(ref, change)

    def append_events(self, events: Iterable[TimelineEvent]) -> None:
        """Append timeline events (never rewritten)."""
        with self.tx() as conn:
            self._insert_events(conn, events)

    def timeline(self, incident_id: str) -> list[TimelineEvent]:
        """Every event of an incident in time order."""
        query = (select(timeline_events).where(timeline_events.c.incident_id == incident_id)
                 .order_by(timeline_events.c.at, timeline_events.c.id))
        with self.tx(write=False) as conn:
            return [_event(r) for r in conn.execute(query)]

    def _insert_execution(self, conn: Connection, execution: Execution,
                          events: list[TimelineEvent]) -> None:
        conn.execute(insert(executions), execution.model_dump(mode="python"))
        if execution.status is ExecutionStatus.PENDING:
            notify_work(conn, ExecutionStatus.PENDING.value)
        events.append(TimelineEvent(
            incident_id=execution.incident_id, kind="execution.created",
            execution_id=execution.id,
            summary=f"Runbook {execution.runbook_name} queued"
                    + (" (dry run)" if execution.dry_run else ""),
            details={"runbook_hash": execution.runbook_hash, "inputs": execution.inputs}))

    def create_execution(self, execution: Execution) -> Execution:
        """Record a new execution with its runbook snapshot."""
        with self.tx() as conn:
            events: list[TimelineEvent] = []
            self._insert_execution(conn, execution, events)
            self._insert_events(conn, events)
        return execution

    def get_execution(self, execution_id: str) -> Execution:
        """An execution by id."""
        with self.tx(write=False) as conn:
            return read_execution(conn, execution_id)

    def list_executions(self, incident_id: str) -> list[Execution]:
        """An incident's executions, oldest first."""
        query = (select(executions).where(executions.c.incident_id == incident_id)
                 .order_by(executions.c.created_at))
        with self.tx(write=False) as conn:
            return [_execution(r) for r in conn.execute(query)]

    def set_execution_status(self, execution_id: str, status: ExecutionStatus,
                             flow_run_id: str | None = None) -> None:
        """Mark an execution running or finished (and remember its Prefect flow run)."""
        values: dict[str, Any] = {"status": status.value}
        if flow_run_id is not None:
            values["flow_run_id"] = flow_run_id
        if status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED):
            values["finished_at"] = utcnow()
        with self.tx() as conn:
            found = conn.execute(update(executions).where(executions.c.id == execution_id)
                                 .values(values)).rowcount
        if not found:
            raise NotFound(f"no execution {execution_id!r}")

    def add_action_item(self, item: ActionItem) -> ActionItem:
        """Record a postmortem action item."""
        with self.tx() as conn:
            conn.execute(insert(action_items), item.model_dump(mode="python"))
            self._insert_events(conn, [TimelineEvent(
                incident_id=item.incident_id, kind="action_item.created", actor=item.owner,
                summary=f"Action item: {item.title}", details={"action_item_id": item.id})])
        return item

    def list_action_items(self, incident_id: str | None = None,
                          status: str | None = None) -> list[ActionItem]:
        """Action items, optionally for one incident and/or one status."""
        query = select(action_items).order_by(action_items.c.created_at)
        if incident_id is not None:
            query = query.where(action_items.c.incident_id == incident_id)
        if status is not None:
            query = query.where(action_items.c.status == status)
        with self.tx(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            for key in ("due", "created_at", "reminded_at", "escalated_at", "closed_at"):
                row[key] = aware(row[key])
        return [ActionItem.model_validate(r) for r in rows]
