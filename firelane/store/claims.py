"""Responders' side of executions: claiming a backlog (taking over the dead's), waiting work,
heartbeats, and handing an execution to the flow runners or to Prefect."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from firelane import audit
from firelane.models import Execution, ExecutionStatus, utcnow
from firelane.store.base import aware
from firelane.store.incidents import IncidentOps, _execution
from firelane.store.notify import notify_work
from firelane.store.tables import executions

__all__ = ["ClaimOps", "audit_takeovers", "running"]


def running(row: Any) -> Execution:
    """A claimed execution's row (read before its claim) as the execution is now: running."""
    return _execution(row).model_copy(update={"status": ExecutionStatus.RUNNING})


def audit_takeovers(rows: list[Any], owner: str) -> None:
    """Audit each claimed row that was another responder's (after the claim committed)."""
    for row in rows:
        audit.execution_taken_over(row.id, row.status, row.owner, aware(row.heartbeat_at),
                                   owner)


class ClaimOps(IncidentOps):
    """What `firelane respond` processes do with executions."""

    def claim_executions(self, owner: str, stale_after: float,
                         wanted: ExecutionStatus = ExecutionStatus.PENDING,
                         limit: int = 50) -> list[Execution]:
        """Take up to `limit` of the oldest executions in status `wanted` in one transaction
        (pending: nobody started it; ready: its urgent steps ran, its flow has not), oldest
        first. Taking pending ones also takes over running ones whose responder's heartbeat is
        older than `stale_after` seconds (it died). Executions run directly (the CLI, an
        inline intake) have no heartbeat and are never taken.

        One write for a whole backlog: during a storm a responder taking executions one
        transaction at a time claims about 20 a second against the intake's commits, and a new
        incident's page waited seconds behind the storm's own."""
        with self.tx() as conn:
            rows = self._claim_rows(conn, owner, stale_after, wanted, limit)
        audit_takeovers(rows, owner)
        return [running(row) for row in rows]

    def _claim_rows(self, conn: Connection, owner: str, stale_after: float,
                    wanted: ExecutionStatus, limit: int) -> list[Any]:
        """`claim_executions` inside the caller's transaction; the rows as they were before."""
        cutoff = utcnow() - timedelta(seconds=stale_after)
        claimable = executions.c.status == wanted.value
        if wanted is ExecutionStatus.PENDING:
            claimable = claimable | ((executions.c.status == ExecutionStatus.RUNNING.value)
                                     & executions.c.heartbeat_at.is_not(None)
                                     & (executions.c.heartbeat_at < cutoff))
        rows = conn.execute(select(executions).where(claimable)
                            .order_by(executions.c.created_at).limit(limit)
                            .with_for_update(skip_locked=True)).all()
        if rows:
            conn.execute(update(executions).where(executions.c.id.in_([r.id for r in rows]))
                         .values(status=ExecutionStatus.RUNNING.value, owner=owner,
                                 heartbeat_at=utcnow()))
        return list(rows)

    def has_pending_executions(self, wanted: ExecutionStatus = ExecutionStatus.PENDING,
                               ) -> bool:
        """A cheap read: is anything waiting in status `wanted`?"""
        with self.tx(write=False) as conn:
            return conn.execute(select(executions.c.id).where(
                executions.c.status == wanted.value).limit(1)).first() is not None

    def mark_ready(self, execution_id: str) -> None:
        """Urgent steps done: leave the execution for a flow runner to claim (and, on
        PostgreSQL, notify the flow runners at commit)."""
        with self.tx() as conn:
            conn.execute(update(executions).where(executions.c.id == execution_id).values(
                status=ExecutionStatus.READY.value, owner=None, heartbeat_at=None))
            notify_work(conn, ExecutionStatus.READY.value)

    def heartbeat_executions(self, owner: str, ids: list[str]) -> None:
        """Say that `owner` is still running these executions."""
        if ids:
            with self.tx() as conn:
                conn.execute(update(executions).where(
                    executions.c.id.in_(ids), executions.c.owner == owner)
                    .values(heartbeat_at=utcnow()))

    def hand_off_execution(self, execution_id: str, flow_run_id: str) -> None:
        """The execution now belongs to a Prefect flow run: no responder heartbeats it or
        takes it over any more (Prefect and `firelane resume` finish it)."""
        with self.tx() as conn:
            conn.execute(update(executions).where(executions.c.id == execution_id).values(
                owner=f"prefect:{flow_run_id}", heartbeat_at=None, flow_run_id=flow_run_id))

    def unfinished_executions(self, unowned_only: bool = False) -> list[Execution]:
        """Executions accepted but not finished (pending, running or ready), oldest first;
        with `unowned_only`, only those no responder claimed and no deployment took (what an
        inline intake itself started)."""
        query = (select(executions).where(executions.c.status.in_(
            [ExecutionStatus.PENDING.value, ExecutionStatus.RUNNING.value,
             ExecutionStatus.READY.value]))
            .order_by(executions.c.created_at))
        if unowned_only:
            query = query.where(executions.c.owner.is_(None))
        with self.tx(write=False) as conn:
            return [_execution(r) for r in conn.execute(query)]
