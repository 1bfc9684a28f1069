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

from firelane.models import TimelineEvent
from firelane.runbook import Step
from flows.engine.context import RunContext
from flows.engine.notices import notify_slack

__all__ = ["raise_page_alarm"]

log = logging.getLogger("firelane.page_alarm")


async def raise_page_alarm(rc: RunContext, step: Step, error: str) -> TimelineEvent:
    """Flag the incident, log, and tell Slack that `step`'s page did not go out."""
    inc = rc.incident
    text = (f":rotating_light: PAGE FAILED for INC-{inc.number} [{inc.severity}] {inc.title}: "
            f"step {step.id} ({step.uses}) gave up: {error}. Nobody may have been paged; "
            "page the on-call by hand.")
    log.error("PAGE FAILED for INC-%s (%s): step %s gave up: %s", inc.number, inc.id, step.id,
              error)
    notified, failures = await notify_slack(rc, step, text, "page-alarm")
    for channel, problem in failures.items():
        log.error("could not tell Slack channel %s about the failed page: %s", channel, problem)
    if not notified:
        log.error("no Slack notice about the failed page of INC-%s was sent (alarm channel: "
                  "%s)", inc.number, rc.alarm_channel or "not set, FIRELANE_PAGE_FAILURE_CHANNEL")
    event = rc.event(step, "page.failed", f"Page failed after its retries: {error}",
                     error=error, slack_notified=notified, slack_failures=failures)
    await asyncio.to_thread(rc.store.flag_incident, inc.id, "page_failed", event)
    return event
