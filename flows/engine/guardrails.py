"""The engine's guardrails in front of every destructive step (dry runs skip them: they touch
nothing).

In order: the kill switch and maintenance windows (`firelane automation ...`) stop the step;
the per-service lock lets one remediation per service run at a time (injected as
`RunContext.service_lock`: the `run-runbook` flow gives it Prefect's global concurrency limit,
`flows.runs.service_lock`; a second incident's step waits, is skipped or fails per its
`on_locked`); the rate limit refuses an execution that would be the (N+1)-th remediation of the
service within an hour (`guardrails.max_runs_per_hour`, default 3). A stop is recorded as the
step `skipped` with the reason, and a rate-limit stop also goes to Slack.
"""

from __future__ import annotations

import logging

from firelane.errors import GuardrailBlocked
from firelane.lanes import run_blocking
from firelane.runbook import Step
from flows.engine.context import RunContext
from flows.engine.notices import notify_slack

__all__ = ["check_pause", "guard"]

log = logging.getLogger("firelane.guardrails")


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
        _, failures = await notify_slack(
            rc, step, f":no_entry: INC-{rc.incident.number}: step {step.id} ({step.uses}) "
            f"was not run: {reason}. Remediate by hand if needed.", "rate-limit")
        if failures:
            log.warning("rate-limit notice not sent to %s", failures)
        raise GuardrailBlocked(reason, "rate_limit", rc.incident.service)
