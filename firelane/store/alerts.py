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

__all__ = ["Accepted", "AlertOps"]


@dataclass(frozen=True)
class Accepted:
    """What happened to one alert (the intake's 202 body lists these)."""

    id: str
    fingerprint: str
    status: str
    incident_id: str | None
    deduplicated: bool
    declared: bool


class AlertOps(LedgerOps):
    """Alert intake against the store."""

    def _accept_one(self, conn: Connection, alert: Alert, auto_resolve: bool,
                    events: list[TimelineEvent]) -> Accepted:
        now = utcnow()
        row = conn.execute(select(open_fingerprints).where(
            open_fingerprints.c.fingerprint == alert.fingerprint).with_for_update()).first()
        declared = deduplicated = False
        incident_id: str | None = row.incident_id if row is not None else None
        if alert.status == "firing":
            if row is not None:
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
                "repeated" if deduplicated else "received")
            events.append(TimelineEvent(
                incident_id=incident_id, source=alert.source, kind=f"alert.{verb}",
                summary=f"Alert {verb}: {alert.title}",
                details={"alert_id": alert.id, "fingerprint": alert.fingerprint}))
        return Accepted(alert.id, alert.fingerprint, alert.status, incident_id, deduplicated,
                        declared)

    def accept_alerts(self, batch: list[Alert], auto_resolve: bool = False) -> list[Accepted]:
        """Store a request's alerts in one transaction; committed when this returns."""
        for _ in range(20):
            try:
                with self.tx() as conn:
                    events: list[TimelineEvent] = []
                    out = [self._accept_one(conn, alert, auto_resolve, events)
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
