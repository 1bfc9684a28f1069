"""`firelane run` waiting for an approval, as an operator meets it in a terminal: it prints the
request and the `firelane approve` command; Ctrl-C (SIGINT) or SIGTERM stops it cleanly (exit
130 or 143, no traceback, `execution.interrupted` on the timeline, the execution left
`interrupted`); after `firelane approve`, `firelane resume INC-n` finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from firelane.store import open_store
from flows.cli import main

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

RUNBOOK = """version: 1
name: gate-test
steps:
  - {id: first, uses: core.note, with: {message: hello}}
  - id: fix
    uses: test.change
    needs: [first]
    with: {name: "fixed-{{ incident.service }}"}
    approval: {timeout_seconds: 300, message: "Fix {{ incident.service }}?"}
  - {id: after, uses: core.note, needs: [fix], with: {message: done}}
"""


def _paused(api: str, flow_run_id: str | None) -> bool:
    if flow_run_id is None:
        return False
    return bool(httpx.get(f"{api}/flow_runs/{flow_run_id}").json()["state_type"] == "PAUSED")


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_waiting_leaves_it_resumable_and_resume_inc_finishes_it(
        prefect_api: str, firelane_env: str, tmp_path: Path, signum: signal.Signals,
        exit_code: int) -> None:
    (tmp_path / "gate.yaml").write_text(RUNBOOK)
    (tmp_path / "inc.json").write_text(json.dumps(
        {"title": "web down", "severity": "SEV2", "service": "web"}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": prefect_api}
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([str(BIN / "firelane"), "run", str(tmp_path / "gate.yaml"),
                                 "--incident", str(tmp_path / "inc.json")], cwd=ROOT, env=env,
                                stdout=stdout, stderr=stderr)
        store = open_store(firelane_env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                "decide: firelane approve INC-1 fix" in out.read_text()
                and any(_paused(prefect_api, a.flow_run_id)
                        for i in store.list_incidents() for a in store.approvals_for(i.id))):
            assert proc.poll() is None, err.read_text()[-3000:]
            time.sleep(0.25)
        proc.send_signal(signum)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"firelane run did not stop on {signum.name}: "
                        + err.read_text()[-3000:])
    printed, complaints = out.read_text(), err.read_text()
    assert code == exit_code, complaints[-3000:]
    assert "Traceback" not in complaints, complaints[-3000:]
    assert "Fix web?" in printed and "name: `fixed-web`" in printed and "{{" not in printed
    assert complaints.strip().splitlines()[-1].startswith(f"firelane: stopped by {signum.name}")
    assert "`firelane resume INC-1`" in complaints.strip().splitlines()[-1]
    [incident] = store.list_incidents()
    [execution] = store.list_executions(incident.id)
    assert execution.status == "interrupted"
    [stopped] = [e for e in store.timeline(incident.id) if e.kind == "execution.interrupted"]
    assert stopped.details["signal"] == signum.name
    assert store.step_records(execution.id)["fix"].status == "claimed", "nothing recorded"

    assert main(["approve", "INC-1", "fix", "--as", "ann"]) == 0
    resumed = subprocess.run([str(BIN / "firelane"), "resume", "INC-1"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"INC-1 gate-test: succeeded (execution {execution.id})" in resumed.stdout
    records = store.step_records(execution.id)
    assert {k: r.status.value for k, r in records.items()} == {
        "first": "succeeded", "fix": "succeeded", "after": "succeeded"}
    assert store.get_execution(execution.id).status == "succeeded"
    assert main(["resume", "INC-1"]) == 1, "nothing left to resume"
