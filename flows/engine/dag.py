"""Drive a runbook's DAG: start ready steps concurrently, record skips, then `on_failure`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from firelane.models import StepStatus
from firelane.planner import Planner
from firelane.runbook import Step
from firelane.store import StepRecord
from flows.engine.context import RunContext
from flows.engine.steps import skip_step

__all__ = ["StepRunner", "run_dag", "summarize"]

StepRunner = Callable[[RunContext, Step], Coroutine[Any, Any, StepRecord]]


async def _drive(rc: RunContext, steps: list[Step], runner: StepRunner) -> Planner:
    planner = Planner(steps)
    by_id = {s.id: s for s in steps}
    for step_id, rec in list(rc.records.items()):
        if step_id in by_id and rec.finished:
            planner.record(step_id, rec.status)
    running: dict[asyncio.Task[StepRecord], str] = {}
    try:
        while True:
            advance = planner.advance()
            for step_id, reason in advance.skip.items():
                planner.record(step_id, (await skip_step(rc, by_id[step_id], reason)).status)
            for step_id in advance.ready:
                planner.start(step_id)
                running[asyncio.create_task(runner(rc, by_id[step_id]))] = step_id
            if advance.skip:
                continue
            if not running:
                return planner
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                step_id = running.pop(task)
                record = task.result()
                rc.records[step_id] = record
                planner.record(step_id, record.status)
    finally:
        for task in running:
            task.cancel()


async def run_dag(rc: RunContext, runner: StepRunner) -> bool:
    """Run every step, then the `on_failure` steps if the runbook failed. True when it failed."""
    main = await _drive(rc, rc.loaded.runbook.steps, runner)
    if main.failed and rc.loaded.runbook.on_failure:
        await _drive(rc, rc.loaded.runbook.on_failure, runner)
    return main.failed


def summarize(rc: RunContext) -> list[dict[str, object]]:
    """One row per step (for the table artifact and the CLI): a failed step's `error`, a
    skipped step's `reason`."""
    rows: list[dict[str, object]] = []
    for step in rc.loaded.runbook.all_steps():
        rec = rc.records.get(step.id)
        rows.append({
            "step": step.id, "uses": step.uses,
            "status": rec.status.value if rec else "not run",
            "attempts": rec.attempts if rec else 0,
            "seconds": round(rec.duration_seconds, 3) if rec and rec.duration_seconds else None,
            "error": (rec.error or "") if rec and rec.status is StepStatus.FAILED else "",
            "reason": (rec.error or "") if rec and rec.status is StepStatus.SKIPPED else "",
        })
    return rows
