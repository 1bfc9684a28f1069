"""`runbooks/web-5xx-rollback.yaml` end to end: a sample service with a bad release under a real
supervisord, the sandbox for Jira/PagerDuty/Slack/video, the real `run-runbook` flow, and the
approval decided through the CLI (approved: the service recovers; rejected: nothing changes)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firelane.inputs import new_execution
from firelane.loader import load_runbook
from firelane.models import IncidentDraft, Severity
from firelane.store import Store, open_store
from flows.cli import main
from flows.runs.run_runbook import run_runbook_result
from integrations.sandbox import Sandbox
from tests.remediation_fixtures import BAD, GOOD, Service

RUNBOOK = Path(__file__).resolve().parent.parent / "runbooks" / "web-5xx-rollback.yaml"
pytestmark = pytest.mark.usefixtures("prefect_api")


def _catalog(service: Service) -> str:
    return f"""services:
  web:
    jira_project: OPS
    health_url: {service.health_url}
    release_dir: {service.release_dir}
    supervisor: {{program: web, url: "{service.unix_url}"}}
"""


def _run(store: Store, decision: list[str]) -> tuple[str, dict[str, str], str]:
    incident = store.declare_incident(IncidentDraft(title="web 5xx above 20%",
                                                    severity=Severity.SEV1, service="web"))
    execution = store.create_execution(new_execution(load_runbook(RUNBOOK), incident, {},
                                                     sandbox=True))

    async def scenario() -> str:
        flow = asyncio.create_task(run_runbook_result(execution.id))
        for _ in range(600):
            if any(a.flow_run_id for a in store.approvals_for(incident.id, "rollback")):
                break
            await asyncio.sleep(0.1)
        code = await asyncio.to_thread(main, ["approve", f"INC-{incident.number}", "rollback",
                                              *decision])
        assert code == 0
        return str((await flow)["status"])

    status = asyncio.run(scenario())
    records = {k: v.status.value for k, v in store.step_records(execution.id).items()}
    return status, records, incident.id


def test_approved_rollback_restores_health_and_closes_the_loop(
        firelane_env: str, sandbox: Sandbox, service: Service, tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_text(_catalog(service))
    store = open_store(firelane_env)
    status, records, incident_id = _run(store, ["--reason", "deploy 42 broke it", "--as", "ann"])
    assert status == "succeeded", records
    assert records["diagnose"] == "failed" and records["rollback"] == "succeeded"
    assert records["verify"] == records["resolve_page"] == records["outcome"] == "succeeded"
    assert records["resolve_incident"] == "succeeded"
    assert store.get_incident(incident_id).status.value == "resolved", \
        "the page is resolved and the ticket closed: the incident must say so too"
    assert service.current() == GOOD and service.health() == 200
    state = sandbox.state.dump()
    assert [i["status"] for i in state["pd_incidents"].values()] == ["resolved"]
    outcome = [m["text"] for m in state["slack_messages"] if "Rolled back" in m["text"]]
    assert outcome and f"{BAD} → {GOOD}" in outcome[0]
    kinds = [e.kind for e in store.timeline(incident_id)]
    assert {"approval.requested", "approval.approved", "release.switched",
            "supervisor.restarted", "http.probe"} <= set(kinds)


def test_rejected_rollback_changes_nothing(firelane_env: str, sandbox: Sandbox,
                                           service: Service, tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_text(_catalog(service))
    store = open_store(firelane_env)
    status, records, incident_id = _run(store, ["--reject", "--reason", "not now", "--as", "ann"])
    assert records["rollback"] == "skipped" and records["verify"] == "skipped"
    assert records["page"] == "succeeded" and records["resolve_incident"] == "skipped"
    assert store.get_incident(incident_id).status.value == "declared"
    assert service.current() == BAD and service.health() == 500
    rollback = store.step_records(next(
        e.id for e in store.list_executions(incident_id)))["rollback"]
    assert rollback.error == "approval rejected by cli:ann: not now"
    assert status == "failed", "nothing was rolled back: the runbook did not do its job"
    switch = f"{service.release_dir}/current: {BAD} → {GOOD}, then restart web"
    [approval] = store.approvals_for(incident_id, "rollback")
    assert switch in approval.message, "the approver sees the releases it will switch"
    assert any(switch in str(m.get("blocks")) for m in sandbox.state.dump()["slack_messages"])


def _start(store: Store, name: str, inputs: dict[str, object] | None = None,
           ) -> tuple[str, str, int]:
    incident = store.declare_incident(IncidentDraft(title=f"{name} alert",
                                                    severity=Severity.SEV2, service="web"))
    path = RUNBOOK.parent / f"{name}.yaml"
    execution = store.create_execution(new_execution(load_runbook(path), incident,
                                                     dict(inputs or {}), sandbox=True))
    return incident.id, execution.id, incident.number


def test_restart_unhealthy_restarts_then_escalates_when_it_did_not_help(
        firelane_env: str, sandbox: Sandbox, service: Service, tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_text(_catalog(service))
    store = open_store(firelane_env)
    _, execution_id, _ = _start(store, "restart-unhealthy", {"verify_within_seconds": 4})
    result = asyncio.run(run_runbook_result(execution_id))
    records = {k: v.status.value for k, v in store.step_records(execution_id).items()}
    assert result["status"] == "failed"
    assert records["restart"] == "succeeded" and records["verify"] == "failed"
    assert records["escalate"] == "succeeded"
    summaries = [i["title"] for i in sandbox.state.dump()["pd_incidents"].values()]
    assert any("[restart did not help]" in s for s in summaries)
    (service.release_dir / "releases" / BAD / "RELEASE_HEALTH").write_text("ok")
    _, again, _ = _start(store, "restart-unhealthy", {"verify_within_seconds": 20})
    assert asyncio.run(run_runbook_result(again))["status"] == "succeeded"
    assert store.step_records(again)["verify"].status.value == "succeeded", [
        (r.step_id, r.status.value, r.error) for r in store.step_records(again).values()]


def test_shell_remediation_over_ssh_behind_an_approval(
        firelane_env: str, sandbox: Sandbox, sshd: object, tmp_path: Path) -> None:
    import os
    import time

    from tests.test_remediation import _save_target

    _save_target("ops-host-test", sshd)  # type: ignore[arg-type]
    logs = tmp_path / "applogs"
    logs.mkdir()
    for name, age_days in (("old.gz", 30), ("new.gz", 1), ("old.log", 30)):
        (logs / name).write_text("x" * 1000)
        when = time.time() - age_days * 86400
        os.utime(logs / name, (when, when))
    store = open_store(firelane_env)
    incident_id, execution_id, number = _start(store, "shell-remediation", {
        "host": "ops-host-test", "path": str(logs)})

    async def scenario() -> str:
        flow = asyncio.create_task(run_runbook_result(execution_id))
        for _ in range(600):
            if any(a.flow_run_id for a in store.approvals_for(incident_id, "clean")):
                break
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(main, ["approve", f"INC-{number}", "clean"]) == 0
        return str((await flow)["status"])

    assert asyncio.run(scenario()) == "succeeded"
    assert sorted(p.name for p in logs.iterdir()) == ["new.gz", "old.log"]
    clean = store.step_records(execution_id)["clean"]
    assert clean.outputs and str(logs / "old.gz") in clean.outputs["stdout"]


def test_healthy_service_skips_the_rollback_but_still_resolves_the_page(
        firelane_env: str, sandbox: Sandbox, service: Service, tmp_path: Path) -> None:
    """The skip trap of issue 20: the rollback's `if:` is false when the diagnosis finds the
    service healthy; `verify`'s `if: always() ...` keeps that from skipping the page's
    resolution (the run used to say succeeded with the page still open)."""
    import http.server
    import threading

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        catalog = _catalog(service).replace(
            service.health_url, f"http://127.0.0.1:{server.server_address[1]}/healthz")
        (tmp_path / "services.yaml").write_text(catalog)
        store = open_store(firelane_env)
        incident_id, execution_id, _ = _start(store, "web-5xx-rollback")
        result = asyncio.run(run_runbook_result(execution_id))
    finally:
        server.shutdown()
        server.server_close()
    records = {k: v.status.value for k, v in store.step_records(execution_id).items()}
    assert result["status"] == "succeeded", records
    assert records["diagnose"] == "succeeded" and records["rollback"] == "skipped"
    assert records["verify"] == records["resolve_page"] == records["close_ticket"] == \
        records["resolve_incident"] == records["outcome"] == "succeeded"
    assert store.get_incident(incident_id).status.value == "resolved"
    state = sandbox.state.dump()
    assert [i["status"] for i in state["pd_incidents"].values()] == ["resolved"]
    assert any("No rollback was needed: web answered healthy." in m["text"]
               for m in state["slack_messages"])
    assert service.current() == BAD, "nothing was rolled back"
