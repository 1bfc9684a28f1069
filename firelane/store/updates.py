"""Incident updates, the claims that send each update reminder once, and step effects.

An update is numbered within its incident (`seq`) and written with its timeline event in one
transaction. `step_effects` lets a step claim a sub-effect (one e-mail to one list) before it
causes it, so a retry or a resumed step never causes it twice: at most once, with the claim
released when the effect definitely did not happen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from firelane.errors import NotFound
from firelane.models import TimelineEvent, utcnow
from firelane.store.base import aware
from firelane.store.tables import incident_updates, step_effects, update_reminders
from firelane.store.tokens import TokenOps
from firelane.updates import Audience, IncidentUpdate, UpdateState

__all__ = ["UpdateOps"]


def _update(row: Any) -> IncidentUpdate:
    data = dict(row._mapping)
    for key in ("created_at", "published_at", "next_due_at"):
        data[key] = aware(data[key])
    return IncidentUpdate.model_validate(data)


class UpdateOps(TokenOps):
    """Updates, update reminders and step effects."""

    def add_update(self, posted: IncidentUpdate, event: TimelineEvent) -> IncidentUpdate:
        """Record `posted` (its `seq` is the next in its incident) with `event`, whose details
        gain the update's id and number."""
        for _ in range(20):
            with self.tx() as conn:
                seq = 1 + (conn.execute(select(func.max(incident_updates.c.seq)).where(
                    incident_updates.c.incident_id == posted.incident_id)).scalar() or 0)
                posted.seq = seq
                event.summary = event.summary.replace("{seq}", str(seq))
                event.details = {**event.details, "update_id": posted.id, "seq": seq}
                try:
                    conn.execute(insert(incident_updates).values(posted.model_dump(mode="python")))
                except IntegrityError:
                    continue
                self._insert_events(conn, [event])
                return posted
        raise NotFound("could not number the update after 20 tries; post it again")

    def get_update(self, update_id: str) -> IncidentUpdate:
        """One update by id."""
        with self.tx(write=False) as conn:
            row = conn.execute(select(incident_updates).where(
                incident_updates.c.id == update_id)).first()
        if row is None:
            raise NotFound(f"no incident update {update_id!r}")
        return _update(row)

    def list_updates(self, incident_id: str | None = None, *, published: bool = False,
                     audience: Audience | None = None, since: datetime | None = None,
                     limit: int = 1000) -> list[IncidentUpdate]:
        """Updates, oldest first: of one incident or all; only published ones, one audience,
        or those created at or after `since` when asked."""
        query = select(incident_updates).order_by(incident_updates.c.created_at,
                                                  incident_updates.c.seq).limit(limit)
        if incident_id is not None:
            query = query.where(incident_updates.c.incident_id == incident_id)
        if published:
            query = query.where(incident_updates.c.state == UpdateState.PUBLISHED.value)
        if audience is not None:
            query = query.where(incident_updates.c.audience == audience.value)
        if since is not None:
            query = query.where(incident_updates.c.created_at >= since)
        with self.tx(write=False) as conn:
            return [_update(row) for row in conn.execute(query)]

    def incidents_with_public_updates(self, since: datetime) -> list[str]:
        """Ids of incidents with a published public update at or after `since` (the status
        page's history), most recent first."""
        latest = func.max(incident_updates.c.created_at)
        query = (select(incident_updates.c.incident_id, latest.label("latest"))
                 .where(incident_updates.c.state == UpdateState.PUBLISHED.value,
                        incident_updates.c.audience == Audience.PUBLIC.value,
                        incident_updates.c.created_at >= since)
                 .group_by(incident_updates.c.incident_id).order_by(latest.desc()))
        with self.tx(write=False) as conn:
            return [row.incident_id for row in conn.execute(query)]

    def set_update_state(self, update_id: str, state: UpdateState,
                         event: TimelineEvent | None = None) -> tuple[IncidentUpdate, bool]:
        """Move an awaiting update to `state` (with `event` on the timeline); the update and
        whether it changed. A published or rejected update stays as it is."""
        now = utcnow()
        values: dict[str, Any] = {"state": state.value}
        if state is UpdateState.PUBLISHED:
            values["published_at"] = now
        with self.tx() as conn:
            moved = conn.execute(update(incident_updates).where(
                incident_updates.c.id == update_id,
                incident_updates.c.state == UpdateState.AWAITING_APPROVAL.value).values(values))
            if moved.rowcount and event is not None:
                self._insert_events(conn, [event])
        return self.get_update(update_id), bool(moved.rowcount)

    def set_update_execution(self, update_id: str, execution_id: str) -> None:
        """Remember the execution that delivers an update."""
        with self.tx() as conn:
            conn.execute(update(incident_updates).where(incident_updates.c.id == update_id)
                         .values(execution_id=execution_id))

    def claim_effect(self, key: str, effect: str) -> bool:
        """Claim sub-effect `effect` of the step with idempotency key `key`; False when an
        earlier attempt claimed it (it happened, or may have)."""
        try:
            with self.tx() as conn:
                conn.execute(insert(step_effects).values(key=key, effect=effect[:200],
                                                         claimed_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def release_effect(self, key: str, effect: str) -> None:
        """Give a claim back: the effect definitely did not happen, a retry may cause it."""
        with self.tx() as conn:
            conn.execute(delete(step_effects).where(and_(
                step_effects.c.key == key, step_effects.c.effect == effect[:200])))

    def claim_update_reminder(self, incident_id: str, due_at: datetime, level: str,
                              by: str) -> bool:
        """Claim the `level` reminder (`due`, `overdue`) for the update due at `due_at`;
        False when another run already did (overlapping runs remind once)."""
        try:
            with self.tx() as conn:
                conn.execute(insert(update_reminders).values(
                    incident_id=incident_id, due_at=due_at, level=level, claimed_at=utcnow(),
                    claimed_by=by, sent_to=""))
        except IntegrityError:
            return False
        return True

    def release_update_reminder(self, incident_id: str, due_at: datetime, level: str) -> None:
        """Give a reminder claim back: sending it failed, so the next run tries again (its
        messages carry stable keys, so one that did reach Slack is found, not posted twice)."""
        with self.tx() as conn:
            conn.execute(delete(update_reminders).where(
                update_reminders.c.incident_id == incident_id,
                update_reminders.c.due_at == due_at, update_reminders.c.level == level))

    def note_reminder_sent(self, incident_id: str, due_at: datetime, level: str,
                           sent_to: list[str]) -> None:
        """Record whom a claimed reminder reached."""
        with self.tx() as conn:
            conn.execute(update(update_reminders).where(
                update_reminders.c.incident_id == incident_id,
                update_reminders.c.due_at == due_at, update_reminders.c.level == level)
                .values(sent_to=", ".join(sent_to)))

    def update_reminders_of(self, incident_id: str) -> list[dict[str, Any]]:
        """The reminders claimed for an incident (for reports and tests), oldest first."""
        with self.tx(write=False) as conn:
            rows = conn.execute(select(update_reminders).where(
                update_reminders.c.incident_id == incident_id)
                .order_by(update_reminders.c.claimed_at))
            return [{**dict(r._mapping), "due_at": aware(r.due_at),
                     "claimed_at": aware(r.claimed_at)} for r in rows]
