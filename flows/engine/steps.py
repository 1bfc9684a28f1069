"""`execute_step()`: the one way any path runs a runbook step.

Claim the step in the ledger, evaluate `if:`, render and type-check its inputs, wait for approval
when the step asks for one, run the action with its idempotency key under `timeout_seconds` and
`retries`, then record the outcome and its timeline events in one transaction. The Prefect flow
wraps it in a task; the fast path calls it directly. Whatever goes wrong ends up as a recorded
outcome on the timeline, never as a step that silently vanished.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from pydantic import BaseModel, ValidationError

from firelane import audit
from firelane.errors import (
    ActionError,
    ActionTimeout,
    FirelaneError,
    GuardrailBlocked,
)
from firelane.lanes import paging_lane, run_blocking, run_lease_call
from firelane.lifecycle import REUSED_ACTIONS
from firelane.links import Link
from firelane.logs import log_context
from firelane.models import StepStatus, TimelineEvent
from firelane.registry import ActionContext, ActionSpec, get_action
from firelane.runbook import Step
from firelane.store import Claim, ClaimOutcome, StepRecord, is_transient, ride_out
from firelane.templating import evaluate_condition
from flows.engine.context import RunContext, template_context
from flows.engine.desk import desk_for
from flows.engine.dry_run import DryMode, dry_mode, mark_dry_run, placeholder_outputs
from flows.engine.guardrails import check_pause, guard
from flows.engine.lifecycle import mover
from flows.engine.page_alarm import raise_page_alarm
from flows.engine.prepare import Ready, prepare, render_inputs

__all__ = ["execute_step", "running_here", "skip_step"]

async def _db(rc: RunContext, fn: Callable[..., Any], *args: Any) -> Any:
    """A ledger call that waits out a store outage for up to three leases (when a responder
    would take the execution over anyway), then raises `StoreUnavailable`."""
    return await ride_out(lambda: run_blocking(fn, *args), give_up_after=3 * rc.lease_seconds)


def _claimer(rc: RunContext, key: str) -> Callable[[str], Any]:
    async def claim(effect: str) -> bool:
        return bool(await _db(rc, rc.store.claim_effect, key, effect))
    return claim


def _releaser(rc: RunContext, key: str) -> Callable[[str], Any]:
    async def release(effect: str) -> None:
        await _db(rc, rc.store.release_effect, key, effect)
    return release


_RUNNING: dict[tuple[str, str], set[str]] = {}
_RUNNING_LOCK = threading.Lock()


def _running_here(rc: RunContext, step: Step) -> frozenset[str]:
    """Owners in this process (any thread) that are running this step now: their lease is
    live, whatever its recorded expiry says."""
    with _RUNNING_LOCK:
        return frozenset(_RUNNING.get((rc.execution.id, step.id), ()))


def running_here(execution_id: str, step_id: str) -> bool:
    """Some owner in this process is running this step now (its lease may look expired when
    its renewal was starved, but it is not dead)."""
    with _RUNNING_LOCK:
        return bool(_RUNNING.get((execution_id, step_id)))


@contextlib.contextmanager
def _running(rc: RunContext, step: Step) -> Iterator[None]:
    key = (rc.execution.id, step.id)
    with _RUNNING_LOCK:
        _RUNNING.setdefault(key, set()).add(rc.owner)
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            owners = _RUNNING.get(key, set())
            owners.discard(rc.owner)
            if not owners:
                _RUNNING.pop(key, None)


def _lease_of(rc: RunContext, step: Step) -> float:
    """A paging step's lease is short (renewed often), so any paging responder can take a
    dead responder's page over in seconds; other steps keep the long lease."""
    return rc.page_lease_seconds if _pages(step.uses) else rc.lease_seconds


async def _claim(rc: RunContext, step: Step,
                 started: list[TimelineEvent] | None = None) -> Claim:
    """Claim the step, retrying while another live worker holds it. A step this run already
    knows finished (its ledger as read at set-up, or recorded since) is done without asking
    the store: an outcome is final, so the claim would only read it back, inside a write
    transaction (a flow run reaching the steps the urgent responder finished took SQLite's
    write lock once for each)."""
    known = rc.records.get(step.id)
    if known is not None and known.finished:
        return Claim(ClaimOutcome.DONE, known)
    lease_seconds = _lease_of(rc, step)
    poll, cap = 0.02, min(1.0, lease_seconds / 4)
    while True:
        pages = _pages(step.uses)
        claim: Claim = await _db(rc, rc.store.claim_step, rc.incident.id, rc.execution.id,
                                 step.id, rc.owner, lease_seconds, _running_here(rc, step),
                                 pages, rc.page_takeover_grace if pages else 0.0, started)
        if claim.outcome is not ClaimOutcome.HELD:
            return claim
        await asyncio.sleep(poll)
        poll = min(cap, poll * 1.5)


async def _keep_lease(rc: RunContext, step: Step) -> None:
    lease_seconds = _lease_of(rc, step)
    while True:
        await asyncio.sleep(lease_seconds / 3)
        await ride_out(lambda: run_lease_call(rc.store.renew_lease, rc.execution.id, step.id,
                                              rc.owner, lease_seconds))


def _link(rc: RunContext, step: Step, spec: ActionSpec | None,
          outputs: dict[str, Any] | None) -> Link | None:
    """What the step created for the incident (its action's declared link), if anything."""
    if outputs is not None and outputs.get("dry_run") is True:
        return None
    url = spec.link_url(outputs) if spec is not None else None
    if spec is None or spec.link is None or url is None:
        return None
    return Link(spec.link, url, rc.execution.id, step.id, rc.execution.sandbox)


async def _finish(rc: RunContext, step: Step, status: StepStatus, events: list[TimelineEvent],
                  outputs: dict[str, Any] | None = None, error: str | None = None,
                  spec: ActionSpec | None = None) -> StepRecord:
    summary = {StepStatus.SUCCEEDED: f"{step.id} succeeded",
               StepStatus.SKIPPED: f"{step.id} skipped: {error}",
               StepStatus.FAILED: f"{step.id} failed: {error}"}[status]
    link = _link(rc, step, spec, outputs)
    record: StepRecord = await _db(
        rc, rc.store.finish_step, rc.execution.id, step.id, status, outputs,
        None if status is StepStatus.SUCCEEDED else error,
        [*events, rc.event(step, f"step.{status.value}", summary, uses=step.uses,
                           outputs=outputs or {}, error=error)], link,
        rc.execution.first_action_at is None)
    if record.status is StepStatus.SUCCEEDED and rc.execution.first_action_at is None:
        rc.execution.first_action_at = record.finished_at
    if link is not None and record.status is StepStatus.SUCCEEDED:
        rc.incident.links = {**rc.incident.links, link.kind: link.url}
    rc.records[step.id] = record
    return record


async def skip_step(rc: RunContext, step: Step, reason: str) -> StepRecord:
    """Record that the planner skipped a step (a step it needs failed or was skipped)."""
    claim = await _claim(rc, step)
    if claim.outcome is ClaimOutcome.DONE:
        return claim.record
    return await _finish(rc, step, StepStatus.SKIPPED, [], error=reason)


async def _attempt(spec: ActionSpec, inputs: BaseModel, ctx: ActionContext,
                   timeout: float | None) -> dict[str, Any]:
    try:
        async with asyncio.timeout(timeout):
            result = await spec.fn(inputs, ctx)
    except TimeoutError as exc:
        raise ActionTimeout(f"timed out after {timeout:g} s") from exc
    if not isinstance(result, spec.outputs):
        try:
            result = spec.outputs.model_validate(result)
        except ValidationError as exc:
            raise ActionError(f"{spec.name} returned outputs that do not fit its model: "
                              f"{exc.errors()[0]['msg']}") from exc
    return result.model_dump(mode="json")


async def _simulate(rc: RunContext, step: Step, spec: ActionSpec, would_send: dict[str, Any],
                    events: list[TimelineEvent]) -> StepRecord:
    """A step that does not act in this dry run (`flows.engine.dry_run`): record what it
    would have sent and placeholder outputs, so the steps that read it still render."""
    outputs = mark_dry_run(placeholder_outputs(spec.outputs), would_send)
    events = [*events, rc.event(step, "step.dry_run", f"{step.id} not run (dry run): would "
                                f"call {step.uses}", uses=step.uses, would_send=would_send)]
    return await _finish(rc, step, StepStatus.SUCCEEDED, events, outputs=outputs, spec=spec)


def _started(rc: RunContext, step: Step, attempt: int, dry_run: bool) -> TimelineEvent:
    return rc.event(step, "step.started", f"{step.id} started ({step.uses}"
                    + (f", attempt {attempt}" if attempt > 1 else "") + ")",
                    uses=step.uses, attempt=attempt, dry_run=dry_run)


async def _run_attempts(rc: RunContext, step: Step, spec: ActionSpec, inputs: BaseModel,
                        events: list[TimelineEvent], noted: bool = False) -> StepRecord:
    would_send = inputs.model_dump(mode="json", by_alias=True)
    mode = dry_mode(rc.execution, spec, would_send)
    if mode is DryMode.SIMULATED:
        return await _simulate(rc, step, spec, would_send, events)
    dry_run = mode is DryMode.ACTION_DRY_RUN
    error = "not attempted"
    record = rc.records[step.id]
    vendor_key = await _vendor_key(rc, step, record.idempotency_key)
    for attempt in range(1, step.retries + 2):
        repeat = attempt > 1 or record.claims > 1 or record.attempts > int(noted)
        ctx = ActionContext(
            incident=rc.incident, execution_id=rc.execution.id, step_id=step.id,
            idempotency_key=vendor_key, attempt=attempt,
            move_incident=None if rc.execution.dry_run else mover(rc, step),
            claim_effect=_claimer(rc, vendor_key), release_effect=_releaser(rc, vendor_key),
            desk=desk_for(rc, step, vendor_key),
            repeat_since=record.started_at if repeat else None,
            first_use=not repeat and vendor_key == record.idempotency_key,
            dry_run=dry_run, sandbox=rc.execution.sandbox,
            service=rc.catalog.get(rc.incident.service),
            credentials=dict(rc.loaded.runbook.credentials),
            shell_allow=tuple(rc.loaded.runbook.shell.allow),
            shell_read_only=tuple(rc.loaded.runbook.shell.read_only),
            shell_env=tuple(rc.loaded.runbook.shell.env),
            kubernetes_allow=rc.loaded.runbook.kubernetes)
        if attempt > 1 or not noted:
            await _db(rc, rc.store.note_attempt, rc.execution.id, step.id, attempt,
                      [*events, _started(rc, step, attempt, dry_run)])
        events = []
        t0 = time.perf_counter()
        try:
            outputs = await _attempt(spec, inputs, ctx, step.timeout_seconds)
        except ActionError as exc:
            error, retryable = f"{type(exc).__name__}: {exc}", exc.retryable
        except Exception as exc:
            error, retryable = f"{type(exc).__name__}: {exc}", True
        else:
            if dry_run:
                outputs = mark_dry_run(outputs, would_send)
            record = await _finish(rc, step, StepStatus.SUCCEEDED, ctx.events, outputs=outputs,
                                   spec=spec)
            audit.page_sent(rc.incident, rc.execution.id, step.id, step.uses, spec.pages,
                            outputs, ctx.dry_run)
            if ctx.action_items:
                await _db(rc, rc.store.add_action_items_once, ctx.action_items)
            return record
        events = ctx.events
        last = attempt > step.retries or not retryable
        if not last:
            events.append(rc.event(step, "step.retrying",
                                   f"{step.id} attempt {attempt} failed: {error}; retrying",
                                   attempt=attempt, error=error,
                                   seconds=round(time.perf_counter() - t0, 3)))
            await asyncio.sleep(step.retry_delay_seconds)
        else:
            break
    return await _finish(rc, step, StepStatus.FAILED, events, error=error)


async def _vendor_key(rc: RunContext, step: Step, own: str) -> str:
    """The step's own key, except in a reopened incident's later execution, where a page,
    ticket or bridge step takes the key its first execution used (same page, not a second)."""
    if rc.incident.reopened == 0 or step.uses not in REUSED_ACTIONS:
        return own
    first = await _db(rc, rc.store.first_vendor_key, rc.incident.id, step.id, rc.execution.id)
    return str(first) if first else own


async def execute_step(rc: RunContext, step: Step) -> StepRecord:
    """Run one step exactly once per execution, whoever calls it and however often.

    A paging step that fails (after its retries, or before its call: bad inputs) raises the
    page alarm once, from the worker that recorded the failure.
    """
    with log_context(incident=f"INC-{rc.incident.number}", execution=rc.execution.id,
                     step=step.id):
        if _pages(step.uses):
            with paging_lane():
                return await _execute_step(rc, step)
        return await _execute_step(rc, step)


_IN_FLIGHT: dict[tuple[str, str], Future[StepRecord | None]] = {}


async def _execute_step(rc: RunContext, step: Step) -> StepRecord:
    """One run of the step per process at a time: a second caller here (the flow run reaching
    a step the fast path is still running with the same context and owner, whose claim would
    succeed) waits for the first run's record instead of calling the vendor again."""
    key = (rc.execution.id, step.id)
    while True:
        with _RUNNING_LOCK:
            first = _IN_FLIGHT.get(key)
            if first is None:
                mine: Future[StepRecord | None] = Future()
                mine.set_running_or_notify_cancel()
                _IN_FLIGHT[key] = mine
        if first is None:
            break
        record = await asyncio.wrap_future(first)
        if record is not None:
            rc.records[step.id] = record
            return record
    result: StepRecord | None = None
    try:
        result = await _claim_and_run(rc, step)
        return result
    finally:
        with _RUNNING_LOCK:
            _IN_FLIGHT.pop(key, None)
        mine.set_result(result)


async def _claim_and_run(rc: RunContext, step: Step) -> StepRecord:
    known = rc.records.get(step.id)
    ready = None if known is not None and known.finished else prepare(rc, step)
    claim = await _claim(rc, step, None if ready is None else [
        _started(rc, step, 1, ready.dry_run)])
    record = rc.records[step.id] = claim.record
    if claim.outcome is ClaimOutcome.DONE:
        return record
    with _running(rc, step):
        record = await _execute_claimed(rc, step, claim, ready)
    if record.status is StepStatus.FAILED and not rc.execution.dry_run \
            and _pages(step.uses):
        await raise_page_alarm(rc, step, record.error or "unknown error")
    return record


def _pages(uses: str) -> bool:
    try:
        return get_action(uses).pages
    except FirelaneError:
        return False


async def _execute_claimed(rc: RunContext, step: Step, claim: Claim,
                           ready: Ready | None) -> StepRecord:
    events: list[TimelineEvent] = []
    if claim.outcome is ClaimOutcome.TAKEN_OVER:
        events.append(rc.event(step, "step.taken_over",
                               f"{step.id} resumed after its previous worker stopped",
                               claims=claim.record.claims))
    lease = asyncio.create_task(_keep_lease(rc, step))
    try:
        if ready is not None:
            return await _run_attempts(rc, step, ready.spec, ready.inputs, events,
                                       noted=claim.attempt_noted)
        context = template_context(rc)
        if step.if_ is not None and not evaluate_condition(
                step.if_, context, f"{step.id}.if"):
            return await _finish(rc, step, StepStatus.SKIPPED, events,
                                 error=f"condition is false: {step.if_}")
        spec = get_action(step.uses)
        rendered, inputs = render_inputs(rc, step, spec, context)
        guarded = spec.destructive and not rc.execution.dry_run
        if guarded:
            await check_pause(rc, step)
        if step.approval is not None and not spec.read_only \
                and not (rc.execution.dry_run and spec.destructive):
            if rc.approve is None:
                raise ActionError("this step needs approval, which needs a Prefect flow run "
                                  "(run it through `firelane run`, not the fast path)")
            approval = await rc.approve(rc, step, rendered)
            if approval.status != "approved":
                return await _finish(rc, step, StepStatus.SKIPPED, events, error=(
                    f"approval {approval.status} by {approval.decided_by}"
                    + (f": {approval.reason}" if approval.reason else "")))
        if guarded:
            await guard(rc, step)
        return await _run_attempts(rc, step, spec, inputs, events)
    except GuardrailBlocked as exc:
        events.append(rc.event(step, "guardrail.blocked", f"{step.id} not run: {exc}",
                               uses=step.uses, reason=str(exc), guardrail=exc.guardrail,
                               scope=exc.scope,
                               until=exc.until.isoformat() if exc.until else None))
        return await _finish(rc, step, StepStatus.SKIPPED, events, error=str(exc))
    except Exception as exc:
        if is_transient(exc):
            raise
        unexpected = "" if isinstance(exc, FirelaneError) else "unexpected "
        return await _finish(rc, step, StepStatus.FAILED, events,
                             error=f"{unexpected}{type(exc).__name__}: {exc}")
    finally:
        lease.cancel()
