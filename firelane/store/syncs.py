"""Lifecycle syncs (see `firelane.lifecycle`): claimed with a lease, done once, and the ledger
lookups they need: which of our pages a PagerDuty webhook is about, which incident a Slack
channel is the war room of, and which vendor key a reopened incident's new execution reuses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from firelane.lifecycle import LifecycleSync
from firelane.models import ExecutionStatus, StepStatus, TimelineEvent, utcnow
from firelane.redaction import redact
from firelane.store.base import aware
from firelane.store.processes import ProcessOps
from firelane.store.tables import executions, lifecycle_syncs, step_ledger

__all__ = ["SyncOps"]


def _sync(row: Any) -> LifecycleSync:
    data = {k: v for k, v in row._mapping.items() if k not in ("owner", "lease_expires_at")}
    for key in ("created_at", "done_at"):
        data[key] = aware(data[key])
    return LifecycleSync.model_validate(data)


class SyncOps(ProcessOps):
    """Pending lifecycle syncs and the ledger lookups behind them."""

    def claim_syncs(self, owner: str, lease_seconds: float,
                    incident_id: str | None = None) -> list[LifecycleSync]:
        """Lease every pending sync of one incident (the one with the oldest unleased sync,
        or `incident_id`), oldest first: they must reach the vendors in order. Empty when
        nothing is pending or another worker holds them."""
        now = utcnow()
        free = (lifecycle_syncs.c.done_at.is_(None)
                & or_(lifecycle_syncs.c.lease_expires_at.is_(None),
                      lifecycle_syncs.c.lease_expires_at < now))
        with self.tx() as conn:
            if incident_id is None:
                incident_id = conn.execute(
                    select(lifecycle_syncs.c.incident_id).where(free)
                    .order_by(lifecycle_syncs.c.created_at).limit(1)).scalar()
                if incident_id is None:
                    return []
            pending = lifecycle_syncs.c.done_at.is_(None) & (
                lifecycle_syncs.c.incident_id == incident_id)
            rows = conn.execute(select(lifecycle_syncs).where(pending)
                                .order_by(lifecycle_syncs.c.created_at)
                                .with_for_update()).all()
            if not rows or any((aware(r.lease_expires_at) or now) > now and r.owner != owner
                               for r in rows):
                return []
            conn.execute(update(lifecycle_syncs).where(pending).values(
                owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=lifecycle_syncs.c.attempts + 1))
        return [_sync(r) for r in rows]

    def finish_sync(self, sync_id: str, error: str | None,
                    events: Iterable[TimelineEvent] = ()) -> None:
        """Record a sync done (with its timeline events) or failed (retried by the next
        sweep: its lease is released)."""
        values: dict[str, Any] = ({"done_at": utcnow(), "error": None} if error is None
                                  else {"error": redact(error)})
        with self.tx() as conn:
            conn.execute(update(lifecycle_syncs).where(lifecycle_syncs.c.id == sync_id)
                         .values(owner=None, lease_expires_at=None, **values))
            self._insert_events(conn, events)

    def release_syncs(self, sync_ids: list[str]) -> None:
        """Give back leased syncs not attempted (an earlier one of the incident failed)."""
        if sync_ids:
            with self.tx() as conn:
                conn.execute(update(lifecycle_syncs).where(lifecycle_syncs.c.id.in_(sync_ids))
                             .values(owner=None, lease_expires_at=None))

    def pending_syncs(self, incident_id: str | None = None) -> list[LifecycleSync]:
        """Syncs not done yet (oldest first), of one incident or all."""
        query = (select(lifecycle_syncs).where(lifecycle_syncs.c.done_at.is_(None))
                 .order_by(lifecycle_syncs.c.created_at))
        if incident_id is not None:
            query = query.where(lifecycle_syncs.c.incident_id == incident_id)
        with self.tx(write=False) as conn:
            return [_sync(r) for r in conn.execute(query)]

    def incident_for_page(self, dedup_key: str) -> str | None:
        """The incident whose paging step sent `dedup_key` (its ledger outputs), if ours."""
        query = (select(step_ledger.c.incident_id, step_ledger.c.idempotency_key,
                        step_ledger.c.outputs)
                 .where(step_ledger.c.pages.is_(True),
                        step_ledger.c.status == StepStatus.SUCCEEDED.value)
                 .order_by(step_ledger.c.started_at))
        with self.tx(write=False) as conn:
            for row in conn.execute(query):
                if dedup_key in (row.idempotency_key, (row.outputs or {}).get("dedup_key")):
                    return str(row.incident_id)
        return None

    def incident_for_channel(self, channel_id: str) -> str | None:
        """The incident whose war room is the Slack channel `channel_id` (a step that created
        or joined it recorded its id), the newest if a channel was reused."""
        query = (select(step_ledger.c.incident_id)
                 .where(step_ledger.c.status == StepStatus.SUCCEEDED.value,
                        step_ledger.c.outputs["id"].as_string() == channel_id,
                        step_ledger.c.outputs["name"].as_string().is_not(None))
                 .order_by(step_ledger.c.started_at.desc()).limit(1))
        with self.tx(write=False) as conn:
            found = conn.execute(query).scalar()
        return str(found) if found is not None else None

    def first_vendor_key(self, incident_id: str, step_id: str,
                         execution_id: str) -> str | None:
        """The idempotency key the incident's earliest other execution (not a dry run) used
        for `step_id` when that step succeeded: a reopen's new execution passes it to the
        vendor so it finds the same page, ticket and bridge."""
        query = (select(step_ledger.c.idempotency_key)
                 .join(executions, executions.c.id == step_ledger.c.execution_id)
                 .where(step_ledger.c.incident_id == incident_id,
                        step_ledger.c.step_id == step_id,
                        step_ledger.c.execution_id != execution_id,
                        step_ledger.c.status == StepStatus.SUCCEEDED.value,
                        executions.c.dry_run.is_(False),
                        executions.c.status != ExecutionStatus.PENDING.value)
                 .order_by(step_ledger.c.started_at).limit(1))
        with self.tx(write=False) as conn:
            key = conn.execute(query).scalar()
        return str(key) if key is not None else None
