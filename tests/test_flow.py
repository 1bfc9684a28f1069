"""The run-runbook flow on a real Prefect API: parallelism, tags, artifact, approvals."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import Any
from uuid import UUID

import pytest

from firelane.models import Severity
from firelane.store import Store, open_store
from flows.cli import main
from flows.runs.run_runbook import run_execution, run_runbook_result
from tests.helpers import prepare, statuses, step_events
from tests.plugin_actions import effects

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def fl_store(firelane_env: str) -> Store:
    return open_store(firelane_env)


def test_parallel_steps_overlap_and_run_is_tagged_with_artifact(fl_store: Store) -> None:
    rc = prepare(fl_store, """version: 1
name: parallel-four
steps:
  - {id: w1, uses: core.wait, with: {seconds: 0.5}}
  - {id: w2, uses: core.wait, with: {seconds: 0.5}}
  - {id: w3, uses: core.wait, with: {seconds: 0.5}}
  - {id: w4, uses: core.wait, with: {seconds: 0.5}}
  - {id: done, uses: core.note, needs: [w1, w2, w3, w4], with: {message: all waited}}
""")
    result = asyncio.run(run_runbook_result(rc.execution.id))
    assert result["status"] == "succeeded"
    recs = fl_store.step_records(rc.execution.id)
    waits = [recs[f"w{i}"] for i in range(1, 5)]
    finished = [r.finished_at for r in waits if r.finished_at is not None]
    assert len(finished) == 4
    assert max(r.started_at for r in waits) < min(finished)
    assert recs["done"].started_at >= max(finished)

    expected_tasks = sorted([f"w{i} · core.wait" for i in range(1, 5)] + ["done · core.note"])

    async def read_back() -> tuple[Any, Any, Any]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterKey,
            FlowRunFilter,
            FlowRunFilterTags,
        )

        async with get_client() as client:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"incident:{rc.incident.id}"])))
            tasks: list[Any] = []
            for _ in range(300):
                tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                    id={"any_": [r.id for r in runs]}))
                if sorted(t.name for t in tasks) == expected_tasks:
                    break
                await asyncio.sleep(0.1)
            arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"inc-{rc.incident.number}-parallel-four-steps"])))
            return runs, tasks, arts

    runs, tasks, arts = asyncio.run(read_back())
    assert [r.name for r in runs] and runs[0].state.is_completed()
    assert {f"incident:{rc.incident.id}", "runbook:parallel-four"} <= set(runs[0].tags)
    assert sorted(t.name for t in tasks) == expected_tasks, (
        "Prefect records task runs from events, asynchronously: after 30 s it still lacks some")
    table = json.loads(arts[0].data) if isinstance(arts[0].data, str) else arts[0].data
    assert len(arts) == 1 and [row["status"] for row in table] == ["succeeded"] * 5
    execution = fl_store.get_execution(rc.execution.id)
    assert execution.status == "succeeded" and execution.flow_run_id == str(runs[0].id)


def test_three_approvals_wait_at_once(fl_store: Store) -> None:
    rc = prepare(fl_store, """version: 1
name: approvals
steps:
  - {id: by_ui, uses: test.change, with: {name: ui}, approval: {timeout_seconds: 120}}
  - {id: by_cli, uses: test.change, with: {name: cli}, approval: {timeout_seconds: 120}}
  - {id: nobody, uses: test.change, with: {name: late}, approval: {timeout_seconds: 4}}
  - {id: meanwhile, uses: core.wait, with: {seconds: 0.1}}
  - {id: went_on, uses: core.note, needs: [meanwhile], with: {message: other branches go on}}
""", severity=Severity.SEV1)

    async def scenario() -> dict[str, Any]:
        from prefect.flow_runs import aresume_flow_run

        flow = asyncio.create_task(run_runbook_result(rc.execution.id))
        pending: dict[str, Any] = {}
        for _ in range(600):
            pending = {a.step_id: a for a in fl_store.approvals_for(rc.incident.id)
                       if a.flow_run_id is not None}
            if {"by_ui", "by_cli"} <= set(pending):
                break
            await asyncio.sleep(0.1)
        assert {"by_ui", "by_cli"} <= set(pending), "approval subflows never started"
        assert fl_store.step_records(rc.execution.id)["went_on"].status.value == "succeeded"
        for _ in range(100):
            try:
                await aresume_flow_run(UUID(pending["by_ui"].flow_run_id), run_input={
                    "approved": True, "reason": "looks right", "decided_by": "alice"})
                break
            except Exception:
                await asyncio.sleep(0.2)
        cli = ["approve", f"INC-{rc.incident.number}", "by_cli", "--reject", "--reason",
               "not during peak", "--as", "bob"]
        assert await asyncio.to_thread(main, cli) == 0
        assert await asyncio.to_thread(main, cli) == 1, "a second decision must be refused"
        return await flow

    result = asyncio.run(scenario())
    assert result["status"] == "failed", "a rejected remediation is not the runbook's success"
    assert (result["outcome"]["kind"], result["outcome"]["step_id"], result["outcome"]["by"]) \
        == ("remediation_rejected", "by_cli", "cli:bob")
    assert statuses(rc) == {"by_ui": "succeeded", "by_cli": "skipped", "nobody": "skipped",
                            "meanwhile": "succeeded", "went_on": "succeeded"}
    recs = fl_store.step_records(rc.execution.id)
    assert recs["by_cli"].error == "approval rejected by cli:bob: not during peak"
    assert recs["nobody"].error == "approval rejected by firelane: no decision within 4 s"
    decided = {a.step_id: a for a in fl_store.approvals_for(rc.incident.id)}
    assert (decided["by_ui"].status, decided["by_ui"].decided_by) == ("approved",
                                                                      "prefect-ui:alice")
    assert [name for _, name in effects()] == ["ui"]
    assert recs["went_on"].finished_at < decided["by_ui"].decided_at  # type: ignore[operator]
    kinds = [e.kind for e in fl_store.timeline(rc.incident.id)]
    assert kinds.count("approval.requested") == 3
    assert {"approval.approved", "approval.rejected"} <= set(kinds)
    assert step_events(fl_store.timeline(rc.incident.id), "by_ui")[-1] == "step.succeeded"


def test_execution_that_cannot_start_fails_loudly(fl_store: Store) -> None:
    from firelane.errors import RunbookValidationError
    from firelane.models import Execution

    rc = prepare(fl_store, "version: 1\nname: t\nsteps: [{id: a, uses: core.note, "
                           "with: {message: m}}]\n")
    broken = fl_store.create_execution(Execution(
        incident_id=rc.incident.id, runbook_name="gone", runbook_hash="0" * 64,
        runbook_source="version: 1\nname: gone\nsteps: [{id: a, uses: ghost.action}]\n"))
    with pytest.raises(RunbookValidationError, match=r"no action named 'ghost\.action'"):
        asyncio.run(run_runbook_result(broken.id))
    assert fl_store.get_execution(broken.id).status == "failed"
    failed = [e for e in fl_store.timeline(rc.incident.id) if e.kind == "execution.failed"]
    assert len(failed) == 1 and "ghost.action" in failed[0].details["error"]


def test_runs_on_fresh_loops_share_one_tls_context_for_the_prefect_api(
        fl_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        load(self, *args, **kwargs)

    text = """version: 1
name: tls-once
steps:
  - {id: a, uses: core.note, with: {message: one}}
  - {id: b, uses: core.note, needs: [a], with: {message: two}}
"""
    first = prepare(fl_store, text)
    assert run_execution(first.execution.id)["status"] == "succeeded"
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    runs = [prepare(fl_store, text) for _ in range(2)]
    results = [run_execution(rc.execution.id) for rc in runs]
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    assert built == [], f"{len(built)} TLS contexts built for two flow runs"
    flow_runs = {fl_store.get_execution(rc.execution.id).flow_run_id for rc in runs}
    assert None not in flow_runs and len(flow_runs) == 2


def test_a_step_that_fails_by_design_is_logged_without_a_stray_traceback(
        fl_store: Store) -> None:
    rc = prepare(fl_store, """version: 1
name: fails-by-design
steps:
  - {id: probe, uses: core.fail, with: {message: upstream down}, on_error: continue}
  - {id: after, uses: core.note, needs: [probe], with: {message: went on}}
""")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    task_runs = logging.getLogger("prefect.task_runs")
    task_runs.addHandler(keep)
    try:
        run_execution(rc.execution.id)
    finally:
        task_runs.removeHandler(keep)
    text = "\n".join(logging.Formatter().format(r) for r in seen if r.levelno >= logging.ERROR)
    assert "probe failed: ActionError: upstream down" in text, text
    assert "NoneType: None" not in text
    assert "StepRecord(probe of execution" in text and "idempotency_key" not in text
