"""The per-service remediation lock on Prefect: a strict global concurrency limit
`firelane-remediation-<service>` with one slot, created on first use and held from the
execution's first destructive step to its end. The `run-runbook` flow injects it into the
engine as `RunContext.service_lock`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from firelane.errors import ActionError, GuardrailBlocked
from firelane.runbook import Step
from flows.engine import RunContext

__all__ = ["LOCK_RACE_SECONDS", "prefect_service_lock"]

log = logging.getLogger("firelane.guardrails")

LOCK_RACE_SECONDS = 30.0


async def _busy(name: str) -> bool:
    """Create the limit (one slot) when missing; is its slot taken right now?"""
    async with get_client() as client:
        try:
            found = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1))
            return False
    return found.active_slots >= found.limit


async def _hold(name: str, wait: float, acquired: asyncio.Future[None],
                release: asyncio.Event) -> None:
    try:
        async with concurrency(name, occupy=1, timeout_seconds=wait, strict=True):
            acquired.set_result(None)
            await release.wait()
    except BaseException as exc:
        if acquired.done():
            raise
        acquired.set_exception(exc)


async def prefect_service_lock(rc: RunContext, step: Step) -> None:
    """Take the service's remediation slot (once per execution). `skip` and `fail` look at the
    slot first and act at once when it is taken (Prefect's acquisition itself can take more
    than a second even when the slot is free); they wait `LOCK_RACE_SECONDS` only when another
    run took the slot between that look and the acquisition. A holder task enters and leaves
    Prefect's `concurrency()` (its cancel scopes must stay in one task); the flow run's exit
    stack tells it to let go when the run ends."""
    if rc.lock_stack is None or rc.holds_service_lock:
        return
    name = f"firelane-remediation-{rc.incident.service}"
    busy = await _busy(name)
    who = f"another remediation of {rc.incident.service} holds {name}"
    if busy and step.on_locked == "skip":
        raise GuardrailBlocked(f"{who} (on_locked: skip)", "service_lock", rc.incident.service)
    if busy and step.on_locked == "fail":
        error = ActionError(f"{who} (on_locked: fail)")
        error.retryable = False
        raise error
    wait = (step.timeout_seconds or 3600.0) if step.on_locked == "wait" else LOCK_RACE_SECONDS
    acquired: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    release = asyncio.Event()
    holder = asyncio.create_task(_hold(name, wait, acquired, release))
    try:
        await acquired
    except TimeoutError as exc:
        await asyncio.gather(holder, return_exceptions=True)
        if step.on_locked == "fail":
            error = ActionError(f"{who} (on_locked: fail)")
            error.retryable = False
            raise error from exc
        if step.on_locked == "skip":
            raise GuardrailBlocked(f"{who} (on_locked: skip)", "service_lock",
                                   rc.incident.service) from exc
        raise GuardrailBlocked(f"{who}; gave up waiting after {wait:g} s", "service_lock",
                               rc.incident.service) from exc

    holder_loop = asyncio.get_running_loop()

    async def let_go() -> None:
        holder_loop.call_soon_threadsafe(release.set)
        for _ in range(300):
            if holder.done():
                return
            await asyncio.sleep(0.05)
        log.error("the remediation lock %s was not released within 15 s", name)

    rc.lock_stack.push_async_callback(let_go)
    rc.holds_service_lock = True
