"""PagerDuty v3 webhooks about our own pages: the incident that paged follows the page.

An `incident.acknowledged` or `incident.resolved` event whose `incident_key` is the dedup key
of a page a Firelane incident sent (found in the step ledger) acknowledges or resolves that
incident, with the PagerDuty agent as the actor, `pagerduty` as where, and the event's
`occurred_at` as when; the ticket follows through a lifecycle sync, the page is not told again
(no echo loop). An event for a change the incident already has (our own resolve coming back, a
redelivery) changes nothing. Any event about one of our pages is not an alert: it never
declares a second incident. Events about other pages stay alerts, as before.
"""

from __future__ import annotations

import asyncio
import logging

from firelane.models import Alert, IncidentStatus
from firelane.store import Store
from flows.engine.lifecycle import drain

__all__ = ["follow_pagerduty"]

log = logging.getLogger("firelane.intake")

_MOVES = {"incident.acknowledged": IncidentStatus.ACKNOWLEDGED,
          "incident.resolved": IncidentStatus.RESOLVED}


def _follow(store: Store, alerts: list[Alert]) -> tuple[list[Alert], list[str]]:
    rest: list[Alert] = []
    moved: list[str] = []
    for alert in alerts:
        key = alert.labels.get("incident_key", "")
        incident_id = store.incident_for_page(key) if key else None
        if incident_id is None:
            rest.append(alert)
            continue
        to = _MOVES.get(alert.labels.get("event_type", ""))
        if to is None:
            continue
        changed = store.follow_vendor(incident_id, to, "pagerduty",
                                      alert.labels.get("agent") or "PagerDuty", alert.starts_at)
        if changed is not None:
            moved.append(incident_id)
    return rest, moved


async def follow_pagerduty(store: Store, alerts: list[Alert],
                           tasks: set[asyncio.Task[int]]) -> list[Alert]:
    """Apply the events about our pages; return the alerts left for the intake. The ticket
    sync starts in the background (kept in `tasks`); the responders' sweep takes it over if
    this process dies first."""
    rest, moved = await asyncio.to_thread(_follow, store, alerts)
    for incident_id in moved:
        task = asyncio.create_task(drain(store, incident_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    return rest
