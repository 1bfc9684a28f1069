"""Action items after the postmortem: their Jira keys, closing, and reminders that are never
sent twice for one interval, also when reminder runs overlap (a conditional update claims each
reminder before it is sent)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from firelane.errors import NotFound
from firelane.models import ActionItem, Incident, TimelineEvent, new_id, utcnow
from firelane.store.guardrails import GuardrailOps
from firelane.store.incidents import _incident
from firelane.store.tables import action_items, digests, incidents, reminders, report_runs

__all__ = ["ReminderOps"]


class ReminderOps(GuardrailOps):
    """Action items' lifecycle and reminders."""

    def get_action_item(self, item_id: str) -> ActionItem:
        """One action item."""
        found = [i for i in self.list_action_items() if i.id == item_id]
        if not found:
            raise NotFound(f"no action item {item_id!r}")
        return found[0]

    def set_action_item_key(self, item_id: str, key: str) -> None:
        """Remember the item's Jira issue."""
        with self.tx() as conn:
            conn.execute(update(action_items).where(action_items.c.id == item_id)
                         .values(external_key=key))

    def close_action_item(self, item_id: str, why: str, at: datetime | None = None) -> bool:
        """Mark an item done (once); False when it already was."""
        at = at or utcnow()
        with self.tx() as conn:
            row = conn.execute(select(action_items).where(action_items.c.id == item_id)).first()
            if row is None:
                raise NotFound(f"no action item {item_id!r}")
            done = conn.execute(update(action_items).where(
                action_items.c.id == item_id, action_items.c.status == "open")
                .values(status="done", closed_at=at)).rowcount
            if done:
                self._insert_events(conn, [TimelineEvent(
                    incident_id=row.incident_id, kind="action_item.done", at=at,
                    summary=f"Action item done: {row.title} ({why})",
                    details={"action_item_id": item_id, "key": row.external_key})])
        return bool(done)

    def claim_reminder(self, item_id: str, now: datetime, interval: timedelta) -> bool:
        """Take the right to remind this item now: True at most once per `interval`, whoever
        asks (two overlapping runs: one wins)."""
        with self.tx() as conn:
            return bool(conn.execute(update(action_items).where(
                action_items.c.id == item_id, action_items.c.status == "open",
                (action_items.c.reminded_at.is_(None))
                | (action_items.c.reminded_at <= now - interval),
            ).values(reminded_at=now)).rowcount)

    def claim_escalation(self, item_id: str, now: datetime) -> bool:
        """Take the right to escalate this item (once)."""
        with self.tx() as conn:
            return bool(conn.execute(update(action_items).where(
                action_items.c.id == item_id, action_items.c.status == "open",
                action_items.c.escalated_at.is_(None)).values(escalated_at=now)).rowcount)

    def record_reminder(self, item: ActionItem, kind: str, sent_to: str, at: datetime, ok: bool,
                        detail: str) -> None:
        """Keep what was sent (or tried) and put it on the incident's timeline."""
        with self.tx() as conn:
            conn.execute(insert(reminders).values(
                id=new_id(), item_id=item.id, kind=kind, sent_to=sent_to, sent_at=at, ok=ok,
                detail=detail))
            self._insert_events(conn, [TimelineEvent(
                incident_id=item.incident_id, kind=f"action_item.{kind}", at=at,
                summary=f"{kind.replace('_', ' ')} for '{item.title}' → {sent_to}"
                        + ("" if ok else f" (failed: {detail})"),
                details={"action_item_id": item.id, "to": sent_to, "ok": ok})])

    def add_action_item_once(self, item: ActionItem) -> bool:
        """Record an item whose id is derived from its source (a Slack message); False when
        it was recorded before."""
        try:
            self.add_action_item(item)
        except IntegrityError:
            return False
        return True

    def add_action_items_once(self, items: list[ActionItem]) -> int:
        """`add_action_item_once` for each; how many were new."""
        return sum(self.add_action_item_once(item) for item in items)

    def claim_digest(self, team: str, week: str, now: datetime) -> bool:
        """Take the right to send `team`'s digest for ISO `week` (once, across runs)."""
        try:
            with self.tx() as conn:
                conn.execute(insert(digests).values(team=team, week=week, sent_at=now))
        except IntegrityError:
            return False
        return True

    def claim_report(self, incident_id: str, generation: int) -> bool:
        """Take the right to run the resolve-time report of this resolution of the incident
        (`generation` = how often it was reopened before): once, whoever asks."""
        try:
            with self.tx() as conn:
                conn.execute(insert(report_runs).values(
                    incident_id=incident_id, generation=generation, started_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def resolved_without_report(self, since: datetime) -> list[Incident]:
        """Incidents resolved or closed since `since` whose current resolution has no report
        run yet (an alert auto-resolved them, or the report never ran)."""
        query = (select(incidents).where(
            incidents.c.status.in_(["resolved", "closed"]), incidents.c.updated_at >= since)
            .where(~select(report_runs.c.incident_id).where(
                report_runs.c.incident_id == incidents.c.id,
                report_runs.c.generation == incidents.c.reopened).exists()))
        with self.tx(write=False) as conn:
            return [_incident(r) for r in conn.execute(query)]

    def reminders_of(self, item_id: str) -> list[dict[str, object]]:
        """Every reminder of an item, oldest first."""
        with self.tx(write=False) as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(reminders).where(reminders.c.item_id == item_id)
                .order_by(reminders.c.sent_at))]
