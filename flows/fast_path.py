"""The fast path: urgent steps start the moment an execution exists, beside its flow run.

A deployment run takes seconds to reach its first line and even an in-process flow call costs
about 200 ms (PREFECT.md), so paging cannot wait for Prefect. Urgent steps (no `needs`, no `if`,
no approval, not destructive) run at once through the same `execute_step()` and ledger as every
step, while the `run-runbook` flow starts beside them; when its DAG reaches those steps it finds
them claimed or recorded and reuses their outcome, so each side effect happens once and still
shows in the flow run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from firelane.registry import get_action
from firelane.runbook import Runbook, Step
from firelane.settings import Settings
from firelane.store import StepRecord, Store
from flows.engine import execute_step
from flows.runbook_flow import build_context, run_execution

__all__ = ["URGENT_HEAD_START_SECONDS", "run_with_fast_path", "start_urgent_steps",
           "urgent_steps"]

URGENT_HEAD_START_SECONDS = 1.0


def urgent_steps(runbook: Runbook) -> list[Step]:
    """Steps that can safely start before the flow run exists."""
    return [s for s in runbook.steps if not s.needs and s.if_ is None and s.approval is None
            and not get_action(s.uses).destructive]


def start_urgent_steps(store: Store, execution_id: str,
                       settings: Settings) -> list[asyncio.Task[StepRecord]]:
    """Start the urgent steps of an execution now; the caller starts the flow beside them."""
    rc = build_context(store, execution_id, settings)
    return [asyncio.create_task(execute_step(rc, s)) for s in urgent_steps(rc.loaded.runbook)]


async def run_with_fast_path(store: Store, execution_id: str,
                             settings: Settings) -> dict[str, Any]:
    """Urgent steps at once, the whole runbook in the `run-runbook` flow beside them.

    The flow runs on its own event loop in a worker thread, and starts once the urgent steps
    are done or `URGENT_HEAD_START_SECONDS` have passed: Prefect's run set-up does tens of
    milliseconds of CPU work that would otherwise compete with the urgent requests.
    """
    urgent = start_urgent_steps(store, execution_id, settings)
    if urgent:
        await asyncio.wait(urgent, timeout=URGENT_HEAD_START_SECONDS)
    try:
        return await asyncio.to_thread(run_execution, execution_id)
    finally:
        await asyncio.gather(*urgent, return_exceptions=True)
