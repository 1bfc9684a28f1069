"""The intake starting responses: the war room once, resumed after a restart; external
responders claiming and taking over; a SIGKILLed intake; split roles while Prefect is down;
a response that cannot run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from firelane.store import open_store
from flows.intake.app import create_app
from integrations.sandbox import Sandbox
from tests.intake_helpers import AM, TOKEN, am_config, post


def _wait(predicate: Callable[[], bool], seconds: float = 60) -> None:
    async def go() -> None:
        for _ in range(int(seconds * 10)):
            if predicate():
                return
            await asyncio.sleep(0.1)
        raise AssertionError("timed out waiting")
    asyncio.run(go())


@pytest.mark.usefixtures("prefect_api")
def test_alert_to_war_room_once_and_resume_after_restart(
        firelane_env: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from firelane.settings import Settings
    from flows.respond.starter import ResponseStarter

    store = open_store(firelane_env)
    responder = ResponseStarter(store, Settings.from_env(), "declare-incident", sandbox=True)
    app = create_app(store, am_config(monkeypatch), responder)

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            out = [await client.post("/alerts/alertmanager", content=AM, headers=TOKEN)
                   for _ in range(3)]
            while responder.tasks:
                await asyncio.wait(responder.tasks, timeout=60)
            return out

    responses = asyncio.run(scenario())
    assert all(r.status_code == 202 for r in responses)
    [incident] = store.list_incidents()
    [execution] = store.list_executions(incident.id)
    assert store.get_execution(execution.id).status == "succeeded"
    state = sandbox.state.dump()
    assert (len(state["jira_issues"]), len(state["pd_incidents"]),
            len(state["slack_channels"])) == (1, 1, 1)

    # A crash after the 202 and before the response started: an execution left pending.
    from firelane.inputs import new_execution
    from firelane.loader import load_runbook
    from firelane.models import IncidentDraft, Severity

    orphan_incident = store.declare_incident(IncidentDraft(title="orphan", severity=Severity.SEV2,
                                                           service="db"))
    orphan = store.create_execution(new_execution(
        load_runbook(Path("runbooks/declare-incident.yaml")), orphan_incident, {},
        sandbox=True))
    restarted = ResponseStarter(store, Settings.from_env(), "declare-incident", sandbox=True)
    app2 = create_app(store, am_config(monkeypatch), restarted)

    async def restart() -> None:
        async with app2.router.lifespan_context(app2):
            await asyncio.sleep(0)
        assert restarted.started == 1

    asyncio.run(restart())
    assert store.get_execution(orphan.id).status == "succeeded"
    assert len(sandbox.state.dump()["pd_incidents"]) == 2


@pytest.mark.usefixtures("prefect_api")
def test_external_responder_claims_pending_and_takes_over_dead_ones(
        firelane_env: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from firelane.models import utcnow
    from firelane.settings import Settings
    from firelane.store.tables import executions
    from flows.respond.responder import respond_forever
    from flows.respond.starter import ResponseStarter

    store = open_store(firelane_env)
    settings = Settings.from_env()
    intake = ResponseStarter(store, settings, "declare-incident", sandbox=True, external=True)
    app = create_app(store, am_config(monkeypatch), intake)
    [accepted] = post(app, [("/alerts/alertmanager", AM, TOKEN)])
    assert accepted.status_code == 202 and not intake.tasks
    [incident] = store.list_incidents()
    [pending] = store.list_executions(incident.id)
    assert pending.status == "pending"
    ghost = store.create_execution(pending.model_copy(update={"id": "f" * 32}))
    with store.tx() as conn:
        conn.execute(update(executions).where(executions.c.id == ghost.id).values(
            status="running", owner="dead-host:1:x", heartbeat_at=utcnow() - timedelta(hours=1)))

    async def run_worker() -> int:
        stop = asyncio.Event()
        worker = asyncio.create_task(respond_forever(store, settings, stop))
        for _ in range(600):
            if all(store.get_execution(e).status == "succeeded" for e in (pending.id, ghost.id)):
                break
            await asyncio.sleep(0.1)
        stop.set()
        return await worker

    assert asyncio.run(run_worker()) == 2
    state = sandbox.state.dump()
    assert (len(state["jira_issues"]), len(state["pd_incidents"])) == (2, 2)


@pytest.mark.usefixtures("prefect_api")
def test_sigkill_intake_mid_response_then_restart_runs_it_exactly_once(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from bench.common import free_port

    root = Path(__file__).resolve().parent.parent
    config = tmp_path / "intake.yaml"
    config.write_text("sources:\n  alertmanager: {bearer_token: {env: TEST_AM_TOKEN}}\n")
    env = {**os.environ, "PYTHONPATH": str(root), "TEST_AM_TOKEN": "am-secret",
           "FIRELANE_LEASE_SECONDS": "2", "FIRELANE_RUNBOOKS_DIR": str(root / "runbooks")}
    port = free_port()

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--port",
                                 str(port), "--config", str(config), "--sandbox"], cwd=root,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, start_new_session=True)
        assert proc.stdout is not None and "Firelane intake on" in proc.stdout.readline()
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                return proc
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("intake did not start")

    sandbox.faults.add(path="/slack/api/conversations.create", kind="latency", latency=4)
    proc = start()
    try:
        first = httpx.post(f"http://127.0.0.1:{port}/alerts/alertmanager", content=AM,
                           headers=TOKEN, timeout=10)
        assert first.status_code == 202
        store = open_store(firelane_env)
        deadline = time.monotonic() + 60
        while not sandbox.state.pd_incidents or not _claimed(store, "channel"):
            assert time.monotonic() < deadline, "no page, or the channel step never started"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    [incident] = store.list_incidents()
    [execution] = store.list_executions(incident.id)
    assert store.get_execution(execution.id).status == "running"
    restarted = start()
    try:
        deadline = time.monotonic() + 90
        while store.get_execution(execution.id).status != "succeeded":
            assert time.monotonic() < deadline, "the response was not resumed"
            time.sleep(0.2)
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(timeout=30)
    state = sandbox.state.dump()
    assert (len(state["jira_issues"]), len(state["pd_incidents"]), len(state["slack_channels"]),
            len(state["slack_messages"]), len(state["zoom_meetings"])) == (1, 1, 1, 1, 1)
    assert any(e.kind == "step.taken_over" for e in store.timeline(incident.id))


def _claimed(store: Any, step_id: str) -> bool:
    """Whether the only execution's `step_id` is claimed and still running (mid-call)."""
    executions = [e for i in store.list_incidents() for e in store.list_executions(i.id)]
    record = store.step_records(executions[0].id).get(step_id) if executions else None
    return record is not None and not record.finished


@pytest.mark.usefixtures("prefect_api")
def test_split_roles_page_while_prefect_is_down_then_the_flow_runner_finishes(
        firelane_env: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from bench.common import free_port
    from firelane.settings import Settings
    from flows.respond.responder import respond_forever
    from flows.respond.starter import ResponseStarter

    store = open_store(firelane_env)
    settings = Settings.from_env()
    app = create_app(store, am_config(monkeypatch), ResponseStarter(
        store, settings, "declare-incident", sandbox=True, external=True))
    [accepted] = post(app, [("/alerts/alertmanager", AM, TOKEN)])
    [incident] = store.list_incidents()
    [execution] = store.list_executions(incident.id)

    async def run_role(role: str, until: Callable[[], bool]) -> int:
        stop = asyncio.Event()
        worker = asyncio.create_task(respond_forever(store, settings, stop, role=role))
        for _ in range(600):
            if until():
                break
            await asyncio.sleep(0.1)
        stop.set()
        return await worker

    dead_api = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings({PREFECT_API_URL: dead_api}):
        started = asyncio.run(run_role(
            "urgent", lambda: store.get_execution(execution.id).status == "ready"))
    assert started == 1 and len(sandbox.state.dump()["pd_incidents"]) == 1
    records = store.step_records(execution.id)
    assert records["page"].status.value == "succeeded" and "announce" not in records
    assert store.health(90, None).flows_waiting == 1
    assert asyncio.run(run_role(
        "flows", lambda: store.get_execution(execution.id).status == "succeeded")) == 1
    done = store.get_execution(execution.id)
    assert done.status == "succeeded" and done.flow_run_id
    state = sandbox.state.dump()
    assert (len(state["jira_issues"]), len(state["pd_incidents"]), len(state["slack_channels"]),
            len(state["slack_messages"])) == (1, 1, 1, 1)
    assert accepted.json()["alerts"][0]["incident_id"] == incident.id


@pytest.mark.usefixtures("prefect_api")
def test_a_response_that_cannot_run_fails_on_the_timeline(firelane_env: str) -> None:
    from sqlalchemy import update

    from firelane.inputs import new_execution
    from firelane.loader import load_runbook
    from firelane.models import IncidentDraft, Severity
    from firelane.settings import Settings
    from firelane.store.tables import executions
    from flows.respond.starter import ResponseStarter

    store = open_store(firelane_env)
    incident = store.declare_incident(IncidentDraft(title="broken", severity=Severity.SEV2,
                                                    service="db"))
    execution = store.create_execution(new_execution(
        load_runbook(Path("runbooks/declare-incident.yaml")), incident, {}, sandbox=True))
    with store.tx() as conn:
        conn.execute(update(executions).where(executions.c.id == execution.id)
                     .values(runbook_source="steps: [unclosed"))
    responder = ResponseStarter(store, Settings.from_env(), "declare-incident", sandbox=True)

    async def go() -> None:
        responder.start(execution.id)
        await asyncio.wait(responder.tasks, timeout=60)

    asyncio.run(go())
    assert responder.failed == 1
    assert store.get_execution(execution.id).status == "failed"
    [event] = [e for e in store.timeline(incident.id) if e.kind == "execution.failed"]
    assert "declare-incident stopped" in event.summary and event.details["error"]
