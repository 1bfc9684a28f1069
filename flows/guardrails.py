"""The engine's guardrails in front of every destructive step (dry runs skip them: they touch
nothing).

In order: the kill switch and maintenance windows (`firelane automation ...`) stop the step;
the per-service lock lets one remediation per service run at a time (a strict Prefect global
concurrency limit `firelane-remediation-<service>` with one slot, created on first use and held
from the execution's first destructive step to its end; a second incident's step waits, is
skipped or fails per its `on_locked`); the rate limit refuses an execution that would be the
(N+1)-th remediation of the service within an hour (`guardrails.max_runs_per_hour`, default
3). A stop is recorded as the step `skipped` with the reason, and a rate-limit stop also goes
to Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from firelane.errors import ActionError, GuardrailBlocked
from firelane.lanes import run_blocking
from firelane.runbook import Step

if TYPE_CHECKING:
    from flows.engine import RunContext

__all__ = ["ServiceLock", "check_pause", "guard", "prefect_service_lock"]

log = logging.getLogger("firelane.guardrails")

ServiceLock = Callable[["RunContext", Step], Awaitable[None]]

LOCK_RACE_SECONDS = 30.0


async def check_pause(rc: RunContext, step: Step) -> None:
    """Raise `GuardrailBlocked` when automation is paused for the incident's service."""
    pause = await run_blocking(rc.store.blocking_pause, rc.incident.service)
    if pause is not None:
        raise GuardrailBlocked(f"{pause.describe()} (firelane automation status)")


async def guard(rc: RunContext, step: Step) -> None:
    """Every guardrail, just before a destructive step acts."""
    await check_pause(rc, step)
    if rc.service_lock is not None:
        await rc.service_lock(rc, step)
        await check_pause(rc, step)
    limit = rc.loaded.runbook.guardrails.max_runs_per_hour
    allowed, runs = await run_blocking(rc.store.count_remediation, rc.execution.id,
                                       rc.incident.service, limit)
    if not allowed:
        from flows.notices import notify_slack

        reason = (f"rate limit: {runs} remediations of {rc.incident.service} in the last hour "
                  f"(this runbook allows {limit})")
        _, failures = await notify_slack(
            rc, step, f":no_entry: INC-{rc.incident.number}: step {step.id} ({step.uses}) "
            f"was not run: {reason}. Remediate by hand if needed.", "rate-limit")
        if failures:
            log.warning("rate-limit notice not sent to %s", failures)
        raise GuardrailBlocked(reason)


async def _busy(name: str) -> bool:
    """Create the limit (one slot) when missing; is its slot taken right now?"""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

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
    from prefect.concurrency.asyncio import concurrency

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
        raise GuardrailBlocked(f"{who} (on_locked: skip)")
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
            raise GuardrailBlocked(f"{who} (on_locked: skip)") from exc
        raise GuardrailBlocked(f"{who}; gave up waiting after {wait:g} s") from exc

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
