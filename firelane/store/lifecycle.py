"""Writing a lifecycle sync in the transaction of the status change it follows."""

from __future__ import annotations

from sqlalchemy import Connection, insert

from firelane.lifecycle import LifecycleSync
from firelane.models import IncidentStatus, TimelineEvent
from firelane.store.tables import lifecycle_syncs

__all__ = ["insert_sync", "sync_for"]


def sync_for(event: TimelineEvent, via: str, actor: str | None) -> LifecycleSync:
    """The sync that follows the status change `event` records (a change that came from
    PagerDuty is not sent back to it)."""
    reopen = event.kind == "incident.reopened"
    return LifecycleSync(incident_id=event.incident_id,
                         to_status=IncidentStatus(event.details["to"]), reopen=reopen,
                         page=via != "pagerduty", via=via, actor=actor)


def insert_sync(conn: Connection, sync: LifecycleSync) -> None:
    """Store `sync`, committed (or rolled back) with the caller's transaction."""
    conn.execute(insert(lifecycle_syncs), sync.model_dump(mode="python"))
