"""The `run-runbook` Prefect flow and the helpers that start it.

The flow takes an execution id, never a payload (Prefect stores parameters in plain text): it
loads the runbook snapshot recorded for the execution and runs its DAG, each step as a Prefect
task around `execute_step()`. Re-running the same execution resumes it from the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

from prefect import State, flow, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.states import Completed, Failed
from prefect.utilities.annotations import quote

from firelane.errors import ExecutionFailed, FirelaneError
from firelane.models import ExecutionStatus, StepStatus, TimelineEvent
from firelane.outcome import Outcome
from firelane.redaction import install as install_redaction
from firelane.run_marks import marks_of
from firelane.runbook import Step
from firelane.settings import Settings
from firelane.store import StepRecord, Store, shared_store
from flows.engine import RunContext, build_context, execute_step, run_dag, summarize
from flows.engine.conclude import conclude, headline
from flows.engine.plugins import load_plugins
from flows.runs.api_clients import api_clients
from flows.runs.approvals import request_and_wait
from flows.runs.flow_run_link import record_flow_run_link
from flows.runs.outage import ride_out_outages
from flows.runs.service_lock import prefect_service_lock

__all__ = ["run_execution", "run_runbook", "run_runbook_result", "tag_flow_run"]

log = logging.getLogger("firelane.engine")

_PREPARED: dict[str, RunContext] = {}


@task(name="run-step", task_run_name="{label}", cache_policy=NO_CACHE, persist_result=False,
      retries=0)
async def _step_task(rc: RunContext, step: Step, label: str) -> State[StepRecord]:
    record = await execute_step(rc, step)
    if record.status is StepStatus.FAILED:
        return Failed(data=record, message=f"{step.id} failed: {record.error}")
    if record.status is StepStatus.SKIPPED:
        return Completed(data=record, name="Skipped", message=f"{step.id} skipped: {record.error}")
    return Completed(data=record)


async def _prefect_runner(rc: RunContext, step: Step) -> StepRecord:
    """Run the step as a task run named `<step> · <action>`, Failed when the step failed and
    Completed named `Skipped` when it was skipped; the record comes back either way. The
    context is quoted so Prefect does not walk it looking for futures (that walk was three
    quarters of each step's cost in bench/engine.py), and the name is a parameter because
    `with_options` per step re-reads the function's source."""
    state = await _step_task(  # type: ignore[misc]
        quote(rc), quote(step), f"{step.id} · {step.uses}", return_state=True)
    record = await state.aresult(raise_on_failure=False)
    if isinstance(record, BaseException):
        raise record
    return record  # type: ignore[no-any-return]


async def tag_flow_run(*added: str, name: str | None = None) -> str | None:
    """Tag the current flow run (with its incident, say) and, given `name`, rename it (a run
    created from a deployment otherwise carries a random name); returns its id."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return None
    if not set(added) <= set(ctx.flow_run.tags or []) or (name and ctx.flow_run.name != name):
        async with get_client() as client:
            await client.update_flow_run(ctx.flow_run.id, name=name or ctx.flow_run.name,
                                         tags=sorted({*ctx.flow_run.tags, *added}))
    return str(ctx.flow_run.id)


def _fail_before_start(store: Store, execution_id: str, exc: FirelaneError) -> None:
    """An execution that cannot even start (its runbook snapshot no longer loads here, say,
    because an integration is missing) fails loudly and says why on the timeline."""
    try:
        execution = store.get_execution(execution_id)
    except FirelaneError:
        return
    store.set_execution_status(execution_id, ExecutionStatus.FAILED)
    store.append_events([TimelineEvent(
        incident_id=execution.incident_id, kind="execution.failed", source="runbook",
        execution_id=execution_id, summary=f"Runbook {execution.runbook_name} could not start",
        details={"error": str(exc)})])


async def _reconcile_previous_run(rc: RunContext, previous: str, current: str) -> None:
    """A resumed execution's earlier flow run that Prefect still shows as running lost its
    process (it would have finished the steps this run found to do): mark it Crashed, pointing
    at this run, so the Prefect UI shows no run that will never end."""
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    try:
        async with get_client() as client:
            run = await client.read_flow_run(UUID(previous))
            if run.state is None or run.state.type not in (StateType.RUNNING,
                                                           StateType.PENDING):
                return
            await client.set_flow_run_state(UUID(previous), Crashed(
                message=f"its process stopped; execution resumed by flow run {current}"),
                force=True)
    except Exception as exc:
        log.warning("could not mark flow run %s crashed: %s", previous, exc)
        return
    await asyncio.to_thread(rc.store.append_events, [TimelineEvent(
        incident_id=rc.incident.id, kind="execution.reconciled", source="runbook",
        execution_id=rc.execution.id, summary=f"Flow run {previous} marked Crashed: its "
        f"process stopped and flow run {current} resumed the execution",
        details={"previous_flow_run": previous, "flow_run": current})])


def _artifact_key(rc: RunContext) -> str:
    return f"inc-{rc.incident.number}-{rc.execution.runbook_name}-steps"


def _final_state(rc: RunContext, outcome: Outcome, result: dict[str, Any]) -> State[Any]:
    """Completed for a success; otherwise a FAILED-type state named after the outcome
    (`Failed`, `Rejected`, `Blocked`) whose message is the outcome's headline."""
    if outcome.succeeded:
        return Completed(data=result)
    message = headline(rc, outcome)
    return Failed(name=outcome.state_name, message=message,
                  data=ExecutionFailed(message, result))


@flow(name="run-runbook", log_prints=False, persist_result=False, validate_parameters=False)
async def run_runbook(execution_id: str) -> State[Any]:
    """Run (or resume) one execution of a runbook for an incident.

    Args:
        execution_id: an execution recorded in the incident store (`firelane run` creates one).

    Returns:
        A Completed state for a success, else a FAILED-type state named `Failed`, `Rejected`
        or `Blocked` (`firelane.outcome`). Its result is `{"execution_id", "status",
        "outcome", "steps": [...]}`; called directly, the flow returns it for a success and
        raises `ExecutionFailed` (carrying it) otherwise: use `run_runbook_result()` to get it
        either way. The step table is published as the artifact `inc-<number>-<runbook>-steps`.
    """
    install_redaction()
    settings = Settings.from_env()
    load_plugins(settings)
    store = shared_store(settings.database_url)
    rc = _PREPARED.get(execution_id)
    if rc is None:
        try:
            rc = build_context(store, execution_id, settings)
        except FirelaneError as exc:
            _fail_before_start(store, execution_id, exc)
            raise
        rc.page_takeover_grace = max(0.0, rc.lease_seconds - rc.page_lease_seconds)
    rc.approve = request_and_wait
    rc.service_lock = prefect_service_lock
    tag = f"incident:{rc.incident.id}"
    marks = marks_of([(rc.execution.dry_run, rc.execution.sandbox)])
    flow_run_id = await tag_flow_run(
        tag, f"runbook:{rc.execution.runbook_name}",
        name=f"INC-{rc.incident.number} · {rc.execution.runbook_name}"
        + "".join(f" · {m.upper()}" for m in marks))
    previous_run = rc.execution.flow_run_id
    store.set_execution_status(execution_id, ExecutionStatus.RUNNING, flow_run_id)
    await record_flow_run_link(rc, flow_run_id)
    async with contextlib.AsyncExitStack() as held:
        rc.lock_stack, rc.holds_service_lock = held, False
        await run_dag(rc, _prefect_runner)
    outcome = await conclude(rc)
    if previous_run and flow_run_id and previous_run != flow_run_id:
        await _reconcile_previous_run(rc, previous_run, flow_run_id)
    rows = summarize(rc)
    await acreate_table_artifact(
        table=rows, key=_artifact_key(rc),
        description=f"INC-{rc.incident.number} · {rc.execution.runbook_name} · {outcome.kind}")
    return _final_state(rc, outcome, {
        "execution_id": execution_id, "status": outcome.execution_status.value,
        "outcome": outcome.details(), "steps": rows})


async def run_runbook_result(execution_id: str) -> dict[str, Any]:
    """Run `run-runbook` for an execution and return its result whatever the outcome (a
    subflow when called inside a flow); raises only what the run itself raised (an execution
    that could not start, an unreachable Prefect API)."""
    state: State[Any] = await run_runbook(execution_id, return_state=True)
    result = await state.aresult(raise_on_failure=False)
    if isinstance(result, ExecutionFailed):
        return result.result
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[no-any-return]


async def _on_new_loop(execution_id: str) -> dict[str, Any]:
    async with api_clients():
        return await run_runbook_result(execution_id)


def run_execution(execution_id: str, context: RunContext | None = None) -> dict[str, Any]:
    """Run `run-runbook` for an execution in this process and wait for it, riding out Prefect
    API outages (`flows.runs.outage`: resume when the API returns, fail loudly if it does not).

    `context` is the execution's `RunContext` when the caller already built it (the fast path);
    otherwise it is built here, once, and the flow run and every resume after an outage share
    it. An execution whose context cannot be built runs the flow anyway, which fails it loudly
    (timeline and flow run)."""
    if context is None:
        settings = Settings.from_env()
        try:
            context = build_context(shared_store(settings.database_url), execution_id,
                                    settings)
        except FirelaneError:
            return asyncio.run(_on_new_loop(execution_id))
    _PREPARED[execution_id] = context
    try:
        return asyncio.run(ride_out_outages(context, lambda: _on_new_loop(execution_id)))
    finally:
        _PREPARED.pop(execution_id, None)
