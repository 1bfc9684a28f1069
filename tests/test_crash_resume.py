"""SIGKILL the process running a runbook mid-way, resume the same execution, count effects."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firelane.store import open_store
from flows.runs.run_runbook import run_runbook_result
from tests.plugin_actions import calls, effects

ROOT = Path(__file__).resolve().parent.parent

RUNBOOK = """version: 1
name: crash-me
steps:
  - {id: a, uses: test.effect, with: {name: a}}
  - {id: b, uses: test.effect, needs: [a], with: {name: b, after_seconds: 120}}
  - {id: d, uses: test.effect, needs: [a], with: {name: d, before_seconds: 120}}
  - {id: c, uses: test.effect, needs: [b, d], with: {name: c}}
"""


@pytest.mark.usefixtures("prefect_api")
def test_sigkill_mid_runbook_then_resume_exactly_once(
        firelane_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rb = tmp_path / "crash-me.yaml"
    rb.write_text(RUNBOOK)
    incident = tmp_path / "incident.json"
    incident.write_text(json.dumps({"title": "crash", "severity": "SEV2", "service": "web"}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", str(rb), "--incident",
                             str(incident)], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    store = open_store(firelane_env)

    def in_flight() -> bool:
        executions = [e for i in store.list_incidents() for e in store.list_executions(i.id)]
        return bool(executions) and "d" in store.step_records(executions[0].id)

    try:
        deadline = time.monotonic() + 120
        while {"a", "b"} - {name for _, name in effects()} or not in_flight():
            assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "runbook never reached steps b and d"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    [inc] = store.list_incidents()
    [execution] = store.list_executions(inc.id)
    before = store.step_records(execution.id)
    assert {k: v.status.value for k, v in before.items()} == {
        "a": "succeeded", "b": "claimed", "d": "claimed"}

    monkeypatch.setenv("FIRELANE_TEST_SLEEP_SCALE", "0")
    result = asyncio.run(run_runbook_result(execution.id))

    assert result["status"] == "succeeded"
    assert sorted(name for _, name in effects()) == ["a", "b", "c", "d"]
    assert [name for _, name, _ in calls()].count("b") == 2, "b was re-run with its key"
    after = store.step_records(execution.id)
    assert {k: (v.status.value, v.claims) for k, v in after.items()} == {
        "a": ("succeeded", 1), "b": ("succeeded", 2), "d": ("succeeded", 2),
        "c": ("succeeded", 1)}
    assert after["b"].idempotency_key == before["b"].idempotency_key
    taken = [e.step_id or "" for e in store.timeline(inc.id) if e.kind == "step.taken_over"]
    assert sorted(taken) == ["b", "d"]
    assert store.get_execution(execution.id).status == "succeeded"


CHAIN = """version: 1
name: chain
steps:
  - {id: a, uses: test.effect, with: {name: a}}
  - {id: b, uses: test.effect, needs: [a], with: {name: b}}
  - {id: c, uses: test.effect, needs: [b], with: {name: c}}
"""
POINTS = [f"{point}:{step}" for step in "abc" for point in ("claim", "before", "after", "finish")]


@pytest.mark.parametrize("kill_at", POINTS)
@pytest.mark.usefixtures("prefect_api")
def test_sigkill_at_every_step_boundary_and_mid_step(firelane_env: str, tmp_path: Path,
                                                     kill_at: str) -> None:
    """`claim` and `finish` are the boundaries around a step; `before` and `after` are the
    middle of it, before the vendor call and after its effect but before the ledger knows."""
    point, killed_step = kill_at.split(":")
    rb = tmp_path / "chain.yaml"
    rb.write_text(CHAIN)
    incident = tmp_path / "incident.json"
    incident.write_text(json.dumps({"title": "crash", "severity": "SEV2", "service": "web"}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FIRELANE_TEST_KILL_AT": kill_at}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "run", str(rb), "--incident",
                           str(incident)], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stdout.decode() + done.stderr.decode()

    store = open_store(firelane_env)
    [inc] = store.list_incidents()
    [execution] = store.list_executions(inc.id)
    before = store.step_records(execution.id)
    crashed_in_step = point in ("before", "after")
    assert (killed_step in before) == (point != "claim")
    assert (before[killed_step].status.value == "claimed") if crashed_in_step else True

    result = asyncio.run(run_runbook_result(execution.id))

    assert result["status"] == "succeeded"
    assert sorted(name for _, name in effects()) == ["a", "b", "c"], "an effect twice or lost"
    called = [name for _, name, _ in calls()]
    assert {s: called.count(s) for s in "abc"} == {
        s: 2 if (s, point) == (killed_step, "after") else 1 for s in "abc"}
    after = store.step_records(execution.id)
    assert {k: (v.status.value, v.claims) for k, v in after.items()} == {
        s: ("succeeded", 2 if crashed_in_step and s == killed_step else 1) for s in "abc"}
    taken = [e.step_id for e in store.timeline(inc.id) if e.kind == "step.taken_over"]
    assert taken == ([killed_step] if crashed_in_step else [])
    assert store.get_execution(execution.id).status == "succeeded"
    assert _flow_run_state(execution.flow_run_id) == "CRASHED", "the killed run still shows"
    assert [e.kind for e in store.timeline(inc.id)].count("execution.reconciled") == 1


def _flow_run_state(flow_run_id: str | None) -> str:
    from uuid import UUID

    from prefect.client.orchestration import get_client

    async def read() -> str:
        async with get_client() as client:
            run = await client.read_flow_run(UUID(str(flow_run_id)))
            return run.state.type.value if run.state else "NONE"

    return asyncio.run(read())
