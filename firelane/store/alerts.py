"""Accepting alerts: store them, fold duplicates into the open incident, declare new ones.

One open incident per fingerprint is a database constraint (`open_fingerprints` primary key),
so several intake processes on one PostgreSQL stay correct: a conflicting insert retries the
whole batch and finds the incident the other process declared.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from firelane.errors import StoreError
from firelane.models import Alert, IncidentDraft, IncidentStatus, TimelineEvent, utcnow
from firelane.store.incidents import _incident
from firelane.store.ledger import LedgerOps
from firelane.store.tables import alerts, incidents, open_fingerprints

__all__ = ["Accepted", "AlertOps", "ReopenPolicy"]


@dataclass(frozen=True)
class ReopenPolicy:
    """A fingerprint that fires again within `window_seconds` of its incident resolving
    reopens that incident; from the `flap_after`-th reopen on, it is flapping (marked, and no
    new page). A window of 0 always declares a new incident."""

    window_seconds: float = 0.0
    flap_after: int = 3


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

    @property
    def needs_response(self) -> bool:
        """Only a new incident starts a runbook; a reopened one is recorded (timeline, metric,
        the flapping mark) but its earlier response is not run again."""
        return self.declared


class AlertOps(LedgerOps):
    """Alert intake against the store."""

    def _reopen(self, conn: Connection, alert: Alert, policy: ReopenPolicy,
                events: list[TimelineEvent]) -> tuple[str, bool] | None:
        """Reopen the incident this fingerprint resolved recently; (incident id, flapping)."""
        last = conn.execute(select(alerts.c.incident_id).where(
            alerts.c.fingerprint == alert.fingerprint, alerts.c.incident_id.is_not(None))
            .order_by(alerts.c.received_at.desc()).limit(1)).scalar()
        if last is None:
            return None
        current = _incident(conn.execute(select(incidents).where(
            incidents.c.id == last).with_for_update()).one())
        age = (utcnow() - current.updated_at).total_seconds()
        if current.status is not IncidentStatus.RESOLVED or age > policy.window_seconds:
            return None
        events.append(current.transition(IncidentStatus.DECLARED, alert.source,
                                         f"its alert fired again {age:.0f} s after resolving"))
        flapping = current.reopened >= policy.flap_after
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

    def _accept_one(self, conn: Connection, alert: Alert, auto_resolve: bool,
                    events: list[TimelineEvent], policy: ReopenPolicy) -> Accepted:
        now = utcnow()
        row = conn.execute(select(open_fingerprints).where(
            open_fingerprints.c.fingerprint == alert.fingerprint).with_for_update()).first()
        declared = deduplicated = reopened = flapping = False
        incident_id: str | None = row.incident_id if row is not None else None
        if alert.status == "firing":
            again = self._reopen(conn, alert, policy, events) if row is None and \
                policy.window_seconds > 0 else None
            if again is not None:
                incident_id, flapping = again
                reopened = True
                conn.execute(insert(open_fingerprints).values(
                    fingerprint=alert.fingerprint, incident_id=incident_id, opened_at=now,
                    last_seen_at=now, count=1))
            elif row is not None:
                deduplicated = True
                conn.execute(update(open_fingerprints).where(
                    open_fingerprints.c.fingerprint == alert.fingerprint).values(
                    last_seen_at=now, count=open_fingerprints.c.count + 1))
            else:
                incident = self._declare(conn, IncidentDraft(
                    title=alert.title, severity=alert.severity,
                    service=alert.service or "unknown", labels=alert.labels), actor=alert.source)
                incident_id, declared = incident.id, True
                conn.execute(insert(open_fingerprints).values(
                    fingerprint=alert.fingerprint, incident_id=incident_id, opened_at=now,
                    last_seen_at=now, count=1))
        elif row is not None:
            conn.execute(delete(open_fingerprints).where(
                open_fingerprints.c.fingerprint == alert.fingerprint))
            if auto_resolve:
                current = _incident(conn.execute(select(incidents).where(
                    incidents.c.id == incident_id).with_for_update()).one())
                if current.status in (IncidentStatus.DECLARED, IncidentStatus.ACKNOWLEDGED,
                                      IncidentStatus.MITIGATED):
                    events.append(current.transition(IncidentStatus.RESOLVED, alert.source,
                                                     "its alert resolved"))
                    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(
                        status=current.status.value, updated_at=current.updated_at))
        stored = alert.model_copy(update={"incident_id": incident_id})
        conn.execute(insert(alerts), stored.model_dump(mode="python"))
        if incident_id is not None:
            verb = "resolved" if alert.status == "resolved" else (
                "repeated" if deduplicated else "reopened" if reopened else "received")
            events.append(TimelineEvent(
                incident_id=incident_id, source=alert.source, kind=f"alert.{verb}",
                summary=f"Alert {verb}: {alert.title}",
                details={"alert_id": alert.id, "fingerprint": alert.fingerprint}))
        return Accepted(alert.id, alert.fingerprint, alert.status, incident_id, deduplicated,
                        declared, reopened, flapping)

    def accept_alerts(self, batch: list[Alert], auto_resolve: bool = False,
                      policy: ReopenPolicy | None = None) -> list[Accepted]:
        """Store a request's alerts in one transaction; committed when this returns."""
        policy = policy or ReopenPolicy()
        for _ in range(20):
            try:
                with self.tx() as conn:
                    events: list[TimelineEvent] = []
                    out = [self._accept_one(conn, alert, auto_resolve, events, policy)
                           for alert in batch]
                    self._insert_events(conn, events)
                    return out
            except IntegrityError:
                continue
        raise StoreError("could not store the alerts after 20 conflicting tries")

    def alerts_of(self, incident_id: str) -> list[Alert]:
        """An incident's alerts, oldest first."""
        from firelane.store.base import aware

        with self.tx(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(alerts).where(alerts.c.incident_id == incident_id)
                .order_by(alerts.c.received_at))]
        for row in rows:
            for key in ("starts_at", "ends_at", "received_at"):
                row[key] = aware(row[key])
        return [Alert.model_validate(r) for r in rows]
