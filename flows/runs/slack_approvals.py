"""Approval requests in Slack: a message with Approve/Reject buttons in the incident's channel
(the war room the runbook created, else `FIRELANE_PAGE_FAILURE_CHANNEL`). Slack sends the click
to the intake's `POST /slack/interactions`, which verifies the signature and decides through
`flows.runs.approvals.decide(how="slack")`. Once decided, however (Slack, the Prefect UI, the
CLI, the deadline), every message that asked is replaced (`chat.update`) by the request and the
decision, without buttons, so nobody clicks a question already answered."""

from __future__ import annotations

import logging
from typing import Any

from firelane.lanes import run_blocking
from firelane.models import Approval, TimelineEvent
from firelane.registry import ActionContext, call_action
from firelane.runbook import Step
from firelane.store import Store
from flows.engine import RunContext
from flows.engine.notices import notice_context, war_room_channel
from flows.runs.approval_request import ApprovalRequest

__all__ = ["APPROVE", "REJECT", "approval_blocks", "decided_blocks", "decided_by_text",
           "post_approval_request", "show_decision"]

APPROVE, REJECT = "firelane_approve", "firelane_reject"

SECTION_TEXT_MAX = 3000  # https://api.slack.com/reference/block-kit/blocks#section: text ≤ 3000

log = logging.getLogger("firelane.approvals")

_PATHS = {"cli": "firelane approve", "prefect-ui": "Prefect UI"}


def _fit(text: str) -> str:
    return text if len(text) <= SECTION_TEXT_MAX else text[:SECTION_TEXT_MAX - 1] + "…"


def approval_blocks(request: ApprovalRequest, approval: Approval) -> list[dict[str, Any]]:
    """Block Kit for the request: what it will touch, who may decide, two buttons."""
    button = {"type": "button", "value": approval.id}
    return [{"type": "section", "text": {"type": "mrkdwn", "text": _fit(request.slack())}},
            {"type": "actions", "block_id": f"firelane-approval-{approval.id}", "elements": [
                {**button, "action_id": APPROVE, "style": "primary",
                 "text": {"type": "plain_text", "text": "Approve"}},
                {**button, "action_id": REJECT, "style": "danger",
                 "text": {"type": "plain_text", "text": "Reject"}}]}]


def decided_by_text(approval: Approval) -> str:
    """Who decided, as Slack shows it: a Slack user as a mention, others with their path."""
    by = approval.decided_by or "?"
    how, _, who = by.partition(":")
    if how == "slack" and who:
        return f"<@{who}>"
    if who:
        return f"{who} ({_PATHS.get(how, how)})"
    return "Firelane (no decision in time)" if by == "firelane" else by


def decided_blocks(approval: Approval, request_text: str) -> tuple[str, list[dict[str, Any]]]:
    """The decided message: the request as it was asked, then the decision; no buttons."""
    mark = ":white_check_mark:" if approval.status == "approved" else ":no_entry:"
    when = f"{approval.decided_at:%Y-%m-%d %H:%M:%S} UTC" if approval.decided_at else ""
    said = (f"{approval.step_id} {approval.status} by {decided_by_text(approval)}"
            + (f" at {when}" if when else "") + (f": {approval.reason}" if approval.reason
                                                 else ""))
    return said, [{"type": "section", "text": {"type": "mrkdwn", "text": _fit(request_text)}},
                  {"type": "context", "elements": [{"type": "mrkdwn",
                                                    "text": _fit(f"{mark} *{said}*")}]}]


async def post_approval_request(rc: RunContext, step: Step, approval: Approval,
                                request: ApprovalRequest) -> str | None:
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
                "blocks": approval_blocks(request, approval)}, ctx)
        except Exception as exc:
            summary = f"approval for {step.id} not posted to Slack: {type(exc).__name__}: {exc}"
        else:
            details = {"channel": channel, "ts": getattr(sent, "ts", None),
                       "approval_id": approval.id, "text": _fit(request.slack())}
            summary = f"approval for {step.id} posted to Slack {channel}"
    if not details:
        log.warning(summary)
    await run_blocking(rc.store.append_events, [TimelineEvent(
        incident_id=rc.incident.id, kind="approval.slack" if details else "approval.slack_failed",
        source="runbook", execution_id=rc.execution.id, step_id=step.id, summary=summary,
        details=details)])
    return channel if details else None


async def show_decision(store: Store, approval: Approval, ctx: ActionContext) -> int:
    """Replace every Slack message that asked for `approval` with its decision (no buttons);
    how many were updated. A refusal is logged: the decision stands."""
    from integrations.slack.actions import update_message

    asked = [e.details for e in await run_blocking(store.timeline, approval.incident_id)
             if e.kind == "approval.slack" and e.execution_id == approval.execution_id
             and e.step_id == approval.step_id and e.details.get("ts")]
    updated = 0
    for where in asked:
        said, blocks = decided_blocks(approval, str(where.get("text") or approval.message))
        try:
            await update_message(str(where["channel"]), str(where["ts"]), said, blocks, ctx)
        except Exception as exc:
            log.warning("could not mark the Slack request for %s decided (%s %s): %s",
                        approval.step_id, where["channel"], where["ts"], exc)
        else:
            updated += 1
    return updated
