"""The fast path: urgent steps start the moment an execution exists, beside its flow run.

A deployment run takes seconds to reach its first line and even an in-process flow call costs
about 200 ms (PREFECT.md), so paging cannot wait for Prefect. Urgent steps (no `needs`, no `if`,
no approval, not destructive) run at once through the same `execute_step()` and ledger as every
step; paging steps go first, the other urgent steps a moment later, so the war room's requests
do not queue in front of the page. The `run-runbook` flow then runs the whole runbook: in this
process (a worker thread with its own loop) or handed to a Prefect deployment with the
execution id as the idempotency key. When its DAG reaches the urgent steps it finds them
recorded and reuses their outcome, so each side effect happens once and still shows in the flow
run.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from firelane.lanes import paging_lane, run_blocking
from firelane.registry import get_action
from firelane.runbook import Runbook, Step
from firelane.settings import Settings
from firelane.store import RunState, StepRecord, Store
from flows.engine import RunContext, build_context, execute_step
from flows.respond.run_mode import RunMode, Where
from flows.runs.run_runbook import run_execution

__all__ = ["FLOW_THREADS", "PAGE_HEAD_START_SECONDS", "URGENT_HEAD_START_SECONDS", "hand_off",
           "run_flow_in_thread", "run_in_flow_thread", "run_with_fast_path",
           "start_urgent_steps", "urgent_steps"]

URGENT_HEAD_START_SECONDS = 1.0
WAR_ROOM_CONCURRENCY = 8
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
    weakref.WeakKeyDictionary()
FLOW_THREADS = 64

_flow_pool = ThreadPoolExecutor(max_workers=FLOW_THREADS, thread_name_prefix="firelane-flow")
PAGE_HEAD_START_SECONDS = 0.05

log = logging.getLogger("firelane.fast_path")


def urgent_steps(runbook: Runbook) -> list[Step]:
    """Steps that can safely start before the flow run exists."""
    return [s for s in runbook.steps if not s.needs and s.if_ is None and s.approval is None
            and not get_action(s.uses).destructive]


async def start_urgent_steps(store: Store, execution_id: str,
                             settings: Settings) -> list[asyncio.Task[StepRecord]]:
    """Start the urgent steps of an execution: its pages at once, the rest as soon as the
    pages are done or `PAGE_HEAD_START_SECONDS` have passed, at most `WAR_ROOM_CONCURRENCY`
    of them at a time in this process, so a burst of incidents cannot queue a page behind
    other incidents' tickets and channels. Steps whose action `waits` (a health check, mostly
    asleep between probes) take no slot: holding one while asleep queued the next incidents'
    war rooms behind it. Returns every started task."""
    rc = await asyncio.to_thread(build_context, store, execution_id, settings)
    return await _start_urgent(rc)


async def _start_urgent(rc: RunContext) -> list[asyncio.Task[StepRecord]]:
    urgent = urgent_steps(rc.loaded.runbook)
    pages = [s for s in urgent if get_action(s.uses).pages]
    tasks = [asyncio.create_task(execute_step(rc, s)) for s in pages]
    if tasks:
        await asyncio.wait(tasks, timeout=PAGE_HEAD_START_SECONDS)
    slots = _war_room_slots()

    async def behind_pages(step: Step) -> StepRecord:
        async with slots:
            return await execute_step(rc, step)

    return tasks + [asyncio.create_task(execute_step(rc, s) if get_action(s.uses).waits
                                        else behind_pages(s)) for s in urgent if s not in pages]


def _war_room_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = asyncio.Semaphore(WAR_ROOM_CONCURRENCY)
    return slots


async def hand_off(store: Store, execution_id: str, deployment: str,
                   max_delay: float = 60.0) -> str:
    """Create the execution's flow run on `deployment`, retrying while the Prefect API is down
    (the idempotency key makes a retried or repeated hand-off create one run). Returns the flow
    run id once the execution is Prefect's to finish."""
    from prefect.deployments import run_deployment

    delay = 0.5
    while True:
        try:
            run: Any = await run_deployment(  # type: ignore[misc]
                deployment, parameters={"execution_id": execution_id}, timeout=0,
                idempotency_key=f"firelane-execution-{execution_id}")
            break
        except Exception as exc:
            log.warning("hand-off of execution %s to %s failed (%s: %s); retrying in %.1f s",
                        execution_id, deployment, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)
    await asyncio.to_thread(store.hand_off_execution, execution_id, str(run.id))
    return str(run.id)


async def run_in_flow_thread(fn: Any, *args: Any) -> Any:
    """Run a blocking call (a flow on its own loop) on the flow threads."""
    return await asyncio.get_running_loop().run_in_executor(_flow_pool, lambda: fn(*args))


async def run_flow_in_thread(execution_id: str,
                             context: RunContext | None = None) -> dict[str, Any]:
    """Run the execution's `run-runbook` flow on its own loop in a flow thread (a pool of
    `FLOW_THREADS`, apart from the default executor the store calls use: a flow waiting hours
    for an approval must not starve them). `context`: the execution's `RunContext` when the
    caller built it already."""
    return await asyncio.get_running_loop().run_in_executor(_flow_pool, run_execution,
                                                            execution_id, context)


async def run_with_fast_path(store: Store, execution_id: str, settings: Settings,
                             mode: RunMode | None = None,
                             state: RunState | None = None) -> dict[str, Any]:
    """Urgent steps at once, the whole runbook in the `run-runbook` flow beside them.

    The flow starts once the urgent steps are done or `URGENT_HEAD_START_SECONDS` have passed:
    Prefect's run set-up does tens of milliseconds of CPU work that would otherwise compete
    with the urgent requests. `mode` says where it runs (default: here, in this process). The
    execution's `RunContext` is built once here and shared by the urgent steps and the flow;
    `state`: what the claim already read (`Store.claim_runs`), so nothing is read again.
    """
    mode = mode or RunMode.here()
    with paging_lane():
        rc = await run_blocking(build_context, store, execution_id, settings, state)
    urgent = await _start_urgent(rc)
    if urgent:
        await asyncio.wait(urgent, timeout=URGENT_HEAD_START_SECONDS)
    try:
        if mode.where is Where.DEPLOYMENT:
            return {"execution_id": execution_id, "flow_run_id": await hand_off(
                store, execution_id, mode.deployment)}
        if mode.where is Where.READY:
            await asyncio.to_thread(store.mark_ready, execution_id)
            return {"execution_id": execution_id, "status": "ready"}
        return await run_flow_in_thread(execution_id, rc)
    finally:
        await asyncio.gather(*urgent, return_exceptions=True)
