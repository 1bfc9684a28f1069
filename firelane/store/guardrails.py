"""Guardrail state: the kill switch and maintenance windows, and the remediation runs the
per-service rate limit counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, insert, select, text, update

from firelane.models import new_id, utcnow
from firelane.store.base import aware
from firelane.store.health import HealthOps
from firelane.store.tables import automation_pauses, remediation_runs

__all__ = ["ALL_SERVICES", "GuardrailOps", "Pause"]

ALL_SERVICES = "*"


@dataclass(frozen=True)
class Pause:
    """A stop on destructive actions: `pause` (the kill switch) or `maintenance`."""

    id: str
    kind: Literal["pause", "maintenance"]
    service: str
    starts_at: datetime
    until: datetime | None
    reason: str
    created_by: str

    def describe(self) -> str:
        """One line for the timeline and the CLI."""
        scope = "all services" if self.service == ALL_SERVICES else f"service {self.service}"
        until = f" until {self.until:%Y-%m-%d %H:%M} UTC" if self.until else ""
        what = "automation paused" if self.kind == "pause" else "maintenance window"
        return (f"{what} for {scope}{until} by {self.created_by}"
                + (f": {self.reason}" if self.reason else ""))


def _pause(row: object) -> Pause:
    data = dict(row._mapping)  # type: ignore[attr-defined]
    return Pause(id=data["id"], kind=data["kind"], service=data["service"],
                 starts_at=aware(data["starts_at"]) or utcnow(), until=aware(data["until"]),
                 reason=data["reason"], created_by=data["created_by"])


class GuardrailOps(HealthOps):
    """Pauses, maintenance windows, remediation runs."""

    def add_pause(self, kind: Literal["pause", "maintenance"], service: str, by: str,
                  reason: str = "", starts_at: datetime | None = None,
                  until: datetime | None = None) -> Pause:
        """Stop destructive actions for `service` (`*` for all) from `starts_at` (now) until
        `until` (open-ended for a pause without one)."""
        row = {"id": new_id(), "kind": kind, "service": service,
               "starts_at": starts_at or utcnow(), "until": until, "reason": reason,
               "created_by": by, "created_at": utcnow(), "cancelled_at": None}
        with self.tx() as conn:
            conn.execute(insert(automation_pauses).values(row))
        return _pause(type("Row", (), {"_mapping": row})())

    def lift_pauses(self, service: str) -> int:
        """End the kill-switch pauses on `service` now (maintenance windows stay)."""
        now = utcnow()
        with self.tx() as conn:
            return int(conn.execute(update(automation_pauses).where(
                automation_pauses.c.service == service, automation_pauses.c.kind == "pause",
                automation_pauses.c.cancelled_at.is_(None),
                (automation_pauses.c.until.is_(None)) | (automation_pauses.c.until > now),
            ).values(cancelled_at=now)).rowcount)

    def pauses(self, at: datetime | None = None, upcoming: bool = False) -> list[Pause]:
        """Pauses and windows in force at `at` (now), plus later ones with `upcoming`."""
        at = at or utcnow()
        query = select(automation_pauses).where(
            automation_pauses.c.cancelled_at.is_(None),
            (automation_pauses.c.until.is_(None)) | (automation_pauses.c.until > at))
        if not upcoming:
            query = query.where(automation_pauses.c.starts_at <= at)
        with self.tx(write=False) as conn:
            return [_pause(r) for r in conn.execute(query.order_by(
                automation_pauses.c.starts_at))]

    def blocking_pause(self, service: str, at: datetime | None = None) -> Pause | None:
        """The pause or window that stops destructive actions on `service` now, if any."""
        found = [p for p in self.pauses(at) if p.service in (service, ALL_SERVICES)]
        return found[0] if found else None

    def count_remediation(self, execution_id: str, service: str, limit: int,
                          window: timedelta = timedelta(hours=1)) -> tuple[bool, int]:
        """Count this execution as a remediation of `service` unless `limit` other ones
        already ran in the last `window`. Returns (allowed, runs in the window)."""
        now = utcnow()
        with self.tx() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"),
                             {"s": f"remediation:{service}"})
            mine = conn.execute(select(remediation_runs.c.execution_id).where(
                remediation_runs.c.execution_id == execution_id)).first()
            recent = conn.execute(select(func.count()).where(
                remediation_runs.c.service == service,
                remediation_runs.c.started_at > now - window)).scalar() or 0
            if mine is not None:
                return True, int(recent)
            if recent >= limit:
                return False, int(recent)
            conn.execute(insert(remediation_runs).values(
                execution_id=execution_id, service=service, started_at=now))
            return True, int(recent) + 1
