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
from flows.runbook_flow import run_runbook
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
    result = asyncio.run(run_runbook(execution.id))

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
