"""Live processes: each intake, responder and worker records a heartbeat (one row per process and
role in `processes`), so the intake's `/metrics` can say how many of each role are alive.

A process counts as live while its last heartbeat is younger than the liveness window; one that
stops in order deletes its row (it is gone at once), one that is killed simply ages out. Rows
nobody has refreshed for a day are pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from firelane.models import utcnow
from firelane.store.base import aware
from firelane.store.reminders import ReminderOps
from firelane.store.tables import processes

__all__ = ["LiveProcess", "ProcessOps"]

PRUNE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class LiveProcess:
    """One process's last heartbeat."""

    id: str
    role: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime


class ProcessOps(ReminderOps):
    """Heartbeats of long-running processes, per role."""

    def beat_process(self, process_id: str, role: str, host: str, pid: int,
                     started_at: datetime, now: datetime | None = None) -> None:
        """Record that `process_id` (in `role`) is alive now: insert its row or refresh it."""
        seen = now or utcnow()
        with self.tx() as conn:
            done = conn.execute(update(processes).where(processes.c.id == process_id)
                                .values(role=role, seen_at=seen)).rowcount
            if done:
                return
        try:
            with self.tx() as conn:
                conn.execute(insert(processes).values(id=process_id, role=role, host=host,
                                                      pid=pid, started_at=started_at,
                                                      seen_at=seen))
        except IntegrityError:
            with self.tx() as conn:
                conn.execute(update(processes).where(processes.c.id == process_id)
                             .values(role=role, seen_at=seen))

    def live_processes(self, within: float, now: datetime | None = None) -> dict[str, int]:
        """How many processes per role sent a heartbeat in the last `within` seconds (roles
        with none are absent)."""
        cutoff = (now or utcnow()) - timedelta(seconds=within)
        with self.tx(write=False) as conn:
            rows = conn.execute(select(processes.c.role, func.count()).where(
                processes.c.seen_at >= cutoff).group_by(processes.c.role)).all()
        return {str(role): int(count) for role, count in rows}

    def list_processes(self) -> list[LiveProcess]:
        """Every recorded process, most recently seen first (live or not)."""
        with self.tx(write=False) as conn:
            rows = conn.execute(select(processes).order_by(processes.c.seen_at.desc())).all()
        found = []
        for row in rows:
            started, seen = aware(row.started_at), aware(row.seen_at)
            assert started is not None and seen is not None
            found.append(LiveProcess(id=row.id, role=row.role, host=row.host, pid=row.pid,
                                     started_at=started, seen_at=seen))
        return found

    def prune_processes(self, unseen_for: timedelta = PRUNE_AFTER,
                        now: datetime | None = None) -> int:
        """Delete processes not seen for `unseen_for` (a day by default); returns how many."""
        cutoff = (now or utcnow()) - unseen_for
        with self.tx() as conn:
            return int(conn.execute(delete(processes).where(
                processes.c.seen_at < cutoff)).rowcount or 0)

    def forget_process(self, process_id: str) -> bool:
        """A clean goodbye: delete this process's row (it stops counting as live at once)."""
        with self.tx() as conn:
            return bool(conn.execute(delete(processes).where(
                processes.c.id == process_id)).rowcount)
