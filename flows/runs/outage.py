"""Runs that outlive a Prefect API outage.

Prefect's client retries a lost API for a while (`PREFECT_CLIENT_MAX_RETRIES`, about half a
minute by default) and then the flow run raises. The steps are safe in the ledger, but the
execution would sit "running" with nobody on it. `ride_out_outages` catches that: it records
`execution.interrupted` on the timeline and tells Slack (the alarm channel and the war room),
waits for the API to answer again, and runs the flow again, which resumes from the ledger and
marks the lost flow run Crashed. Past `FIRELANE_PREFECT_OUTAGE_SECONDS` (default 900) it gives up
loudly: the execution is failed, the timeline and Slack say why and how to resume it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from firelane.models import ExecutionStatus, TimelineEvent
from firelane.outcome import Outcome, OutcomeKind
from firelane.settings import Settings
from flows.engine import RunContext, refresh_context
from flows.engine.notices import notify_execution

__all__ = ["api_reachable", "is_api_outage", "outage_budget", "ride_out_outages"]

log = logging.getLogger("firelane.engine")

MAX_OUTAGES = 5


def outage_budget() -> float:
    """How long one outage may last before the execution is failed (seconds)."""
    return Settings.from_env().prefect_outage_seconds


def is_api_outage(exc: BaseException) -> bool:
    """The exception (or one it came from) is the Prefect API being unreachable or failing
    (a transport error, or a 5xx answer), not a fault of the runbook."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.TransportError):
            return True
        if isinstance(current, httpx.HTTPStatusError) and current.response.status_code >= 500:
            return True
        current = current.__cause__ or current.__context__
    return False


async def api_reachable(timeout: float = 2.0) -> bool:
    """The Prefect API answers its health check."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return True
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            return (await client.get(f"{url.rstrip('/')}/health")).status_code == 200
    except httpx.HTTPError:
        return False


async def _wait_for_api(budget: float) -> float | None:
    """Seconds until the API answered, or None when `budget` ran out first."""
    started = time.monotonic()
    pause = 0.5
    while True:
        if await api_reachable():
            return time.monotonic() - started
        if time.monotonic() - started >= budget:
            return None
        await asyncio.sleep(min(pause, max(0.0, budget - (time.monotonic() - started))))
        pause = min(5.0, pause * 1.5)


async def _tell(rc: RunContext, kind: str, summary: str, **details: Any) -> None:
    event = TimelineEvent(incident_id=rc.incident.id, kind=kind, source="runbook",
                          execution_id=rc.execution.id, summary=summary, details=details)
    await asyncio.to_thread(rc.store.append_events, [event])
    notified, failures = await notify_execution(rc, summary, kind)
    if failures:
        await asyncio.to_thread(rc.store.append_events, [TimelineEvent(
            incident_id=rc.incident.id, kind="notice.failed", source="runbook",
            execution_id=rc.execution.id, summary=f"Slack notice about {kind} not delivered",
            details={"failures": failures, "notified": notified})])


async def _give_up(rc: RunContext, why: str, error: str) -> dict[str, Any]:
    await asyncio.to_thread(rc.store.set_execution_status, rc.execution.id,
                            ExecutionStatus.FAILED)
    await _tell(rc, "execution.failed",
                f"INC-{rc.incident.number} {rc.execution.runbook_name} stopped: {why}. Resume "
                f"it with `firelane resume {rc.execution.id}`", error=error)
    outcome = Outcome(OutcomeKind.FAILED, f"{why} (resume it with `firelane resume "
                      f"{rc.execution.id}`)")
    return {"execution_id": rc.execution.id, "status": ExecutionStatus.FAILED.value,
            "outcome": outcome.details(), "steps": [], "error": error}


async def ride_out_outages(rc: RunContext,
                           run: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Run the execution's flow (`run`); through each Prefect API outage, wait for the API
    and run it again (a resume); fail loudly when one outage outlasts `outage_budget()`, or
    when the run keeps failing on the API (`MAX_OUTAGES` in a row) while its health check
    answers. `rc` is the execution's context, shared with the runs."""
    execution_id = rc.execution.id
    outages = 0
    while True:
        try:
            return await run()
        except Exception as exc:
            if not is_api_outage(exc):
                raise
            error = f"{type(exc).__name__}: {exc}"
        outages += 1
        budget = outage_budget()
        await asyncio.to_thread(refresh_context, rc)
        if outages > MAX_OUTAGES:
            return await _give_up(rc, f"the Prefect API failed {MAX_OUTAGES} times in a row "
                                  "while answering its health check", error)
        log.error("execution %s: the Prefect API is unreachable (%s); waiting up to %.0f s",
                  execution_id, error, budget)
        await _tell(rc, "execution.interrupted",
                    f"INC-{rc.incident.number} {rc.execution.runbook_name}: the Prefect API "
                    f"is unreachable; steps already done are kept; waiting up to {budget:.0f} s "
                    "to resume", error=error, outage=outages)
        waited = await _wait_for_api(budget)
        if waited is None:
            return await _give_up(rc, f"the Prefect API did not come back within {budget:.0f} s",
                                  error)
        await _tell(rc, "execution.resuming",
                    f"INC-{rc.incident.number} {rc.execution.runbook_name}: the Prefect API is "
                    f"back after {waited:.0f} s; resuming from the ledger", outage=outages)
