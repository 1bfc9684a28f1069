"""Prefect events for incident lifecycle changes, so teams can build Prefect automations on
incidents (notify, run a deployment) without code.

Each change the store records (declared, acknowledged, mitigated, resolved, closed, reopened,
severity changed, role assigned, note added) becomes one event named `firelane.incident.<what>`
with the incident as its resource (`firelane.incident.<id>`, named `INC-n`, labelled with its
service, severity, status and runbooks) and the change in its payload. A private incident's
events carry no title, summary or details: only that it changed, and who changed it.

The relay reads the store (`Store.lifecycle_since`) rather than being called where changes are
made: a change from any surface (an alert, the CLI, the API, Slack, a runbook) is covered, and
nothing on the paging path waits for Prefect. It runs in the flow responders (never in a
paging role). An event's id is derived from the timeline event's, and the Prefect server keeps
one event per id, so relays that overlap (two flow responders, a restart that re-reads its
look-back) emit each change once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from firelane.errors import StoreUnavailable
from firelane.models import Incident, TimelineEvent, utcnow
from firelane.store import Store, store_call

__all__ = ["LOOKBACK", "EventRelay", "event_name", "relay_forever"]

log = logging.getLogger("firelane.events")
LOOKBACK = timedelta(minutes=10)
_NAMESPACE = uuid.UUID("6f1c1a52-3d1e-4c1e-9a4e-f1e1a9e00001")
_SIMPLE = {"incident.declared": "declared", "incident.reopened": "reopened",
           "incident.severity": "severity-changed", "incident.role": "role-assigned",
           "incident.note": "note-added"}


def event_name(event: TimelineEvent) -> str | None:
    """`firelane.incident.<what>` for a lifecycle timeline event, None for any other."""
    if event.kind == "incident.status":
        to = event.details.get("to")
        return f"firelane.incident.{to}" if isinstance(to, str) and to else None
    what = _SIMPLE.get(event.kind)
    return f"firelane.incident.{what}" if what else None


def prefect_event(event: TimelineEvent, incident: Incident,
                  runbooks: list[str]) -> dict[str, Any] | None:
    """The `emit_event` arguments for one lifecycle change (None when it is not one)."""
    name = event_name(event)
    if name is None:
        return None
    resource = {"prefect.resource.id": f"firelane.incident.{incident.id}",
                "prefect.resource.name": f"INC-{incident.number}",
                "firelane.incident.number": str(incident.number),
                "firelane.service": incident.service,
                "firelane.severity": incident.severity.value,
                "firelane.status": incident.status.value}
    related = [{"prefect.resource.id": f"firelane.runbook.{name}",
                "prefect.resource.role": "runbook", "prefect.resource.name": name}
               for name in runbooks]
    payload = {"summary": event.summary, "actor": event.actor, "title": incident.title,
               **{k: v for k, v in event.details.items() if isinstance(v, str | int | bool)}}
    if incident.private:
        payload = {"private": True, "actor": event.actor}
        resource["firelane.private"] = "true"
    return {"event": name, "resource": resource, "related": related, "payload": payload,
            "occurred": event.at, "id": uuid.uuid5(_NAMESPACE, event.id)}


class EventRelay:
    """Emits the lifecycle changes recorded since it last looked (and `LOOKBACK` before)."""

    def __init__(self, store: Store, lookback: timedelta = LOOKBACK, page: int = 500) -> None:
        self.store, self.lookback, self.page = store, lookback, page
        self.since: datetime = utcnow() - lookback
        self.sent: dict[str, datetime] = {}

    def pump(self) -> int:
        """Emit what is new, a page of `page` events at a time until none is left (more
        changes than one page in the look-back, a storm's, are all emitted); returns how
        many events it emitted."""
        from prefect.events import emit_event

        emitted = 0
        runbooks: dict[str, list[str]] = {}
        while batch := self.store.lifecycle_since(self.since, self.page, self.sent):
            for event, incident in batch:
                if incident.id not in runbooks:
                    runbooks[incident.id] = sorted({e.runbook_name for e in
                                                    self.store.list_executions(incident.id)})
                spec = prefect_event(event, incident, runbooks[incident.id])
                if spec is not None:
                    emit_event(**spec)
                    emitted += 1
                self.sent[event.id] = event.at
        newest = max(self.sent.values(), default=self.since)
        self.since = max(self.since, newest - self.lookback)
        self.sent = {k: v for k, v in self.sent.items() if v >= self.since}
        return emitted


async def relay_forever(store: Store, stop: asyncio.Event, every: float = 2.0) -> int:
    """A flow responder's relay: emit new lifecycle events every `every` seconds until `stop`.
    A store or Prefect outage is logged and waited out; it never stops the responder."""
    relay, emitted = EventRelay(store), 0
    while not stop.is_set():
        try:
            emitted += await store_call(relay.pump, stop=stop)
        except StoreUnavailable:
            break
        except Exception as exc:
            log.warning("could not emit incident events to Prefect: %s: %s",
                        type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return emitted
