"""Carrying out lifecycle syncs: the incident's page and ticket follow its status.

`drain()` leases the pending syncs of an incident (`Store.claim_syncs`), finds the incident's
page and ticket in the step ledger of its executions (the `pagerduty.trigger` step's dedup key
and routing-key block, the `jira.create_issue` step's issue key) and brings them in step through
the same actions a runbook uses, in the vendors' context of the execution that opened them (a
sandbox execution syncs against the sandbox). Every call is idempotent, so a sync repeated after
a crash does nothing twice. It runs inline in the process that changed the status (CLI, intake,
a runbook step) and in every responder's sweep (`sync_forever`), which takes over what a dead
process left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from firelane.catalog import serving_catalog
from firelane.errors import ActionError, FirelaneError, StoreUnavailable
from firelane.inputs import execution_context
from firelane.lifecycle import LifecycleSync, page_action, ticket_status
from firelane.loader import parse_snapshot
from firelane.models import Execution, Incident, IncidentStatus, StepStatus, TimelineEvent
from firelane.registry import call_action
from firelane.settings import Settings, worker_identity
from firelane.store import Store, is_transient, store_call
from flows.engine.context import RunContext

__all__ = ["IncidentVendors", "drain", "find_vendors", "mover", "set_status_and_sync",
           "sync_forever"]

log = logging.getLogger("firelane.lifecycle")
LEASE_SECONDS = 60.0


@dataclass(frozen=True)
class IncidentVendors:
    """Where an incident's page and ticket are, and the runbook mapping for its ticket."""

    page: tuple[Execution, dict[str, Any]] | None
    ticket: tuple[Execution, str] | None
    jira_statuses: dict[str, str]


def find_vendors(store: Store, incident_id: str) -> IncidentVendors:
    """The first page and ticket the incident's executions (not dry runs) opened."""
    page: tuple[Execution, dict[str, Any]] | None = None
    ticket: tuple[Execution, str] | None = None
    statuses: dict[str, str] = {}
    for execution in store.list_executions(incident_id):
        if execution.dry_run:
            continue
        runbook = parse_snapshot(execution.runbook_source,
                                 execution.runbook_path or "<snapshot>").runbook
        statuses = {**runbook.jira_statuses, **statuses}
        uses = {s.id: s.uses for s in runbook.all_steps()}
        for step_id, record in store.step_records(execution.id).items():
            outputs = record.outputs or {}
            if record.status is not StepStatus.SUCCEEDED or outputs.get("dry_run"):
                continue
            if page is None and uses.get(step_id) == "pagerduty.trigger":
                page = (execution, outputs)
            if ticket is None and uses.get(step_id) == "jira.create_issue" \
                    and outputs.get("key") not in (None, "DRY-RUN"):
                ticket = (execution, str(outputs["key"]))
    return IncidentVendors(page, ticket, statuses)


async def _carry_out(store: Store, sync: LifecycleSync, settings: Settings,
                     ) -> list[TimelineEvent]:
    incident = await asyncio.to_thread(store.get_incident, sync.incident_id)
    found = await asyncio.to_thread(find_vendors, store, incident.id)
    service = serving_catalog(settings.catalog_path).get(incident.service)
    done: list[str] = []
    verb = page_action(sync)
    if verb is not None and found.page is not None:
        execution, outputs = found.page
        ctx = execution_context(execution, incident, "lifecycle", f"lifecycle-{sync.id}")
        ctx.service = service
        routing = outputs.get("routing_key_block") or (
            service.pagerduty.routing_key_block if service and service.pagerduty else None)
        args: dict[str, Any] = {"dedup_key": outputs["dedup_key"], "routing_key_block": routing}
        if verb == "trigger":
            args.update(summary=incident.title)
            await call_action("pagerduty.trigger", args, ctx)
        else:
            await call_action(f"pagerduty.{verb}", args, ctx)
        done.append(f"page {outputs['dedup_key']}: {verb}")
    target = ticket_status(sync, found.jira_statuses, service.jira_statuses if service else None)
    if target is not None and found.ticket is not None:
        execution, key = found.ticket
        ctx = execution_context(execution, incident, "lifecycle", f"lifecycle-{sync.id}")
        moved = await call_action("jira.transition", {"issue": key, "to": target}, ctx)
        done.append(f"{key} → {target}" if moved.changed else f"{key} already {target}")
    if not done:
        return []
    return [TimelineEvent(incident_id=incident.id, kind="lifecycle.synced",
                          summary="In step with the incident: " + "; ".join(done),
                          details={"sync_id": sync.id, "to": sync.to_status.value,
                                   "via": sync.via, "done": done})]


async def _run_batch(store: Store, syncs: list[LifecycleSync], settings: Settings) -> int:
    for n, sync in enumerate(syncs):
        try:
            events = await _carry_out(store, sync, settings)
        except Exception as exc:
            if is_transient(exc) or (isinstance(exc, ActionError) and exc.retryable) \
                    or not isinstance(exc, FirelaneError):
                log.warning("lifecycle sync of %s failed, retried later: %s: %s",
                            sync.incident_id, type(exc).__name__, exc)
                await store_call(store.finish_sync, sync.id, f"{type(exc).__name__}: {exc}")
                await store_call(store.release_syncs, [s.id for s in syncs[n + 1:]])
                return n
            events = [TimelineEvent(
                incident_id=sync.incident_id, kind="lifecycle.sync_failed",
                summary=f"Could not bring the page/ticket in step: {exc}",
                details={"sync_id": sync.id, "to": sync.to_status.value, "error": str(exc)})]
        await store_call(store.finish_sync, sync.id, None, events)
    return len(syncs)


async def drain(store: Store, incident_id: str | None = None,
                settings: Settings | None = None, owner: str | None = None) -> int:
    """Carry out pending syncs (of one incident, or of each incident once); returns how many
    were done. A sync a vendor refused for good (a ticket workflow without the status) is
    done with a `lifecycle.sync_failed` event; one that may work later stays pending. A
    drain cancelled part-way (its request or process ends) gives its leases back at once.

    Each drain leases under an owner of its own, so two drains of one incident in one
    process (two quick changes) never run the same sync twice or out of order: the second
    finds the first's lease and leaves the work to it, and the first, before it returns,
    takes the syncs recorded while it ran."""
    settings = settings or Settings.from_env()
    owner = owner or f"{worker_identity()}:{uuid.uuid4().hex[:8]}"
    seen_incidents: set[str] = set()
    tried: set[str] = set()
    done = 0
    while True:
        syncs = await asyncio.to_thread(store.claim_syncs, owner, LEASE_SECONDS, incident_id)
        fresh = [s for s in syncs if s.id not in tried]
        if not syncs or not fresh or (incident_id is None
                                      and syncs[0].incident_id in seen_incidents):
            if syncs:
                await asyncio.to_thread(store.release_syncs, [s.id for s in syncs])
            return done
        seen_incidents.add(syncs[0].incident_id)
        tried.update(s.id for s in syncs)
        try:
            done += await _run_batch(store, syncs, settings)
        except BaseException:
            store.release_syncs([s.id for s in syncs])
            raise


async def sync_forever(store: Store, stop: asyncio.Event, every: float = 2.0) -> int:
    """A responder's sweep: drain pending syncs every `every` seconds until `stop`."""
    done = 0
    while not stop.is_set():
        try:
            done += await drain(store)
        except StoreUnavailable:
            pass
        except Exception as exc:
            log.error("lifecycle sweep failed: %s: %s", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return done


async def set_status_and_sync(store: Store, incident: Incident, to: IncidentStatus,
                              actor: str | None, reason: str, via: str) -> Incident:
    """Move the incident (a no-op when it already is `to`) and bring its page and ticket in
    step at once; a sync that fails here stays pending for the responders' sweep."""
    current = await asyncio.to_thread(store.get_incident, incident.id)
    if current.status is to:
        return current
    changed = await asyncio.to_thread(store.set_status, incident.id, to, actor, reason, via)
    try:
        await drain(store, incident.id)
    except Exception as exc:
        log.warning("lifecycle sync of INC-%s left to the responders: %s", changed.number, exc)
    return changed


def mover(rc: RunContext, step: Any) -> Callable[[str, str], Awaitable[str]]:
    """`ActionContext.move_incident` for a step of `rc`: the change is recorded as made by
    the runbook (via `runbook`), and the run's view of the incident follows it."""
    async def move(to: str, reason: str) -> str:
        rc.incident = await set_status_and_sync(
            rc.store, rc.incident, IncidentStatus(to), f"runbook {rc.execution.runbook_name}",
            reason or f"step {step.id}", "runbook")
        return rc.incident.status.value
    return move
