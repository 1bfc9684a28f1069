"""The engine's guardrails in front of every destructive step (dry runs skip them: they touch
nothing).

In order: the kill switch and maintenance windows (`firelane automation ...`) stop the step;
the per-service lock lets one remediation per service run at a time (injected as
`RunContext.service_lock`: the `run-runbook` flow gives it Prefect's global concurrency limit,
`flows.runs.service_lock`; a second incident's step waits, is skipped or fails per its
`on_locked`); the rate limit refuses an execution that would be the (N+1)-th remediation of the
service within an hour (`guardrails.max_runs_per_hour`, default 3). A stop is recorded as the
step `skipped` with the reason; the execution's outcome is then `blocked`, which Slack is told
once (`flows.engine.conclude`).
"""

from __future__ import annotations

from firelane.errors import GuardrailBlocked
from firelane.lanes import run_blocking
from firelane.runbook import Step
from flows.engine.context import RunContext

__all__ = ["check_pause", "guard"]


async def check_pause(rc: RunContext, step: Step) -> None:
    """Raise `GuardrailBlocked` when automation is paused for the incident's service."""
    pause = await run_blocking(rc.store.blocking_pause, rc.incident.service)
    if pause is not None:
        raise GuardrailBlocked(f"{pause.describe()} (firelane automation status)",
                               "kill_switch" if pause.kind == "pause" else "maintenance_window",
                               pause.service, pause.until)


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
        reason = (f"rate limit: {runs} remediations of {rc.incident.service} in the last hour "
                  f"(this runbook allows {limit})")
        raise GuardrailBlocked(reason, "rate_limit", rc.incident.service)
