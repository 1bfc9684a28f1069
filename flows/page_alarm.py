"""When a page fails after its retries, nobody may be awake: say so loudly.

The incident gets the `page_failed` label and a `page.failed` timeline event (the intake's
`/metrics` counts them), the log gets an ERROR, and Slack gets a notice in the configured alarm
channel (`FIRELANE_PAGE_FAILURE_CHANNEL`) and in the war-room channel when the runbook already
created one. A notice that cannot be sent is logged and recorded, never raised: the alarm itself
must not fail the step's record.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from firelane.models import StepStatus, TimelineEvent
from firelane.registry import ActionContext, get_action
from firelane.runbook import Step

if TYPE_CHECKING:
    from flows.engine import RunContext

__all__ = ["NOTICE_TIMEOUT_SECONDS", "raise_page_alarm"]

log = logging.getLogger("firelane.page_alarm")

NOTICE_TIMEOUT_SECONDS = 20.0


def _war_room(rc: RunContext) -> str | None:
    for step in rc.loaded.runbook.all_steps():
        record = rc.records.get(step.id)
        if step.uses == "slack.create_channel" and record is not None \
                and record.status is StepStatus.SUCCEEDED and record.outputs:
            return str(record.outputs.get("id") or "") or None
    return None


async def _notify(rc: RunContext, step: Step, channel: str, text: str) -> str | None:
    """Post the notice; the error text when it could not be sent."""
    spec = get_action("slack.post_message")
    ctx = ActionContext(
        incident=rc.incident, execution_id=rc.execution.id, step_id=step.id,
        idempotency_key=f"{rc.records[step.id].idempotency_key}:page-alarm:{channel}",
        sandbox=rc.execution.sandbox, credentials=dict(rc.loaded.runbook.credentials))
    try:
        async with asyncio.timeout(NOTICE_TIMEOUT_SECONDS):
            await spec.fn(spec.inputs.model_validate({"channel": channel, "text": text}), ctx)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def raise_page_alarm(rc: RunContext, step: Step, error: str) -> TimelineEvent:
    """Flag the incident, log, and tell Slack that `step`'s page did not go out."""
    inc = rc.incident
    text = (f":rotating_light: PAGE FAILED for INC-{inc.number} [{inc.severity}] {inc.title}: "
            f"step {step.id} ({step.uses}) gave up: {error}. Nobody may have been paged; "
            "page the on-call by hand.")
    log.error("PAGE FAILED for INC-%s (%s): step %s gave up: %s", inc.number, inc.id, step.id,
              error)
    notified: list[str] = []
    failures: dict[str, str] = {}
    for channel in dict.fromkeys(c for c in (rc.alarm_channel, _war_room(rc)) if c):
        problem = await _notify(rc, step, channel, text)
        if problem is None:
            notified.append(channel)
        else:
            failures[channel] = problem
            log.error("could not tell Slack channel %s about the failed page: %s", channel,
                      problem)
    if not notified:
        log.error("no Slack notice about the failed page of INC-%s was sent (alarm channel: "
                  "%s)", inc.number, rc.alarm_channel or "not set, FIRELANE_PAGE_FAILURE_CHANNEL")
    event = rc.event(step, "page.failed", f"Page failed after its retries: {error}",
                     error=error, slack_notified=notified, slack_failures=failures)
    await asyncio.to_thread(rc.store.flag_incident, inc.id, "page_failed", event)
    return event
