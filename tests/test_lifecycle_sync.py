"""The incident lifecycle in step with its PagerDuty page and Jira ticket, from every side:
the CLI, PagerDuty's own webhook, an alert that resolves, a runbook step; and a reopen that
re-triggers the same page and reuses the ticket, channel and bridge."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from firelane.inputs import new_execution
from firelane.loader import load_runbook
from firelane.models import Alert, Execution, Incident, IncidentStatus, Severity
from firelane.store import Store, open_store
from firelane.store.alerts import AlertPolicy
from flows.cli import main
from flows.engine.lifecycle import drain
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef, SourceSettings
from integrations.sandbox import Sandbox

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SHARED = Path("/work/shared/payloads")
RUNBOOK = """\
version: 1
name: war-room
credentials: {jira: default, pagerduty: default, slack: default}
steps:
  - id: ticket
    uses: jira.create_issue
    with: {project: OPS, summary: "{{ incident.title }}"}
  - id: page
    uses: pagerduty.trigger
    with: {summary: "{{ incident.title }}"}
  - id: channel
    uses: slack.create_channel
  - id: bridge
    uses: video.create_meeting
"""
RESOLVING = RUNBOOK.replace("name: war-room", "name: fix-and-resolve") + """\
  - id: unpage
    uses: pagerduty.resolve
    needs: [page, ticket]
    with: {dedup_key: "{{ steps.page.outputs.dedup_key }}"}
  - id: done
    uses: incident.set_status
    needs: [unpage]
    with: {to: resolved, reason: rollback verified}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(tmp_path: Path, text: str = RUNBOOK) -> Incident:
    incident = tmp_path / "incident.json"
    incident.write_text(json.dumps({"title": "Checkout 5xx", "severity": "SEV1",
                                    "service": "checkout"}), encoding="utf-8")
    path = _write(tmp_path, "runbook", text)
    assert main(["run", str(path), "--incident", str(incident), "--sandbox"]) == 0
    store = open_store_env()
    return store.list_incidents()[0]


def open_store_env() -> Store:
    import os

    return open_store(os.environ["FIRELANE_DATABASE_URL"])


def _vendors(sandbox: Sandbox) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    state = sandbox.state.dump()
    return list(state["pd_incidents"].values()), state["jira_issues"]


def _changes(store: Store, incident_id: str) -> list[tuple[str, str, str | None]]:
    return [(e.details["to"], e.details.get("via", ""), e.actor) for e in store.timeline(
        incident_id) if e.kind in ("incident.status", "incident.reopened")]


@pytest.mark.usefixtures("prefect_api")
def test_cli_acknowledge_and_resolve_move_page_and_ticket(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path) -> None:
    incident = _run(tmp_path)
    store = open_store(firelane_env)
    assert main(["incidents", "status", str(incident.number), "acknowledged", "--as",
                 "alice"]) == 0
    [page], issues = _vendors(sandbox)
    assert page["status"] == "acknowledged" and issues["OPS-1"]["status"] == "In Progress"
    assert main(["incidents", "status", str(incident.number), "resolved", "--as", "alice",
                 "--no-report"]) == 0
    [page], issues = _vendors(sandbox)
    assert page["status"] == "resolved" and issues["OPS-1"]["status"] == "Done"
    assert _changes(store, incident.id) == [("acknowledged", "cli", "alice"),
                                            ("resolved", "cli", "alice")]
    assert store.pending_syncs() == []


@pytest.mark.usefixtures("prefect_api")
def test_api_and_prefect_ui_acknowledge_and_resolve_move_page_and_ticket(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path) -> None:
    from flows.runs.incident_command import Verb, incident_command

    incident = _run(tmp_path)
    store = open_store(firelane_env)
    token, _ = store.create_token("oncall", "write", "bob")
    app = create_app(store, IntakeConfig())

    async def patch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            response = await client.patch(f"/api/v1/incidents/INC-{incident.number}",
                                          json={"status": "acknowledged"},
                                          headers={"authorization": f"Bearer {token}"})
        for _ in range(400):
            if len(asyncio.all_tasks()) <= 1:
                break
            await asyncio.sleep(0.05)
        return response
    assert asyncio.run(patch()).status_code == 200
    [page], issues = _vendors(sandbox)
    assert page["status"] == "acknowledged" and issues["OPS-1"]["status"] == "In Progress"
    told = asyncio.run(incident_command(f"INC-{incident.number}", Verb.STATUS, "resolved",
                                        "carol", "fixed"))
    assert told == f"INC-{incident.number}: Incident resolved by carol via prefect-ui: fixed"
    [page], issues = _vendors(sandbox)
    assert page["status"] == "resolved" and issues["OPS-1"]["status"] == "Done"
    assert _changes(store, incident.id) == [("acknowledged", "api", "bob"),
                                            ("resolved", "prefect-ui", "carol")]
    assert store.get_incident(incident.id).commander == "bob"
    assert store.pending_syncs() == []


def _pd_webhook(event_type: str, dedup_key: str, agent: str, at: str) -> bytes:
    data = json.loads((SHARED / "pagerduty_v3_event_data_incident.json").read_text())
    data.update(incident_key=dedup_key, status=event_type.split(".")[1])
    return json.dumps({"event": {"id": "01ABC", "event_type": event_type,
                                 "resource_type": "incident", "occurred_at": at,
                                 "agent": {"summary": agent, "type": "user_reference"},
                                 "client": None, "data": data}}).encode()


def _post(app: Any, body: bytes, secret: str) -> httpx.Response:
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            response = await client.post("/alerts/pagerduty", content=body, headers={
                "x-pagerduty-signature": f"v1={sig}", "content-type": "application/json"})
        for _ in range(400):
            if len(asyncio.all_tasks()) <= 1:
                break
            await asyncio.sleep(0.05)
        return response
    return asyncio.run(go())


@pytest.mark.usefixtures("prefect_api")
def test_pagerduty_webhook_moves_the_incident_that_paged_once(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    incident = _run(tmp_path)
    store = open_store(firelane_env)
    [page], _ = _vendors(sandbox)
    monkeypatch.setenv("TEST_PD_SECRET", "pd-secret")
    app = create_app(store, IntakeConfig(sources={"pagerduty": SourceSettings(
        hmac_secret=SecretRef(env="TEST_PD_SECRET"))}))
    sandbox.state.pd_incidents[page["id"]]["status"] = "acknowledged"
    ack = _pd_webhook("incident.acknowledged", page["incident_key"], "Bob Oncall",
                      "2030-01-01T10:01:44Z")
    assert _post(app, ack, "pd-secret").status_code == 202
    assert _post(app, ack, "pd-secret").status_code == 202
    resolved = _pd_webhook("incident.resolved", page["incident_key"], "Bob Oncall",
                           "2030-01-01T10:30:00Z")
    sandbox.state.pd_incidents[page["id"]]["status"] = "resolved"
    assert _post(app, resolved, "pd-secret").status_code == 202
    asyncio.run(drain(store))
    assert [i.number for i in store.list_incidents()] == [incident.number]
    assert store.get_incident(incident.id).status is IncidentStatus.RESOLVED
    assert store.get_incident(incident.id).commander == "Bob Oncall", \
        "the first to acknowledge, here or at PagerDuty, becomes commander"
    assert _changes(store, incident.id) == [("acknowledged", "pagerduty", "Bob Oncall"),
                                            ("resolved", "pagerduty", "Bob Oncall")]
    [page], issues = _vendors(sandbox)
    assert page["status"] == "resolved" and issues["OPS-1"]["status"] == "Done"
    pd_calls = [e for e in sandbox.state.pd_log_entries if e["type"] in (
        "acknowledge_log_entry", "resolve_log_entry")]
    assert pd_calls == [], "the change came from PagerDuty: nothing is sent back to it"


def _planner(tmp_path: Path) -> Any:
    loaded = load_runbook(_write(tmp_path, "war-room", RUNBOOK))

    def plan(alert: Alert, incident: Incident) -> Execution:
        return new_execution(loaded, incident, {}, sandbox=True, for_responder=True)
    return plan


def _alert(status: str) -> Alert:
    return Alert(source="alertmanager", fingerprint="fp-checkout", status=status,
                 title="Checkout 5xx", severity=Severity.SEV1, service="checkout")


@pytest.mark.usefixtures("prefect_api")
def test_alert_auto_resolve_and_reopen_reuse_page_ticket_channel_bridge(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path) -> None:
    store = open_store(firelane_env)
    policy = AlertPolicy(reopen_window_seconds=600)
    [first] = store.accept_alerts([_alert("firing")], True, policy, _planner(tmp_path))
    assert first.execution_id is not None and main(["resume", first.execution_id]) == 0
    store.accept_alerts([_alert("resolved")], True, policy, _planner(tmp_path))
    assert asyncio.run(drain(store)) == 1
    [page], issues = _vendors(sandbox)
    assert page["status"] == "resolved" and issues["OPS-1"]["status"] == "Done"
    [again] = store.accept_alerts([_alert("firing")], True, policy, _planner(tmp_path))
    assert again.reopened and again.execution_id is not None
    assert main(["resume", again.execution_id]) == 0
    asyncio.run(drain(store))
    pages, issues = _vendors(sandbox)
    state = sandbox.state.dump()
    assert {p["incident_key"] for p in pages} == {page["incident_key"]}
    assert [p["status"] for p in pages if p["status"] != "resolved"] == ["triggered"]
    assert list(issues) == ["OPS-1"] and issues["OPS-1"]["status"] == "To Do"
    assert len(state["slack_channels"]) == 1 and len(state["zoom_meetings"]) == 1
    assert _changes(store, first.incident_id or "") == [("resolved", "alert", "alertmanager"),
                                                        ("declared", "alert", "alertmanager")]


@pytest.mark.usefixtures("prefect_api")
def test_runbook_resolves_page_and_incident(firelane_env: str, sandbox: Sandbox,
                                            tmp_path: Path) -> None:
    incident = _run(tmp_path, RESOLVING)
    store = open_store(firelane_env)
    assert store.get_incident(incident.id).status is IncidentStatus.RESOLVED
    [page], issues = _vendors(sandbox)
    assert page["status"] == "resolved" and issues["OPS-1"]["status"] == "Done"
    assert _changes(store, incident.id) == [("resolved", "runbook", "runbook fix-and-resolve")]


def test_vendor_change_already_made_is_not_recorded_twice(sqlite_url: str) -> None:
    from firelane.models import IncidentDraft

    store = open_store(sqlite_url)
    incident = store.declare_incident(IncidentDraft(title="t", severity=Severity.SEV2,
                                                    service="web"))
    store.set_status(incident.id, IncidentStatus.RESOLVED, "alice", via="cli")
    assert store.follow_vendor(incident.id, IncidentStatus.RESOLVED, "pagerduty", "x") is None
    assert store.follow_vendor(incident.id, IncidentStatus.ACKNOWLEDGED, "pagerduty",
                               "x") is None
    assert _changes(store, incident.id) == [("resolved", "cli", "alice")]


def test_key_times_are_the_incident_own_and_consistent() -> None:
    from datetime import UTC, datetime, timedelta

    from firelane.timeline import Entry, key_times

    t0 = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)
    incident = Incident(title="t", severity=Severity.SEV1, service="web", created_at=at(60))
    entries = [
        Entry(at=at(0), source="alert", kind="alert.started", summary="fired"),
        Entry(at=at(60), source="firelane", kind="incident.declared", summary="declared"),
        Entry(at=at(23), source="pagerduty", kind="resolve_log_entry", summary="pd resolved"),
        Entry(at=at(104), source="pagerduty", kind="acknowledge_log_entry", summary="ack"),
        Entry(at=at(900), source="runbook", kind="step.started", summary="s",
              details={"step_id": "rollback", "uses": "release.rollback"}),
        Entry(at=at(960), source="runbook", kind="step.succeeded", summary="s",
              details={"step_id": "rollback"}),
        Entry(at=at(1000), source="runbook", kind="step.started", summary="s",
              details={"step_id": "verify", "uses": "http.check"}),
        Entry(at=at(1020), source="runbook", kind="step.succeeded", summary="s",
              details={"step_id": "verify"}),
        Entry(at=at(1800), source="firelane", kind="incident.status", summary="resolved",
              details={"to": "resolved", "via": "cli"}),
    ]
    times = key_times(incident, entries)
    assert (times.detected, times.declared, times.acknowledged, times.mitigated,
            times.resolved) == (at(0), at(60), at(104), at(1020), at(1800))
    assert times.time_to_resolve == timedelta(minutes=30)
    early = key_times(incident, [*entries[:3], entries[-1].model_copy(update={"at": at(50)})])
    assert early.time_to_acknowledge is not None and early.time_to_resolve is not None
    assert early.time_to_acknowledge <= early.time_to_resolve


def test_sandbox_drops_resolve_through_another_routing_key(sandbox: Sandbox) -> None:
    base = f"{sandbox.url}/pagerduty/v2/enqueue"
    with httpx.Client(verify=sandbox.ca_file) as client:
        client.post(base, json={"routing_key": "A" * 32, "event_action": "trigger",
                                "dedup_key": "k1", "payload": {
                                    "summary": "s", "source": "h", "severity": "critical"}})
        client.post(base, json={"routing_key": "B" * 32, "event_action": "resolve",
                                "dedup_key": "k1"})
        [page] = sandbox.state.pd_incidents.values()
        assert page["status"] == "triggered"
        made = client.post(f"{sandbox.url}/jira/rest/api/2/issue", json={"fields": {
            "project": {"key": "OPS"}, "summary": "s", "issuetype": {"name": "Incident"}}})
        refused = client.put(f"{sandbox.url}/jira/rest/api/2/issue/{made.json()['key']}",
                             json={"fields": {"status": {"name": "Done"}}})
        assert refused.status_code == 400


@pytest.mark.usefixtures("prefect_api")
def test_a_severity_change_moves_page_urgency_and_ticket_priority(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    incident = _run(tmp_path)
    store = open_store(firelane_env)
    capsys.readouterr()
    assert main(["incidents", "severity", str(incident.number), "SEV3", "--as", "ann"]) == 0
    out = capsys.readouterr().out
    assert "page urgency set to low (SEV3)" in out and "ticket OPS-1 priority set to Medium" \
        in out
    [page], issues = _vendors(sandbox)
    assert page["urgency"] == "low" and issues["OPS-1"]["fields"]["priority"]["name"] == "Medium"
    assert main(["incidents", "severity", str(incident.number), "SEV1", "--as", "ann"]) == 0
    [page], issues = _vendors(sandbox)
    assert page["urgency"] == "high"
    assert issues["OPS-1"]["fields"]["priority"]["name"] == "Highest"
    synced = [e.summary for e in store.timeline(incident.id) if e.kind == "severity.synced"]
    assert len(synced) == 4 and not [e for e in store.timeline(incident.id)
                                     if e.kind == "severity.sync_failed"]


def test_sandbox_jira_refuses_priorities_the_site_lacks(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url, verify=sandbox.ca_file, timeout=10,
                      auth=("a", "b")) as client:
        made = client.post("/jira/rest/api/2/issue", json={"fields": {
            "project": {"key": "OPS"}, "summary": "s", "issuetype": {"name": "Incident"}}})
        key = made.json()["key"]
        bad = client.put(f"/jira/rest/api/2/issue/{key}",
                         json={"fields": {"priority": {"name": "Critical"}}})
        flat = client.put(f"/jira/rest/api/2/issue/{key}", json={"fields": {"priority": "High"}})
        good = client.put(f"/jira/rest/api/2/issue/{key}",
                          json={"fields": {"priority": {"name": "High"}}})
        shown = client.get(f"/jira/rest/api/2/issue/{key}").json()["fields"]["priority"]
    assert (bad.status_code, bad.json()) == (400, {"errorMessages": [], "errors": {
        "priority": "The priority selected is invalid."}})
    assert flat.json()["errors"]["priority"] == \
        "Specify the Priority (id or name) in the string format"
    assert good.status_code == 204 and shown == {"id": "2", "name": "High"}
