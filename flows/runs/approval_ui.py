"""A waiting approval, told on the runs an operator looks at.

The Prefect UI shows a paused subflow only on the subflow's own page, two levels below the run
an operator launched (`runbook` → `run-runbook` → `approve-step`). So the gate tells every run
above the paused one: a log line and a Markdown artifact (`approval-inc-<n>-<step>`) on each,
with a direct link to the paused run's page and its Resume form, and, once decided, the
decision. A Prefect API that refuses is logged and never fails the step: the store, Slack and
`firelane approve` still decide.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate, LogCreate
from prefect.context import FlowRunContext

from firelane.models import Approval
from flows.runs.approval_request import ApprovalRequest, flow_run_url

__all__ = ["artifact_key", "runs_above", "tell_decision", "tell_waiting"]

log = logging.getLogger("firelane.approvals")

_MAX_DEPTH = 8


async def runs_above() -> list[str]:
    """The current flow run and every run above it (a subflow's parent, its parent...),
    nearest first; empty outside a flow run."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return []
    found = [str(ctx.flow_run.id)]
    parent_task = ctx.flow_run.parent_task_run_id
    try:
        async with get_client() as client:
            while parent_task is not None and len(found) < _MAX_DEPTH:
                task_run = await client.read_task_run(parent_task)
                if task_run.flow_run_id is None:
                    break
                found.append(str(task_run.flow_run_id))
                parent_task = (await client.read_flow_run(task_run.flow_run_id)
                               ).parent_task_run_id
    except Exception as exc:
        log.warning("could not read the runs above flow run %s: %s", found[0], exc)
    return found


def artifact_key(request: ApprovalRequest) -> str:
    """`approval-inc-<n>-<step>`: artifact keys take lowercase letters, digits and dashes."""
    return f"approval-{request.incident.lower()}-{request.step_id.replace('_', '-')}"


async def _tell(runs: list[str], line: str, request: ApprovalRequest, body: str,
                description: str) -> None:
    now = datetime.now(UTC)
    try:
        async with get_client() as client:
            await client.create_logs([LogCreate(
                name="firelane.approvals", level=logging.WARNING, message=line, timestamp=now,
                flow_run_id=UUID(run)) for run in runs])
            for run in runs:
                await client.create_artifact(ArtifactCreate(
                    key=artifact_key(request), type="markdown", data=body,
                    description=description, flow_run_id=UUID(run)))
    except Exception as exc:
        log.warning("could not tell runs %s about approval of %s: %s", ", ".join(runs),
                    request.step_id, exc)


async def tell_waiting(runs: list[str], request: ApprovalRequest, paused_run: str) -> None:
    """Log and publish on `runs` that `request` waits, linking the paused run's page."""
    url = flow_run_url(paused_run)
    line = (f"{request.incident}: step {request.step_id} waits for approval: open {url} and "
            f"press Resume (or `firelane approve {request.incident} {request.step_id}`)")
    body = (f"# Waiting for approval: `{request.step_id}`\n\n"
            f"**[Open the approval form (Resume)]({url})**\n\n{request.markdown()}\n\n"
            f"From a shell: `firelane approve {request.incident} {request.step_id}` "
            f"(or `--reject`).")
    await _tell(runs, line, request, body, f"**[Open the approval form (Resume)]({url})** · "
                f"{request.step_id} ({request.uses}) waits for approval")


async def tell_decision(runs: list[str], request: ApprovalRequest, approval: Approval) -> None:
    """Log and publish on `runs` how the approval was decided."""
    when = f"{approval.decided_at:%Y-%m-%d %H:%M:%S} UTC" if approval.decided_at else "-"
    line = (f"{request.incident}: step {request.step_id} {approval.status} by "
            f"{approval.decided_by} at {when}" + (f": {approval.reason}" if approval.reason
                                                  else ""))
    body = f"# Approval of `{request.step_id}`: {approval.status}\n\n{line}\n\n" \
           f"{request.markdown()}"
    await _tell(runs, line, request, body, line)
