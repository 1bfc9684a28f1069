"""Incident lifecycle events as they were recorded, for the Prefect event relay
(`flows.respond.events`): each change once, with the incident it belongs to."""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime

from sqlalchemy import select

from firelane.models import Incident, TimelineEvent
from firelane.store.incidents import _event, _incident
from firelane.store.tables import incidents, timeline_events
from firelane.store.updates import UpdateOps

__all__ = ["LIFECYCLE_KINDS", "EventOps"]

LIFECYCLE_KINDS = ("incident.declared", "incident.status", "incident.reopened",
                   "incident.severity", "incident.role", "incident.note", "incident.update")


class EventOps(UpdateOps):
    """Reads for the event relay."""

    def lifecycle_since(self, since: datetime, limit: int = 500,
                        seen: Container[str] = frozenset(),
                        ) -> list[tuple[TimelineEvent, Incident]]:
        """The oldest `limit` lifecycle events (`LIFECYCLE_KINDS`) recorded at or after
        `since` whose ids are not in `seen`, oldest first, each with its incident as it is
        now. Of those in `seen` only the ids are read: a relay re-reads its whole look-back
        on every pass, and parsing it was most of the relay's CPU."""
        window = select(timeline_events.c.id).where(
            timeline_events.c.kind.in_(LIFECYCLE_KINDS), timeline_events.c.at >= since,
        ).order_by(timeline_events.c.at, timeline_events.c.id)
        with self.tx(write=False) as conn:
            fresh = [row.id for row in conn.execute(window) if row.id not in seen][:limit]
            if not fresh:
                return []
            events = [_event(row) for row in conn.execute(
                select(timeline_events).where(timeline_events.c.id.in_(fresh))
                .order_by(timeline_events.c.at, timeline_events.c.id))]
            ids = sorted({e.incident_id for e in events})
            found = {row.id: _incident(row) for row in conn.execute(
                select(incidents).where(incidents.c.id.in_(ids)))}
        return [(e, found[e.incident_id]) for e in events if e.incident_id in found]
