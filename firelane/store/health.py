"""What the intake's `/metrics` reads from the store: responses waiting, executions stuck,
failed and overdue pages, resolved incidents whose page is still open, how long each
execution took to act first, and which incidents were resolved since the last scrape (for
their key times).

Read from the store rather than counted in memory, so the figures cover every intake and
responder process sharing the store, and survive their restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select

from firelane.models import ExecutionStatus, IncidentStatus, StepStatus, utcnow
from firelane.store.alerts import AlertOps
from firelane.store.base import aware
from firelane.store.tables import executions, incidents, step_ledger, timeline_events

__all__ = ["PAGE_RESOLVING_ACTIONS", "PAGE_SENDING_ACTIONS", "RESOLVED_PAGE_WINDOW", "Health",
           "HealthOps"]

PAGE_SENDING_ACTIONS = frozenset({"pagerduty.trigger"})
PAGE_RESOLVING_ACTIONS = frozenset({"pagerduty.resolve"})
RESOLVED_PAGE_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Health:
    """A snapshot for the metrics endpoint."""

    waiting: int
    oldest_waiting_seconds: float
    flows_waiting: int
    stuck: int
    pages_failed: int
    pages_overdue: int
    resolved_page_open: int
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
                      resolved_page_open=self.resolved_page_open(now),
                      first_actions=firsts)

    def resolved_page_open(self, now: datetime | None = None,
                           window: timedelta = RESOLVED_PAGE_WINDOW) -> int:
        """Incidents resolved (status `resolved`, last changed within `window`) whose page is
        still open: a step running a page-sending action (`PAGE_SENDING_ACTIONS`) of one of
        their executions succeeded (not a dry run, not against the sandbox), and no step
        running a page-resolving action (`PAGE_RESOLVING_ACTIONS`) succeeded after it. Closing
        or reopening the incident, or a `pagerduty.resolve` step, takes it off the count."""
        since = (now or utcnow()) - window
        query = (select(timeline_events.c.incident_id, timeline_events.c.at,
                        timeline_events.c.details)
                 .join(incidents, incidents.c.id == timeline_events.c.incident_id)
                 .join(executions, executions.c.id == timeline_events.c.execution_id)
                 .where(incidents.c.status == IncidentStatus.RESOLVED.value,
                        incidents.c.updated_at >= since,
                        timeline_events.c.kind == "step.succeeded",
                        executions.c.dry_run.is_(False), executions.c.sandbox.is_(False)))
        paged: dict[str, datetime] = {}
        unpaged: dict[str, datetime] = {}
        with self.tx(write=False) as conn:
            rows = conn.execute(query).all()
        for incident_id, at, details in rows:
            uses, when = (details or {}).get("uses"), aware(at)
            assert when is not None
            for wanted, latest in ((PAGE_SENDING_ACTIONS, paged),
                                   (PAGE_RESOLVING_ACTIONS, unpaged)):
                if uses in wanted and (incident_id not in latest or latest[incident_id] < when):
                    latest[incident_id] = when
        return sum(1 for incident_id, at in paged.items()
                   if incident_id not in unpaged or unpaged[incident_id] < at)

    def resolved_since(self, since: datetime | None, limit: int = 1_000) -> list[
            tuple[str, datetime, str]]:
        """(event id, when, incident id) of each move to `resolved` recorded at or after
        `since`, oldest first: the resolutions whose key times a scrape may not have observed
        yet (the caller skips the event ids it has seen). A reopened and re-resolved incident
        appears once per resolution."""
        query = select(timeline_events.c.id, timeline_events.c.at,
                       timeline_events.c.incident_id).where(
            timeline_events.c.kind == "incident.status",
            timeline_events.c.details["to"].as_string() == IncidentStatus.RESOLVED.value)
        if since is not None:
            query = query.where(timeline_events.c.at >= since)
        with self.tx(write=False) as conn:
            rows = conn.execute(query.order_by(timeline_events.c.at).limit(limit)).all()
        return [(str(event_id), when, str(incident_id)) for event_id, at, incident_id in rows
                if (when := aware(at)) is not None]
