"""The Prefect server stopped mid-runbook (SIGKILL, restarted on the same port and database).

During a 30 s outage the intake keeps accepting alerts and paging; the step that was running
finishes into the ledger; when the run's Prefect client gives up (`PREFECT_CLIENT_MAX_RETRIES=0`
here, so a 30 s outage outlasts it as a longer one outlasts the default retries), the execution
says so on the timeline and in Slack, waits for the API, resumes from the ledger in a new flow
run and marks the lost one Crashed. An outage longer than `FIRELANE_PREFECT_OUTAGE_SECONDS`
fails the execution loudly, and `firelane resume` finishes it once Prefect is back.
Part of `make test-faults` (marker `storm`: plain `pytest` leaves it out).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port
from firelane.store import Store, open_store
from integrations.sandbox import Sandbox
from tests.pgserver import create_database
from tests.plugin_actions import calls, effects

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = """version: 1
name: outage
steps:
  - {id: room, uses: slack.create_channel, with: {name: "inc-{{ incident.number }}-outage"}}
  - {id: a, uses: test.effect, needs: [room], with: {name: a}}
  - {id: b, uses: test.effect, needs: [a], with: {name: b, after_seconds: 6}}
  - {id: c, uses: test.effect, needs: [b], with: {name: c}}
"""
PAGE = """version: 1
name: page-only
steps:
  - {id: page, uses: pagerduty.trigger, with: {summary: "{{ incident.title }}"}}
"""
TOKEN = "outage-token-0123456789"

pytestmark = [pytest.mark.storm, pytest.mark.timeout(600)]


class PrefectProcess:
    """A Prefect server on a fixed port that can be killed and started again."""

    def __init__(self, database_url: str, home: Path) -> None:
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = {**os.environ, "PREFECT_HOME": str(home),
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
                    "PREFECT_UI_API_URL": self.api}
        self.env.pop("PREFECT_API_URL", None)
        self.log = home / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(self.port)], env=self.env, stdout=open(self.log, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.api}/health", timeout=1):
                    return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, \
                    f"the Prefect server did not start; see {self.log}"
                time.sleep(0.3)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def outage_env(pg_url: str, tmp_path: Path, firelane_env: str, sandbox: Sandbox,
               ) -> Iterator[dict[str, Any]]:
    db = create_database(pg_url, f"outage_{os.urandom(3).hex()}")
    (tmp_path / "home").mkdir()
    server = PrefectProcess(db.replace("+psycopg", "+asyncpg"), tmp_path / "home")
    server.start()
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "page-only.yaml").write_text(PAGE)
    (tmp_path / "outage.yaml").write_text(RUNBOOK)
    (tmp_path / "incident.json").write_text(json.dumps(
        {"title": "outage", "severity": "SEV2", "service": "web"}))
    (tmp_path / "intake.yaml").write_text(
        "default_runbook: page-only\nsources:\n  generic: {bearer_token: {env: OUTAGE_TOKEN}}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": server.api,
           "FIRELANE_RUNBOOKS_DIR": str(tmp_path / "runbooks"), "OUTAGE_TOKEN": TOKEN,
           "FIRELANE_WAKE_ADDRESS": "off", "PREFECT_CLIENT_MAX_RETRIES": "0"}
    try:
        yield {"server": server, "env": env, "tmp": tmp_path, "sandbox": sandbox,
               "store": open_store(firelane_env)}
    finally:
        server.kill()


def _start_run(ctx: dict[str, Any], budget: float) -> subprocess.Popen[str]:
    tmp = ctx["tmp"]
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(tmp / "outage.yaml"), "--sandbox",
         "--incident", str(tmp / "incident.json")], cwd=ROOT, text=True,
        env={**ctx["env"], "FIRELANE_PREFECT_OUTAGE_SECONDS": str(budget)},
        stdout=open(tmp / "run.log", "a"), stderr=subprocess.STDOUT)


def _wait(what: str, condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _execution(store: Store, runbook: str = "outage") -> Any:
    found = [e for i in store.list_incidents() for e in store.list_executions(i.id)
             if e.runbook_name == runbook]
    return found[0] if found else None


def _claimed(store: Store, step: str) -> bool:
    execution = _execution(store)
    return execution is not None and step in store.step_records(execution.id)


def _flow_run_state(api: str, flow_run_id: str) -> str:
    run = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=10).json()
    return str(run["state"]["type"])


def test_prefect_down_30s_intake_pages_and_the_run_resumes(outage_env: dict[str, Any]) -> None:
    ctx, server, sb, store = outage_env, outage_env["server"], outage_env["sandbox"], \
        outage_env["store"]
    intake_port = free_port()
    intake = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--port", str(intake_port), "--sandbox",
         "--config", str(ctx["tmp"] / "intake.yaml")], cwd=ROOT, env=ctx["env"], text=True,
        stdout=subprocess.PIPE, stderr=open(ctx["tmp"] / "intake.log", "w"))  # noqa: SIM115
    try:
        assert intake.stdout is not None
        while "Firelane intake on" not in intake.stdout.readline():
            assert intake.poll() is None, (ctx["tmp"] / "intake.log").read_text()[-3000:]
        run = _start_run(ctx, budget=120)
        _wait("step b to start", lambda: _claimed(store, "b"))
        first_run = _execution(store).flow_run_id
        server.kill()
        down_at = time.monotonic()

        posted = time.monotonic()
        answer = httpx.post(f"http://127.0.0.1:{intake_port}/alerts/generic", timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"},
                            json={"title": "paged while Prefect is down", "severity": "critical",
                                  "service": "api", "fingerprint": "outage-page"})
        assert answer.status_code == 202, answer.text
        _wait("the page", lambda: len(sb.state.pd_incidents) == 1, 20)
        page_seconds = time.monotonic() - posted
        _wait("step b to finish into the ledger",
              lambda: store.step_records(_execution(store).id)["b"].status.value
              == "succeeded", 20)
        assert time.monotonic() - down_at < 30, "the outage ended too early to prove anything"
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        server.start()
        assert run.wait(timeout=180) == 0, (ctx["tmp"] / "run.log").read_text()[-4000:]
        _wait("the intake's response", lambda: _execution(store, "page-only").status
              == "succeeded", 120)
    finally:
        intake.send_signal(signal.SIGTERM)
        intake.wait(timeout=60)

    execution = _execution(store)
    assert execution.status == "succeeded"
    assert sorted(name for _, name in effects()) == ["a", "b", "c"]
    assert sorted(name for _, name, _ in calls()) == ["a", "b", "c"], "a step ran twice"
    kinds = [e.kind for e in store.timeline(execution.incident_id)]
    for kind in ("execution.interrupted", "execution.resuming", "execution.reconciled"):
        assert kinds.count(kind) == 1, kinds
    room = next(iter(sb.state.slack_channels))
    told = [m["text"] for m in sb.state.slack_messages if m["channel"] == room]
    assert any("Prefect API is unreachable" in t for t in told), told
    assert any("Prefect API is back" in t for t in told), told
    assert _flow_run_state(server.api, first_run) == "CRASHED"
    assert _flow_run_state(server.api, execution.flow_run_id) == "COMPLETED"
    assert len(sb.state.pd_incidents) == 1
    print(f"\nPrefect down 30 s: page {page_seconds * 1000:.0f} ms after the alert; the run "
          "resumed from the ledger and finished; the lost flow run marked Crashed")


def test_an_outage_past_the_budget_fails_loudly_and_resume_finishes(
        outage_env: dict[str, Any]) -> None:
    ctx, server, sb, store = outage_env, outage_env["server"], outage_env["sandbox"], \
        outage_env["store"]
    run = _start_run(ctx, budget=2)
    _wait("step b to start", lambda: _claimed(store, "b"))
    server.kill()
    assert run.wait(timeout=120) == 1, (ctx["tmp"] / "run.log").read_text()[-4000:]
    execution = _execution(store)
    assert execution.status == "failed"
    [failed] = [e for e in store.timeline(execution.incident_id)
                if e.kind == "execution.failed"]
    assert f"firelane resume {execution.id}" in failed.summary
    room = next(iter(sb.state.slack_channels))
    assert any("did not come back" in m["text"] for m in sb.state.slack_messages
               if m["channel"] == room)

    server.start()
    resumed = subprocess.run([sys.executable, "-m", "flows.cli", "resume", execution.id],
                             cwd=ROOT, env=ctx["env"], capture_output=True, text=True,
                             timeout=180)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert _execution(store).status == "succeeded"
    assert sorted(name for _, name in effects()) == ["a", "b", "c"]
    assert sorted(name for _, name, _ in calls()) == ["a", "b", "c"]
