"""Approvals as paused subflows.

An approval-gated step runs its own async subflow, `approve-step`, which pauses with
`wait_for_input`: several approvals can wait at once while other branches go on (two pauses in
one flow run kill it), and each shows its own resume form in the Prefect UI. Decisions come from
that form, from the Slack buttons (the intake verifies Slack's signature), from `firelane
approve` (which records the decision and resumes the subflow), or from Firelane's own timer,
which rejects the request at its deadline, before Prefect's pause timeout. The store is the
source of truth: the first decision recorded wins, and records how it was made
(`slack:U123`, `cli:bob`, `prefect-ui:alice`, `firelane`). With `approvers` named, only Slack
can prove who decided, so UI and CLI decisions are refused (on the timeline) unless the Prefect
API requires authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout, NotPausedError
from prefect.flow_runs import apause_flow_run, aresume_flow_run
from prefect.input import RunInput

from firelane import audit
from firelane.errors import ApprovalRefused
from firelane.models import Approval, TimelineEvent, utcnow
from firelane.runbook import Step
from firelane.settings import Settings
from firelane.store import Store, open_store
from flows.engine import RunContext
from flows.engine.notices import notice_context
from flows.runs.approval_request import build_request, flow_run_url
from flows.runs.approval_ui import runs_above, tell_decision, tell_waiting
from flows.runs.slack_approvals import post_approval_request, show_decision

__all__ = [
    "VERIFIED_HOWS",
    "ApprovalDecision",
    "approve_step",
    "check_decider",
    "decide",
    "request_and_wait",
]

_PAUSE_MARGIN_SECONDS = 60
_RESUME_TRIES_SECONDS = 20.0
_SUBFLOW_START_SECONDS = 10.0


class ApprovalDecision(RunInput):
    """The resume form: approve or reject, why, and who you are."""

    approved: bool = False
    reason: str = ""
    decided_by: str = ""


async def _finished(flow_run_id: UUID) -> bool:
    """The paused run is gone for good (crashed, cancelled, finished): nobody to resume."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        state = (await client.read_flow_run(flow_run_id)).state
    return state is not None and state.is_final()


async def _resume(store: Store, approval_id: str, decision: dict[str, Any]) -> bool:
    """Resume the paused subflow, waiting for it to record its run id and reach its pause.
    False when there is nothing to resume (its run ended, e.g. `firelane run` was stopped:
    `firelane resume` then finds the decision in the store)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _RESUME_TRIES_SECONDS
    while loop.time() < give_up:
        approval = store.get_approval(approval_id)
        if approval.flow_run_id is not None:
            try:
                await aresume_flow_run(UUID(approval.flow_run_id), run_input=decision)
                return True
            except NotPausedError:
                if await _finished(UUID(approval.flow_run_id)):
                    return False
            except FlowPauseTimeout:
                return False
        await asyncio.sleep(0.25)
    return False


VERIFIED_HOWS = frozenset({"slack", "token", "api"})


def check_decider(approval: Approval, how: str, by: str, aliases: tuple[str, ...] = ()) -> None:
    """Refuse a decision `approval.approvers` does not allow (Slack user ids, emails or names;
    a Slack decider's email comes in `aliases`). Only a surface that proves who decided counts
    (`VERIFIED_HOWS`): a signed Slack click, or an API token (the CLI's `--token`, the HTTP
    API), whose owner is the decider. The Prefect UI and the CLI without a token prove nobody:
    every Prefect user shares one API credential, and `--as` is a claim."""
    if not approval.approvers:
        return
    if how not in VERIFIED_HOWS:
        raise ApprovalRefused(
            f"{approval.step_id} names approvers ({', '.join(approval.approvers)}), and a "
            f"{how} decision cannot prove who made it: decide with the Slack buttons, or with "
            "your own API token (`firelane approve ... --token`, or the HTTP API)")
    allowed = {a.lower() for a in approval.approvers}
    if not {by.lower(), *(a.lower() for a in aliases)} & allowed:
        raise ApprovalRefused(f"{by} is not among the approvers of {approval.step_id} "
                              f"({', '.join(approval.approvers)})")


def _refused(store: Store, approval: Approval, how: str, by: str, why: str) -> None:
    store.append_events([TimelineEvent(
        incident_id=approval.incident_id, kind="approval.refused", actor=f"{how}:{by}",
        source="runbook", execution_id=approval.execution_id, step_id=approval.step_id,
        summary=f"decision on {approval.step_id} by {how}:{by} refused: {why}",
        details={"how": how, "by": by, "reason": why})])


async def decide(store: Store, approval: Approval, approved: bool, by: str,
                 reason: str = "", how: str = "cli",
                 aliases: tuple[str, ...] = ()) -> tuple[Approval, bool]:
    """Record a decision made through `how` (cli, slack, firelane) and resume the waiting
    subflow. Returns (approval, this call won). Raises `ApprovalRefused` (and records the
    refusal on the timeline) when the approvers do not allow it."""
    if how != "firelane":
        try:
            check_decider(approval, how, by, aliases)
        except ApprovalRefused as exc:
            await asyncio.to_thread(_refused, store, approval, how, by, str(exc))
            raise
    recorded_by = by if how == "firelane" else f"{how}:{by}"
    decided, won = store.decide_approval(approval.id, approved, recorded_by, reason)
    audit.approval_decided(decided, won)
    if won:
        await _resume(store, approval.id, {"approved": approved, "reason": reason,
                                           "decided_by": recorded_by})
    return decided, won


@flow(name="approve-step", log_prints=False, persist_result=False)
async def approve_step(execution_id: str, step_id: str) -> str:
    """Wait for a decision on one step's approval; returns `approved` or `rejected`."""
    store = open_store(Settings.from_env().database_url, migrate=False)
    try:
        approval = store.find_approval(execution_id, step_id)
        ctx = FlowRunContext.get()
        if approval.status == "pending" and ctx is not None and ctx.flow_run is not None:
            store.set_approval_flow_run(approval.id, str(ctx.flow_run.id))
            approval = store.find_approval(execution_id, step_id)
        if approval.status != "pending":
            return approval.status
        for attempt in range(1, 1000):
            remaining = (approval.deadline - utcnow()).total_seconds()
            form = ApprovalDecision.with_initial_data(description=approval.message)
            try:
                answer = await apause_flow_run(
                    wait_for_input=form, key=f"approval-{attempt}", poll_interval=1,
                    timeout=max(1, int(remaining)) + _PAUSE_MARGIN_SECONDS)
            except FlowPauseTimeout:
                audit.approval_decided(*store.decide_approval(
                    approval.id, False, "firelane", "Prefect pause timed out"))
                break
            approval = store.find_approval(execution_id, step_id)
            if approval.status != "pending":
                break
            by = answer.decided_by or "anonymous"
            try:
                check_decider(approval, "prefect-ui", by)
            except ApprovalRefused as exc:
                _refused(store, approval, "prefect-ui", by, str(exc))
                continue
            audit.approval_decided(*store.decide_approval(
                approval.id, answer.approved, f"prefect-ui:{by}", answer.reason))
            break
        return store.find_approval(execution_id, step_id).status
    finally:
        store.close()


async def _expire(store: Store, approval: Approval, timeout: float) -> None:
    delay = (approval.deadline - utcnow()).total_seconds()
    await asyncio.sleep(max(0.0, delay))
    await decide(store, approval, False, "firelane", f"no decision within {timeout:g} s",
                 how="firelane")


async def _paused_run(store: Store, approval_id: str, previous: str | None,
                      waiting: asyncio.Task[str]) -> str | None:
    """The flow run id the new `approve-step` subflow records (None if it ends or is slow)."""
    for _ in range(int(_SUBFLOW_START_SECONDS / 0.1)):
        run = (await asyncio.to_thread(store.get_approval, approval_id)).flow_run_id
        if run is not None and run != previous:
            return run
        if waiting.done():
            return None
        await asyncio.sleep(0.1)
    return None


async def request_and_wait(rc: RunContext, step: Step, rendered: dict[str, Any]) -> Approval:
    """The engine's approval gate: render and open the request, run the subflow, tell the
    runs above it and Slack where to decide, enforce the deadline, then show the decision."""
    spec = step.approval
    assert spec is not None
    runs = await runs_above()
    links = {"incident run": runs[-1]} if runs else {}
    deadline = utcnow() + timedelta(seconds=spec.timeout_seconds)
    request = build_request(rc, step, rendered, deadline, links)
    approval = await asyncio.to_thread(rc.store.request_approval, Approval(
        incident_id=rc.incident.id, execution_id=rc.execution.id, step_id=step.id,
        approvers=spec.approvers, message=request.markdown(), deadline=deadline))
    if approval.status != "pending":
        return approval
    request = replace(request, deadline=approval.deadline)
    timer = asyncio.create_task(_expire(rc.store, approval, spec.timeout_seconds))
    waiting = asyncio.create_task(approve_step.with_options(
        flow_run_name=f"approve {step.id} · INC-{rc.incident.number}",
    )(rc.execution.id, step.id))
    try:
        paused = await _paused_run(rc.store, approval.id, approval.flow_run_id, waiting)
        if paused is not None:
            request = replace(request, links={**request.links,
                                               "approval form": flow_run_url(paused)})
        await post_approval_request(rc, step, approval, request)
        if paused is not None and runs:
            await tell_waiting(runs, request, paused)
        await waiting
    finally:
        for pending in (timer, waiting):
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
    decided = await asyncio.to_thread(rc.store.find_approval, rc.execution.id, step.id)
    if decided.status != "pending":
        await show_decision(rc.store, decided, notice_context(rc, step, "approval-decided"))
        if runs:
            await tell_decision(runs, request, decided)
    return decided
