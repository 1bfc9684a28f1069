"""The responder: warm `firelane respond` processes that run the responses an intake left
pending.

Kept apart from the intake so a storm's ingestion and the paging path do not share a CPU and an
interpreter lock: the intake only commits alerts, incidents and pending executions; responders
claim them (woken by `NOTIFY` or a UDP nudge, falling back to a slow poll with a cheap read;
claiming with a conditional update), heartbeat what they run, and once a second
(`TICK_SECONDS`) take over executions whose responder died.

Roles split the work further, so Prefect's CPU work never sits in front of a page:
- `all` (default): urgent steps at once, then the flow run in this process;
- `urgent`: urgent steps only, then the execution is left `ready` for a flow runner, or handed
  to a Prefect deployment (`--hand-off`);
- `flows`: claims `ready` executions and runs their flow runs here (at a lower CPU priority,
  `--nice`), where the DAG finds the urgent steps recorded and goes on from there; it also runs
  the timeline report and postmortem draft of incidents resolved without one (an alert
  auto-resolved them).

The paging roles also hand the interpreter lock between threads every 1 ms instead of 5 ms: the
event loop that starts pages must not wait behind vendor-client threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from firelane.errors import StoreUnavailable
from firelane.lanes import paging_lane, run_blocking
from firelane.logs import context_with
from firelane.models import Execution, ExecutionStatus, utcnow
from firelane.settings import Settings, worker_identity
from firelane.store import RunState, Store, ride_out, store_call
from flows.engine.lifecycle import sync_forever
from flows.respond.events import relay_forever
from flows.respond.fast_path import run_flow_in_thread, run_in_flow_thread, run_with_fast_path
from flows.respond.liveness import Liveness
from flows.respond.run_mode import ROLES, RunMode
from flows.respond.takeover import PageTakeover
from flows.respond.wake import Waker, open_wake_sources
from flows.runs.report import report_once

__all__ = ["ROLES", "TICK_SECONDS", "report_resolved", "respond_forever", "run_mode_of"]

TICK_SECONDS = 1.0
CLAIM_BATCH = 50

log = logging.getLogger("firelane.responder")


def run_mode_of(role: str, deployment: str | None) -> RunMode:
    """Where a responder in `role` runs flow runs: here (`all`), handed to `deployment`, or
    left ready for a `flows` responder (`urgent`)."""
    if role == "all":
        return RunMode.here()
    return RunMode.hand_off(deployment) if deployment else RunMode.ready()


def _runner(store: Store, settings: Settings, role: str, deployment: str | None,
            ) -> Callable[[str, RunState | None], Coroutine[Any, Any, Any]]:
    where = run_mode_of(role, deployment)
    flows_waker = Waker(settings.flows_wake_address if role == "urgent" else None)

    async def run(execution_id: str, state: RunState | None) -> Any:
        """Run a claimed execution; `state` (read with the claim) serves the first try only:
        a try after a store outage reads the execution anew."""
        if role == "flows":
            return await ride_out(lambda: run_flow_in_thread(execution_id))

        async def attempt() -> dict[str, Any]:
            nonlocal state
            given, state = state, None
            return await run_with_fast_path(store, execution_id, settings, where, given)
        result = await ride_out(attempt)
        if result.get("status") == ExecutionStatus.READY.value:
            flows_waker.wake()
        return result
    return run


async def respond_forever(store: Store, settings: Settings, stop: asyncio.Event,
                          poll_seconds: float | None = None, role: str = "all",
                          deployment: str | None = None, max_running: int = 50) -> int:
    """Claim and run executions in `role` until `stop` is set; returns how many it started.

    An idle responder waits for a wake-up (`flows.respond.wake`: `LISTEN` on PostgreSQL, the
    UDP nudge), which goes straight to a claim (no read first: one store round trip fewer on
    the way to a page), and reads the store every `poll_seconds` only as a fallback (default
    `FIRELANE_POLL_SECONDS`, or `FIRELANE_DEAF_POLL_SECONDS` with no wake-up source); paging
    roles still check for stale executions once a second.

    A store outage stops nothing: polls, claims, heartbeats and the executions being run wait
    for the store with `ride_out` and go on when it answers again."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=32, thread_name_prefix="firelane-io"))
    run = _runner(store, settings, role, deployment)
    wanted = ExecutionStatus.READY if role == "flows" else ExecutionStatus.PENDING
    owner = worker_identity()
    stale_after = settings.lease_seconds * 3
    running: dict[str, asyncio.Task[Any]] = {}
    started = 0

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(stale_after / 3)
            if running:
                await store_call(store.heartbeat_executions, owner, list(running))

    beat = asyncio.create_task(heartbeat())
    alive = Liveness(store, settings, [role], owner).start()
    last_stale_check = 0.0
    loop = asyncio.get_running_loop()
    nudged, freed = asyncio.Event(), asyncio.Event()
    wake = await open_wake_sources(store, settings, wanted.value, nudged, stop)
    if poll_seconds is None:
        poll_seconds = settings.poll_seconds if wake.active else settings.deaf_poll_seconds
    log.info("idle until woken by %s; polling every %g s", wake.describe(), poll_seconds)
    stopping = asyncio.create_task(stop.wait())
    reports = asyncio.create_task(report_resolved(store, stop)) if role == "flows" else None
    syncs = asyncio.create_task(sync_forever(store, stop)) if role != "flows" else None
    events = asyncio.create_task(relay_forever(store, stop)) \
        if role in ("flows", "all") else None
    takeover = PageTakeover(store, settings)
    try:
        while not stop.is_set():
            check_stale = wanted is ExecutionStatus.PENDING and \
                loop.time() - last_stale_check >= TICK_SECONDS
            if check_stale:
                last_stale_check = loop.time()
                await takeover.scan(stop)
            was_nudged = nudged.is_set()
            nudged.clear()
            freed.clear()
            idle = len(running) >= max_running
            if not idle and not check_stale and not was_nudged:
                idle = not await store_call(store.has_pending_executions, wanted, stop=stop)
            if idle:
                woken = asyncio.create_task(nudged.wait())
                slot = asyncio.create_task(freed.wait())
                tick = last_stale_check + TICK_SECONDS - loop.time() \
                    if wanted is ExecutionStatus.PENDING else poll_seconds
                await asyncio.wait([stopping, woken, slot],
                                   timeout=max(0.0, min(poll_seconds, tick)),
                                   return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                slot.cancel()
                continue
            claimed = await _claim(store, owner, stale_after, wanted,
                                   min(CLAIM_BATCH, max_running - len(running)), stop)
            for execution, state in claimed:
                task = asyncio.create_task(run(execution.id, state), context=context_with(
                    execution=execution.id))
                running[execution.id] = task
                task.add_done_callback(_forget(running, execution.id))
                task.add_done_callback(lambda _: freed.set())
                started += 1
    except StoreUnavailable:
        if not stop.is_set():
            raise
    finally:
        await alive.stop()
        if running and stop.is_set():
            await asyncio.wait(list(running.values()), timeout=30)
        await takeover.close()
        beat.cancel()
        stopping.cancel()
        if reports is not None:
            reports.cancel()
        if syncs is not None:
            syncs.cancel()
        if events is not None:
            events.cancel()
        wake.close()
    return started


async def report_resolved(store: Store, stop: asyncio.Event, every: float = 5.0) -> int:
    """Run the timeline report (and postmortem draft) of every incident resolved without one
    (an alert auto-resolved it), once per resolution across all flow runners."""
    done = 0
    while not stop.is_set():
        try:
            resolved = await store_call(store.resolved_without_report,
                                        utcnow() - timedelta(days=1), stop=stop)
        except StoreUnavailable:
            break
        for incident in resolved:
            try:
                if await run_in_flow_thread(report_once, store, incident.id):
                    done += 1
            except Exception as exc:
                log.error("report of INC-%s failed: %s", incident.number, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return done


async def _claim(store: Store, owner: str, stale_after: float, wanted: ExecutionStatus,
                 limit: int, stop: asyncio.Event,
                 ) -> list[tuple[Execution, RunState | None]]:
    """Claim a batch; a paging role claims in the paging lane (its own threads, first for the
    store's write lock in this process), so a claim never queues behind war-room work, and
    reads each response's incident and ledger in the same transaction (`Store.claim_runs`)."""
    if wanted is not ExecutionStatus.PENDING:
        return [(e, None) for e in await store_call(store.claim_executions, owner,
                                                    stale_after, wanted, limit, stop=stop)]
    with paging_lane():
        states = await ride_out(lambda: run_blocking(store.claim_runs, owner, stale_after,
                                                     limit), stop=stop)
    return [(state[0], state) for state in states]


def _forget(running: dict[str, asyncio.Task[Any]], key: str) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        running.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("response %s failed: %s", key, task.exception())
    return done
