"""Accepting alerts: store them, fold duplicates into the open incident, declare new ones.

One open incident per fingerprint is a database constraint (`open_fingerprints` primary key),
so several intake processes on one PostgreSQL stay correct: a conflicting insert retries the
whole batch and finds the incident the other process declared.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from firelane.errors import StoreError
from firelane.models import (
    Alert,
    Execution,
    Incident,
    IncidentDraft,
    IncidentStatus,
    TimelineEvent,
    utcnow,
)
from firelane.store.alert_rows import alert_row, write_alerts
from firelane.store.base import aware
from firelane.store.incidents import _incident
from firelane.store.ledger import LedgerOps
from firelane.store.lifecycle import insert_sync, sync_for
from firelane.store.tables import alerts, incidents, open_fingerprints, open_groups

__all__ = ["Accepted", "AlertOps", "AlertPolicy", "ExecutionPlanner", "group_key"]


ExecutionPlanner = Callable[[Alert, Incident], Execution | None]


@dataclass(frozen=True)
class AlertPolicy:
    """How alerts fold into incidents.

    Reopen: a fingerprint that fires again within `reopen_window_seconds` of its incident
    resolving reopens that incident and pages again; from the `flap_after`-th reopen on it is
    flapping (marked, and no new page). A window of 0 always declares a new incident.

    Group: alerts whose `group_by` values (label names; `service`, `severity` and `source` mean
    the alert's own fields) are all present and equal join the incident the first of them
    declared, for `group_window_seconds` after it, while that incident is open.

    Sender groups (`sender_groups`, used when `group_by` is empty): alerts the sender put in
    one notification group (`Alert.group`, Alertmanager's `groupKey`) join the incident the
    first of them declared for as long as that incident is open, with no window: the sender
    keeps a group's identity for as long as it fires, and adds alerts to it every
    `group_interval`, so a storm across 50 instances is one incident, as PagerDuty's own
    Alertmanager integration keys it.
    """

    reopen_window_seconds: float = 0.0
    flap_after: int = 3
    group_by: tuple[str, ...] = ()
    group_window_seconds: float = 300.0
    sender_groups: bool = False


def group_key(alert: Alert, by: tuple[str, ...], sender_groups: bool = False) -> str | None:
    """The alert's group key, or None when grouping is off or a value is missing."""
    if not by:
        if not sender_groups or not alert.group:
            return None
        key = "sender:" + alert.group
        return key if len(key) <= 400 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    own = {"service": alert.service, "severity": alert.severity.value, "source": alert.source}
    values = []
    for name in by:
        value = own[name] if name in own else alert.labels.get(name)
        if not value:
            return None
        values.append(f"{name}={value}")
    key = "&".join(values)
    return key if len(key) <= 400 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Accepted:
    """What happened to one alert (the intake's 202 body lists these)."""

    id: str
    fingerprint: str
    status: str
    incident_id: str | None
    deduplicated: bool
    declared: bool
    reopened: bool = False
    flapping: bool = False
    grouped: bool = False
    execution_id: str | None = None

    @property
    def needs_response(self) -> bool:
        """A new incident, or one reopened by an alert that is not flapping, starts its
        runbook (and so pages); a duplicate, a grouped alert or a flapping one does not."""
        return self.declared or (self.reopened and not self.flapping)


@dataclass
class _Batch:
    """One transaction's view: open fingerprints (read once, kept current), repeats to count,
    alert rows and timeline events to insert at the end."""

    open: dict[str, str]
    repeats: Counter[str] = field(default_factory=Counter)
    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[TimelineEvent] = field(default_factory=list)

    def flush(self, conn: Connection) -> None:
        """Write the counted repeats and the alerts."""
        write_alerts(conn, self.rows, self.repeats, utcnow())


class AlertOps(LedgerOps):
    """Alert intake against the store."""

    def _reopen(self, conn: Connection, alert: Alert, policy: AlertPolicy,
                events: list[TimelineEvent]) -> tuple[str, bool] | None:
        """Reopen the incident this fingerprint resolved recently; (incident id, flapping)."""
        last = conn.execute(select(alerts.c.incident_id).where(
            alerts.c.fingerprint == alert.fingerprint, alerts.c.incident_id.is_not(None))
            .order_by(alerts.c.received_at.desc()).limit(1)).scalar()
        if last is None:
            return None
        current = _incident(conn.execute(select(incidents).where(
            incidents.c.id == last).with_for_update(key_share=True)).one())
        age = (utcnow() - current.updated_at).total_seconds()
        if current.status is not IncidentStatus.RESOLVED or age > policy.reopen_window_seconds:
            return None
        events.append(current.transition(IncidentStatus.DECLARED, alert.source,
                                         f"its alert fired again {age:.0f} s after resolving",
                                         "alert"))
        flapping = current.reopened >= policy.flap_after
        insert_sync(conn, sync_for(events[-1], "alert", alert.source).model_copy(
            update={"page": not flapping}))
        if flapping:
            current.labels = {**current.labels, "flapping": "true"}
            events.append(TimelineEvent(
                incident_id=current.id, source=alert.source, kind="alert.flapping",
                summary=f"Alert is flapping (reopened {current.reopened} times); not paging "
                        "again", details={"fingerprint": alert.fingerprint}))
        conn.execute(update(incidents).where(incidents.c.id == current.id).values(
            status=current.status.value, reopened=current.reopened, labels=current.labels,
            updated_at=current.updated_at))
        return current.id, flapping

    def _join_group(self, conn: Connection, alert: Alert, policy: AlertPolicy,
                     events: list[TimelineEvent]) -> str | None:
        """The open incident this alert's group declared within the window, if any."""
        key = group_key(alert, policy.group_by, policy.sender_groups)
        if key is None:
            return None
        row = conn.execute(select(open_groups.c.incident_id, open_groups.c.opened_at,
                                  incidents.c.status)
                           .join(incidents, incidents.c.id == open_groups.c.incident_id)
                           .where(open_groups.c.group_key == key).with_for_update()).first()
        if row is None:
            return None
        age = (utcnow() - (aware(row.opened_at) or utcnow())).total_seconds()
        windowed = bool(policy.group_by)
        if (windowed and age > policy.group_window_seconds) or row.status in (
                IncidentStatus.RESOLVED.value, IncidentStatus.CLOSED.value):
            conn.execute(delete(open_groups).where(open_groups.c.group_key == key,
                                                   open_groups.c.incident_id == row.incident_id))
            return None
        events.append(TimelineEvent(
            incident_id=row.incident_id, source=alert.source, kind="alert.grouped",
            summary=f"Alert joined this incident by its group ({key})",
            details={"fingerprint": alert.fingerprint, "group_key": key}))
        return str(row.incident_id)

    def _open_group(self, conn: Connection, alert: Alert, policy: AlertPolicy,
                    incident_id: str) -> None:
        """Start the alert's group (a concurrent start conflicts, and the batch retries)."""
        key = group_key(alert, policy.group_by, policy.sender_groups)
        if key is not None:
            conn.execute(insert(open_groups).values(group_key=key, incident_id=incident_id,
                                                    opened_at=utcnow()))

    def _resolve(self, conn: Connection, alert: Alert, incident_id: str, auto_resolve: bool,
                 events: list[TimelineEvent]) -> None:
        conn.execute(delete(open_fingerprints).where(
            open_fingerprints.c.fingerprint == alert.fingerprint))
        if not auto_resolve:
            return
        still_firing = conn.execute(select(open_fingerprints.c.fingerprint).where(
            open_fingerprints.c.incident_id == incident_id).limit(1)).first()
        if still_firing is not None:
            return
        current = _incident(conn.execute(select(incidents).where(
            incidents.c.id == incident_id).with_for_update(key_share=True)).one())
        if current.status in (IncidentStatus.DECLARED, IncidentStatus.ACKNOWLEDGED,
                              IncidentStatus.MITIGATED):
            events.append(current.transition(IncidentStatus.RESOLVED, alert.source,
                                             "its alerts resolved", "alert"))
            insert_sync(conn, sync_for(events[-1], "alert", alert.source))
            conn.execute(update(incidents).where(incidents.c.id == incident_id).values(
                status=current.status.value, updated_at=current.updated_at))

    def _accept_one(self, conn: Connection, alert: Alert, auto_resolve: bool,
                    batch: _Batch, policy: AlertPolicy) -> Accepted:
        now = utcnow()
        events = batch.events
        fp = alert.fingerprint
        declared = deduplicated = reopened = flapping = grouped = False
        incident_id = batch.open.get(fp)
        if alert.status == "firing" and incident_id is not None:
            deduplicated = True
            batch.repeats[fp] += 1
        elif alert.status == "firing":
            again = self._reopen(conn, alert, policy, events) \
                if policy.reopen_window_seconds > 0 else None
            if again is not None:
                (incident_id, flapping), reopened = again, True
            else:
                incident_id = self._join_group(conn, alert, policy, events)
                grouped = incident_id is not None
            if incident_id is None:
                sender_grouped = policy.sender_groups and not policy.group_by
                incident = self._declare(conn, IncidentDraft(
                    title=(alert.group_title if sender_grouped else None) or alert.title,
                    severity=alert.severity,
                    service=alert.service or "unknown", labels=alert.labels,
                    description=alert.gaps_text()), actor=alert.source)
                if alert.gaps:
                    events.append(TimelineEvent(
                        incident_id=incident.id, source=alert.source, kind="alert.incomplete",
                        summary="The alert left out " + ", ".join(alert.gaps) + "; defaults "
                        "were used (see the description for the mapping to fix)",
                        details={"gaps": dict(alert.gaps)}))
                incident_id, declared = incident.id, True
                self._open_group(conn, alert, policy, incident_id)
            conn.execute(insert(open_fingerprints).values(
                fingerprint=fp, incident_id=incident_id, opened_at=now, last_seen_at=now,
                count=1))
            batch.open[fp] = incident_id
        elif incident_id is not None:
            batch.repeats.pop(fp, None)
            batch.open.pop(fp)
            self._resolve(conn, alert, incident_id, auto_resolve, events)
        batch.rows.append(alert_row(alert, incident_id))
        if incident_id is not None and not deduplicated:
            verb = "resolved" if alert.status == "resolved" else (
                "reopened" if reopened else "received")
            events.append(TimelineEvent(
                incident_id=incident_id, source=alert.source, kind=f"alert.{verb}",
                summary=f"Alert {verb}: {alert.title}",
                details={"alert_id": alert.id, "fingerprint": fp}))
        return Accepted(alert.id, fp, alert.status, incident_id, deduplicated, declared,
                        reopened, flapping, grouped)

    def accept_alerts(self, batch: list[Alert], auto_resolve: bool = False,
                      policy: AlertPolicy | None = None,
                      respond: ExecutionPlanner | None = None) -> list[Accepted]:
        """Store a request's alerts in one transaction; committed when this returns.

        `respond(alert, incident)` is asked, inside the same transaction, for the execution
        that answers each alert needing a response: the alert, its incident and the pending
        response commit together or not at all, so an intake that dies after its 202 leaves
        nothing that a restart cannot resume. A repeat of an open fingerprint is stored and
        counted (`open_fingerprints.count`) but adds no timeline event: a storm of 10,000
        repeats must not bury the incident's timeline.
        """
        return self.accept_batches([batch], auto_resolve, policy, respond)[0]

    def accept_batches(self, batches: list[list[Alert]], auto_resolve: bool = False,
                       policy: AlertPolicy | None = None,
                       respond: ExecutionPlanner | None = None) -> list[list[Accepted]]:
        """Several requests' alerts in one transaction (the intake's group commit): the open
        fingerprints are read (and locked) once, repeats are counted with one update per
        fingerprint, and the alerts are inserted together."""
        policy = policy or AlertPolicy()
        fingerprints = sorted({a.fingerprint for b in batches for a in b})
        for _ in range(20):
            try:
                with self.tx() as conn:
                    batch = _Batch(open=dict(conn.execute(
                        select(open_fingerprints.c.fingerprint, open_fingerprints.c.incident_id)
                        .where(open_fingerprints.c.fingerprint.in_(fingerprints))
                        .order_by(open_fingerprints.c.fingerprint).with_for_update()).all()))
                    out = [[self._accept_responding(conn, alert, auto_resolve, batch, policy,
                                                    respond) for alert in alerts_]
                           for alerts_ in batches]
                    batch.flush(conn)
                    self._insert_events(conn, batch.events)
                    return out
            except IntegrityError:
                continue
        raise StoreError("could not store the alerts after 20 conflicting tries")

    def _accept_responding(self, conn: Connection, alert: Alert, auto_resolve: bool,
                           batch: _Batch, policy: AlertPolicy,
                           respond: ExecutionPlanner | None) -> Accepted:
        accepted = self._accept_one(conn, alert, auto_resolve, batch, policy)
        if respond is None or not accepted.needs_response or accepted.incident_id is None:
            return accepted
        incident = _incident(conn.execute(select(incidents).where(
            incidents.c.id == accepted.incident_id)).one())
        execution = respond(alert, incident)
        if execution is None:
            return accepted
        self._insert_execution(conn, execution, batch.events)
        return replace(accepted, execution_id=execution.id)

    def alerts_of(self, incident_id: str) -> list[Alert]:
        """An incident's alerts, oldest first."""
        with self.tx(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(alerts).where(alerts.c.incident_id == incident_id)
                .order_by(alerts.c.received_at))]
        for row in rows:
            for key in ("starts_at", "ends_at", "received_at"):
                row[key] = aware(row[key])
        return [Alert.model_validate(r) for r in rows]
