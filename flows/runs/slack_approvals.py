"""Approval requests in Slack: a message with Approve/Reject buttons in the incident's channel
(the war room the runbook created, else `FIRELANE_PAGE_FAILURE_CHANNEL`). Slack sends the click
to the intake's `POST /slack/interactions`, which verifies the signature and decides through
`flows.runs.approvals.decide(how="slack")`."""

from __future__ import annotations

import logging
from typing import Any

from firelane.lanes import run_blocking
from firelane.models import Approval, TimelineEvent
from firelane.registry import call_action
from firelane.runbook import Step
from flows.engine import RunContext
from flows.engine.notices import notice_context, war_room_channel

__all__ = ["APPROVE", "REJECT", "approval_blocks", "post_approval_request"]

APPROVE, REJECT = "firelane_approve", "firelane_reject"

log = logging.getLogger("firelane.approvals")


def approval_blocks(rc: RunContext, step: Step, approval: Approval) -> list[dict[str, Any]]:
    """Block Kit for the request: what, who may decide, the deadline, two buttons."""
    who = ", ".join(f"<@{a}>" if a.startswith("U") else a for a in approval.approvers)
    text = (f":raised_hand: *Approve `{step.id}` ({step.uses}) for INC-{rc.incident.number}?*"
            f"\n{approval.message}\nApprovers: {who or 'anyone in this channel'} · rejected "
            f"automatically at {approval.deadline:%H:%M} UTC")
    button = {"type": "button", "value": approval.id}
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "block_id": f"firelane-approval-{approval.id}", "elements": [
                {**button, "action_id": APPROVE, "style": "primary",
                 "text": {"type": "plain_text", "text": "Approve"}},
                {**button, "action_id": REJECT, "style": "danger",
                 "text": {"type": "plain_text", "text": "Reject"}}]}]


async def post_approval_request(rc: RunContext, step: Step, approval: Approval) -> str | None:
    """Post the request; the channel it went to, or None (logged and on the timeline)."""
    channel = war_room_channel(rc) or rc.alarm_channel
    summary, details = "", {}
    if not channel:
        summary = (f"approval for {step.id} not posted to Slack: no war-room channel and no "
                   "FIRELANE_PAGE_FAILURE_CHANNEL")
    else:
        ctx = notice_context(rc, step, "approval")
        try:
            sent = await call_action("slack.post_message", {
                "channel": channel, "text": f"Approve {step.id} for INC-{rc.incident.number}?",
                "blocks": approval_blocks(rc, step, approval)}, ctx)
        except Exception as exc:
            summary = f"approval for {step.id} not posted to Slack: {type(exc).__name__}: {exc}"
        else:
            details = {"channel": channel, "ts": getattr(sent, "ts", None)}
            summary = f"approval for {step.id} posted to Slack {channel}"
    if not details:
        log.warning(summary)
    await run_blocking(rc.store.append_events, [TimelineEvent(
        incident_id=rc.incident.id, kind="approval.slack" if details else "approval.slack_failed",
        source="runbook", execution_id=rc.execution.id, step_id=step.id, summary=summary,
        details=details)])
    return channel if details else None
