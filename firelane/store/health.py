"""What the intake's `/metrics` reads from the store: responses waiting, executions stuck,
failed pages, and how long each execution took to act first.

Read from the store rather than counted in memory, so the figures cover every intake and
responder process sharing the store, and survive their restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select

from firelane.models import ExecutionStatus, StepStatus, utcnow
from firelane.store.alerts import AlertOps
from firelane.store.base import aware
from firelane.store.tables import executions, step_ledger, timeline_events

__all__ = ["Health", "HealthOps"]


@dataclass(frozen=True)
class Health:
    """A snapshot for the metrics endpoint."""

    waiting: int
    oldest_waiting_seconds: float
    flows_waiting: int
    stuck: int
    pages_failed: int
    pages_overdue: int
    first_actions: list[tuple[datetime, float]]


class HealthOps(AlertOps):
    """Read-only health queries."""

    def health(self, stale_after: float, since: datetime | None,
               limit: int = 10_000) -> Health:
        """Executions waiting for a responder, executions waiting for a flow runner (urgent
        steps done), executions stuck past their lease (a running
        execution whose responder stopped heartbeating, or with a step whose lease expired),
        `page.failed` events, pages overdue (a paging step claimed by a responder whose lease
        ran out: it died or stalled and no paging responder has taken the page over yet), and
        (first_action_at, seconds from the execution's creation) for executions that first
        acted after `since`, oldest first."""
        now = utcnow()
        cutoff = now - timedelta(seconds=stale_after)
        pending = executions.c.status == ExecutionStatus.PENDING.value
        expired_step = exists().where(
            step_ledger.c.execution_id == executions.c.id,
            step_ledger.c.status == StepStatus.CLAIMED.value,
            step_ledger.c.lease_expires_at < now)
        stuck = (executions.c.status == ExecutionStatus.RUNNING.value) & (
            (executions.c.heartbeat_at < cutoff) | expired_step)
        acted = select(executions.c.first_action_at, executions.c.created_at).where(
            executions.c.first_action_at.is_not(None))
        if since is not None:
            acted = acted.where(executions.c.first_action_at > since)
        with self.tx(write=False) as conn:
            waiting, oldest = conn.execute(select(func.count(), func.min(
                executions.c.created_at)).where(pending)).one()
            ready = conn.execute(select(func.count()).where(
                executions.c.status == ExecutionStatus.READY.value)).scalar() or 0
            stuck_count = conn.execute(select(func.count()).where(stuck)).scalar() or 0
            pages_failed = conn.execute(select(func.count()).where(
                timeline_events.c.kind == "page.failed")).scalar() or 0
            pages_overdue = conn.execute(select(func.count()).select_from(step_ledger).where(
                step_ledger.c.pages.is_(True),
                step_ledger.c.status == StepStatus.CLAIMED.value,
                step_ledger.c.lease_expires_at < now)).scalar() or 0
            rows = conn.execute(acted.order_by(executions.c.first_action_at).limit(limit)).all()
        oldest_at = aware(oldest)
        firsts = []
        for first, created in rows:
            first_at, created_at = aware(first), aware(created)
            assert first_at is not None and created_at is not None
            firsts.append((first_at, max(0.0, (first_at - created_at).total_seconds())))
        return Health(waiting=int(waiting or 0),
                      oldest_waiting_seconds=(now - oldest_at).total_seconds()
                      if oldest_at is not None else 0.0, flows_waiting=int(ready),
                      stuck=int(stuck_count), pages_failed=int(pages_failed),
                      pages_overdue=int(pages_overdue),
                      first_actions=firsts)
