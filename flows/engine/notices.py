"""Slack notices the engine sends on its own (a failed page, a guardrail that stopped a step,
a Prefect outage that interrupted a run): to the alarm channel (`FIRELANE_PAGE_FAILURE_CHANNEL`)
and to the incident's war-room channel when the runbook already created one. A notice Slack
refuses is returned, never raised. A dry run without the sandbox sends none."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from firelane.models import StepStatus, TimelineEvent
from firelane.registry import ActionContext, call_action
from firelane.runbook import Step
from flows.engine.context import RunContext

__all__ = ["NOTICE_TIMEOUT_SECONDS", "notice_context", "notify_execution", "notify_slack",
           "quiet", "war_room_channel"]

NOTICE_TIMEOUT_SECONDS = 20.0


def quiet(rc: RunContext) -> bool:
    """A dry run without the sandbox tells nobody anything (it makes no outward effect)."""
    return rc.execution.dry_run and not rc.execution.sandbox


def war_room_channel(rc: RunContext) -> str | None:
    """The channel a `slack.create_channel` step of this execution created, if any."""
    for step in rc.loaded.runbook.all_steps():
        record = rc.records.get(step.id)
        if step.uses == "slack.create_channel" and record is not None \
                and record.status is StepStatus.SUCCEEDED and record.outputs \
                and not record.outputs.get("dry_run"):
            return str(record.outputs.get("id") or "") or None
    return None


def notice_context(rc: RunContext, step: Step, suffix: str) -> ActionContext:
    """A context for a message the engine sends about `step` (its own idempotency key)."""
    return ActionContext(
        incident=rc.incident, execution_id=rc.execution.id, step_id=step.id,
        idempotency_key=f"{rc.records[step.id].idempotency_key}:{suffix}",
        sandbox=rc.execution.sandbox, credentials=dict(rc.loaded.runbook.credentials))


async def _post(ctx: ActionContext, channel: str, text: str) -> str | None:
    try:
        async with asyncio.timeout(NOTICE_TIMEOUT_SECONDS):
            await call_action("slack.post_message", {"channel": channel, "text": text}, ctx)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _notify(rc: RunContext, text: str,
                  context: Callable[[str], ActionContext]) -> tuple[list[str], dict[str, str]]:
    notified: list[str] = []
    failures: dict[str, str] = {}
    channels = list(dict.fromkeys(c for c in (rc.alarm_channel, war_room_channel(rc)) if c))
    if quiet(rc):
        await asyncio.to_thread(rc.store.append_events, [TimelineEvent(
            incident_id=rc.incident.id, kind="notice.dry_run", source="runbook",
            execution_id=rc.execution.id, summary="Slack notice not sent (dry run)",
            details={"text": text, "channels": channels})])
        return notified, failures
    for channel in channels:
        problem = await _post(context(channel), channel, text)
        if problem is None:
            notified.append(channel)
        else:
            failures[channel] = problem
    return notified, failures


async def notify_slack(rc: RunContext, step: Step, text: str,
                       kind: str) -> tuple[list[str], dict[str, str]]:
    """Post `text` once per channel (keyed by step and `kind`); (notified, failures)."""
    return await _notify(rc, text, lambda channel: notice_context(rc, step, f"{kind}:{channel}"))


async def notify_execution(rc: RunContext, text: str,
                           kind: str) -> tuple[list[str], dict[str, str]]:
    """Post a notice about the whole execution (not one step) once per channel and `kind`;
    the key counts earlier notices of that kind, so a second outage is told again."""
    events = await asyncio.to_thread(rc.store.timeline, rc.incident.id)
    told = sum(e.kind == kind and e.execution_id == rc.execution.id for e in events)

    def context(channel: str) -> ActionContext:
        return ActionContext(
            incident=rc.incident, execution_id=rc.execution.id, step_id=kind,
            idempotency_key=f"firelane-{rc.execution.id[:12]}-{kind}-{told}:{channel}",
            sandbox=rc.execution.sandbox, credentials=dict(rc.loaded.runbook.credentials))

    return await _notify(rc, text, context)
