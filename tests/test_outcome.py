"""An execution's outcome, told truthfully everywhere: `firelane run` as a user runs it (a
subprocess: its exit status and last line), the Prefect flow run and task runs on a real API,
the store, the timeline and the war room in the sandbox's Slack."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from firelane.models import StepStatus, TimelineEvent, utcnow
from firelane.outcome import Outcome, OutcomeKind, SkipCause, decide_outcome
from firelane.runbook import Step
from firelane.store import StepRecord, Store, open_store
from flows.cli import main
from integrations.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent

BROKEN = """version: 1
name: web-broken
steps:
  - {id: channel, uses: slack.create_channel}
  - {id: check, uses: core.fail, needs: [channel], with: {message: health check still red}}
  - {id: restart, uses: test.change, needs: [check], with: {name: restart}}
"""

GUARDED = """version: 1
name: web-restart
steps:
  - {id: channel, uses: slack.create_channel}
  - id: restart
    uses: test.change
    needs: [channel]
    with: {name: restart}%s
  - {id: verify, uses: core.note, needs: [restart], with: {message: verified}}
"""

APPROVAL = "\n    approval: {timeout_seconds: 120, message: Restart web?}"


def _record(step: str, status: StepStatus, error: str | None = None) -> StepRecord:
    return StepRecord(execution_id="e", step_id=step, incident_id="i", idempotency_key=step,
                      status=status, owner=None, lease_expires_at=None, claims=1, attempts=1,
                      outputs=None, error=error, started_at=utcnow(), finished_at=utcnow(),
                      duration_seconds=0.0)


def test_failure_wins_over_rejection_and_rejection_over_block() -> None:
    steps = [Step.model_validate({"id": i, "uses": "core.note", "with": {"message": "m"}})
             for i in ("a", "b", "c", "d")]
    steps[3] = Step.model_validate({"id": "d", "uses": "core.note", "needs": ["c"],
                                    "with": {"message": "m"}})
    events = [TimelineEvent(incident_id="i", kind="guardrail.blocked", summary="", step_id="b",
                            details={"reason": "rate limit", "guardrail": "rate_limit"}),
              TimelineEvent(incident_id="i", kind="approval.rejected", summary="", step_id="c",
                            details={"by": "cli:ann", "reason": "not now"})]
    records = {"a": _record("a", StepStatus.SUCCEEDED),
               "b": _record("b", StepStatus.SKIPPED, "rate limit"),
               "c": _record("c", StepStatus.SKIPPED, "approval rejected by cli:ann: not now"),
               "d": _record("d", StepStatus.SKIPPED, "needs c, which skipped")}
    rejected = decide_outcome(steps, records, events)
    assert (rejected.kind, rejected.step_id, rejected.by, rejected.not_run) == (
        OutcomeKind.REMEDIATION_REJECTED, "c", "cli:ann", ("d",))
    assert [s.cause for s in rejected.skipped] == [SkipCause.GUARDRAIL, SkipCause.APPROVAL,
                                                   SkipCause.NEEDS]
    assert rejected.exit_code == 3 and rejected.execution_status == "failed"
    assert Outcome.from_details(json.loads(json.dumps(rejected.details()))) == rejected
    records["a"] = _record("a", StepStatus.FAILED, "ActionError: boom")
    failed = decide_outcome(steps, records, events)
    assert (failed.kind, failed.step_id, failed.exit_code) == (OutcomeKind.FAILED, "a", 1)
    del records["c"], records["d"]
    records["a"] = _record("a", StepStatus.SUCCEEDED)
    unfinished = decide_outcome(steps, records, events)
    assert (unfinished.kind, unfinished.step_id) == (OutcomeKind.FAILED, "c")
    condition = {**{i: _record(i, StepStatus.SUCCEEDED) for i in "abc"},
                 "d": _record("d", StepStatus.SKIPPED, "condition is false: false")}
    assert decide_outcome(steps, condition, []).kind is OutcomeKind.SUCCEEDED


def test_a_success_names_the_steps_it_let_fail_with_their_first_line() -> None:
    steps = [Step.model_validate({"id": "bridge", "uses": "core.fail", "on_error": "continue",
                                  "with": {"message": "m"}}),
             Step.model_validate({"id": "note", "uses": "core.note", "with": {"message": "m"}})]
    records = {"bridge": _record("bridge", StepStatus.FAILED, "QuotaExhausted: spent\ntrace"),
               "note": _record("note", StepStatus.SUCCEEDED)}
    outcome = decide_outcome(steps, records, [])
    assert outcome.succeeded and outcome.let_pass == (("bridge", "QuotaExhausted: spent\ntrace"),)
    assert outcome.describe() == \
        "succeeded; bridge failed (on_error: continue): QuotaExhausted: spent"
    assert Outcome.from_details(json.loads(json.dumps(outcome.details()))) == outcome
    records["bridge"] = _record("bridge", StepStatus.FAILED, "x" * 500)
    assert decide_outcome(steps, records, []).describe().endswith("x" * 299 + "…")


def test_a_success_names_the_steps_that_fell_back_and_why() -> None:
    steps = [Step.model_validate({"id": "bridge", "uses": "video.create_meeting"}),
             Step.model_validate({"id": "note", "uses": "core.note", "with": {"message": "m"}})]
    records = {"bridge": _record("bridge", StepStatus.SUCCEEDED),
               "note": _record("note", StepStatus.SUCCEEDED)}
    said = "zoom: every Zoom host has reached its limit; the bridge is a Jitsi room instead"
    events = [TimelineEvent(incident_id="i", kind="integration.fallback", summary=said,
                            step_id="bridge"),
              TimelineEvent(incident_id="i", kind="integration.fallback", summary="elsewhere",
                            step_id="on-resolve-hook")]
    outcome = decide_outcome(steps, records, events)
    assert outcome.succeeded and outcome.fell_back == (("bridge", said),)
    assert outcome.describe() == f"succeeded; bridge fell back: {said}"
    assert Outcome.from_details(json.loads(json.dumps(outcome.details()))) == outcome
    records["bridge"] = _record("bridge", StepStatus.FAILED, "RuntimeError: later")
    assert decide_outcome(steps, records, events).fell_back == ()


@pytest.fixture
def store(firelane_env: str, prefect_api: str, sandbox: Sandbox) -> Store:
    return open_store(firelane_env)


def _write(tmp_path: Path, name: str, text: str) -> tuple[Path, Path]:
    runbook = tmp_path / f"{name}.yaml"
    runbook.write_text(text)
    incident = tmp_path / "incident.json"
    incident.write_text(json.dumps({"title": "web 5xx", "severity": "SEV2", "service": "web"}))
    return runbook, incident


def _firelane_run(runbook: Path, incident: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(runbook), "--incident", str(incident),
         "--sandbox"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = proc.communicate(timeout=180)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, err
    return proc.returncode, lines[-1]


def _only_execution(store: Store) -> tuple[Any, Any]:
    [incident] = store.list_incidents()
    [execution] = store.list_executions(incident.id)
    return incident, execution


async def _prefect_states(flow_run_id: str, tasks: int) -> tuple[Any, dict[str, Any]]:
    """The flow run's state and its task runs' (by name), once Prefect has every task run's
    final state (it records them from events, asynchronously)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        for _ in range(300):
            run = await client.read_flow_run(UUID(flow_run_id))
            found = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[run.id])))
            states = {t.name: t.state for t in found if t.name.count(" · ") == 1}
            if len(states) == tasks and all(s is not None and s.is_final()
                                            for s in states.values()):
                return run.state, states
            await asyncio.sleep(0.1)
    raise AssertionError(f"task runs of {flow_run_id} never all finished: {states}")


def _war_room(sandbox: Sandbox) -> list[str]:
    state = sandbox.state.dump()
    [room] = state["slack_channels"]
    return [m["text"] for m in state["slack_messages"] if m["channel"] == room]


def _finished(store: Store, incident_id: str) -> list[TimelineEvent]:
    return [e for e in store.timeline(incident_id) if e.kind == "execution.finished"]


def test_failing_step_fails_the_flow_run_its_task_run_and_the_exit_status(
        store: Store, sandbox: Sandbox, tmp_path: Path) -> None:
    code, last = _finish(_firelane_run(*_write(tmp_path, "web-broken", BROKEN)))
    incident, execution = _only_execution(store)
    flow_state, tasks = asyncio.run(_prefect_states(execution.flow_run_id, 2))
    assert (flow_state.type.value, flow_state.name) == ("FAILED", "Failed")
    assert tasks["check · core.fail"].type.value == "FAILED"
    assert tasks["channel · slack.create_channel"].type.value == "COMPLETED"
    assert code == 1
    assert last.startswith(f"INC-{incident.number} web-broken: failed at step check (core.fail):"
                           " ActionError: health check still red. Fix the cause"), last
    assert execution.status == "failed"
    [event] = _finished(store, incident.id)
    assert (event.details["kind"], event.details["step_id"]) == ("failed", "check")
    assert sum("failed at step check" in m for m in _war_room(sandbox)) == 1


def test_rejected_approval_exits_non_zero_with_its_reason_and_tells_the_war_room_once(
        store: Store, sandbox: Sandbox, tmp_path: Path) -> None:
    proc = _firelane_run(*_write(tmp_path, "web-restart", GUARDED % APPROVAL))
    try:
        deadline = time.monotonic() + 120
        while not [a for i in store.list_incidents() for a in store.approvals_for(i.id)
                   if a.flow_run_id]:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.1)
        incident, execution = _only_execution(store)
        assert main(["approve", f"INC-{incident.number}", "restart", "--reject", "--reason",
                     "not now", "--as", "alice"]) == 0
        code, last = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 3
    assert last == (f'INC-{incident.number} web-restart: remediation rejected by cli:alice '
                    '("not now"); restart (test.change) was not run, nor verify after it. '
                    f"Remediate by hand, or re-run when ready: firelane run "
                    f"{tmp_path}/web-restart.yaml --incident {tmp_path}/incident.json --sandbox")
    flow_state, tasks = asyncio.run(_prefect_states(execution.flow_run_id, 2))
    assert (flow_state.type.value, flow_state.name) == ("FAILED", "Rejected")
    assert (tasks["restart · test.change"].type.value,
            tasks["restart · test.change"].name) == ("COMPLETED", "Skipped")
    assert store.get_execution(execution.id).status == "failed"
    told = [m for m in _war_room(sandbox) if "was not run" in m]
    assert len(told) == 1 and 'rejected by cli:alice ("not now")' in told[0]
    assert [e.details["kind"] for e in _finished(store, incident.id)] == ["remediation_rejected"]


def test_kill_switch_block_exits_non_zero_then_a_clean_run_is_completed(
        store: Store, sandbox: Sandbox, tmp_path: Path) -> None:
    runbook, incident_file = _write(tmp_path, "web-restart", GUARDED % "")
    until = (utcnow() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%MZ")
    assert main(["automation", "pause", "web", "--reason", "deploy freeze", "--as", "carol",
                 "--until", until]) == 0
    code, last = _finish(_firelane_run(runbook, incident_file))
    incident, execution = _only_execution(store)
    assert code == 4
    assert "remediation blocked by the kill switch (automation paused for service web until" \
        in last and "carol: deploy freeze" in last, last
    assert "Lift the pause (firelane automation resume web)" in last
    flow_state, tasks = asyncio.run(_prefect_states(execution.flow_run_id, 2))
    assert (flow_state.type.value, flow_state.name) == ("FAILED", "Blocked")
    [event] = _finished(store, incident.id)
    assert (event.details["kind"], event.details["guardrail"], event.details["scope"]) == (
        "blocked", "kill_switch", "web")
    assert event.details["until"].startswith(until[:13])
    assert sum("blocked by the kill switch" in m for m in _war_room(sandbox)) == 1

    assert main(["automation", "resume", "web"]) == 0
    sandbox.state.reset()
    code, last = _finish(_firelane_run(runbook, incident_file))
    again = next(i for i in store.list_incidents() if i.id != incident.id)
    [clean] = store.list_executions(again.id)
    assert (code, last) == (0, f"INC-{again.number} web-restart: succeeded (execution "
                               f"{clean.id})")
    assert clean.flow_run_id is not None
    flow_state, tasks = asyncio.run(_prefect_states(clean.flow_run_id, 3))
    assert flow_state.type.value == "COMPLETED"
    assert {s.type.value for s in tasks.values()} == {"COMPLETED"}
    assert clean.status == "succeeded"
    assert not [m for m in _war_room(sandbox) if "was not run" in m or "failed" in m]
