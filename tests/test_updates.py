"""Incident updates end to end: posted from the CLI, delivered by the `stakeholder-update`
runbook to the stakeholder channel in the sandbox's Slack, once; a public update waits for its
approval, which shows the rendered text; private incidents never publish; a runbook posts an
update once however often its step runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from firelane.catalog import load_catalog
from firelane.commands import Actor, IncidentCommands
from firelane.errors import ConfigError
from firelane.inputs import new_execution
from firelane.loader import load_valid_runbooks, parse_runbook
from firelane.models import Incident, IncidentDraft, Severity
from firelane.store import Store, open_store
from firelane.updates import Audience, UpdateDraft, UpdateState, UpdateStatus
from flows.cli import main
from flows.runs.run_runbook import run_runbook_result
from integrations.sandbox import Sandbox
from tests.sandbox_fixtures import make_ctx, run_action

RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"
CATALOG = """services:
  web:
    display_name: Web shop
    stakeholder_channel: "#web-status"
    stakeholder_emails: [web-stakeholders@example.com]
    statuspage_component: cmp00website
communications:
  statuspage: true
  public_emails: [status-subscribers@example.com]
  cadence_minutes: {SEV1: 30}
  status_page: {folder: "FOLDER"}
"""
FIRST = """version: 1
name: first-update
steps:
  - id: tell
    uses: incident.update
    with: {status: investigating, message: "We are looking into errors on checkout."}
"""


@pytest.fixture
def comms(firelane_env: str, sandbox: Sandbox, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Store:
    """A store, the shipped runbooks, a catalog with a stakeholder channel in the sandbox."""
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(RUNBOOKS))
    (tmp_path / "services.yaml").write_text(CATALOG.replace("FOLDER", str(tmp_path / "status")))
    asyncio.run(run_action("slack.create_channel", {"name": "web-status"}, make_ctx("setup")))
    return open_store(firelane_env)


def _incident(store: Store, private: bool = False) -> Incident:
    """A SEV1 on web whose runs are sandbox runs (so its updates are delivered there)."""
    incident = store.declare_incident(IncidentDraft(
        title="Checkout errors", severity=Severity.SEV1, service="web", private=private))
    store.create_execution(new_execution(parse_runbook(FIRST, "first.yaml"), incident, {},
                                         sandbox=True))
    return incident


def _status_messages(sandbox: Sandbox) -> list[str]:
    channel = next(c for c in sandbox.state.slack_channels.values()
                   if c["name"] == "web-status")
    return [m["text"] for m in sandbox.state.slack_messages if m["channel"] == channel["id"]]


@pytest.mark.usefixtures("prefect_api")
def test_an_internal_update_reaches_the_stakeholder_channel_once(
        comms: Store, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    incident = _incident(comms)
    rc = main(["update", f"INC-{incident.number}", "--status", "identified", "--message",
               "A bad deploy;", "rolling", "back", "--affected", "web=partial_outage"])
    said = capsys.readouterr().out
    assert rc == 0, said
    assert "update #1" in said and "next due" in said
    [update] = comms.list_updates(incident.id)
    assert (update.state, update.audience) == (UpdateState.PUBLISHED, Audience.INTERNAL)
    assert update.execution_id is not None
    first = asyncio.run(run_runbook_result(update.execution_id))
    again = asyncio.run(run_runbook_result(update.execution_id))
    assert first["status"] == "succeeded", first
    assert again["status"] == "succeeded", again
    [text] = _status_messages(sandbox)
    assert "Identified: A bad deploy; rolling back" in text
    assert "Web shop (partial outage)" in text and "Next update by" in text
    kinds = [e.kind for e in comms.timeline(incident.id)]
    assert kinds.count("incident.update") == 1
    [mail] = sandbox.state.emails
    assert mail["rcpt_tos"] == ["web-stakeholders@example.com"]
    assert mail["subject"] == "[Identified] Checkout errors"


async def _approval_requested(store: Store, incident: Incident) -> str:
    for _ in range(600):
        found = [a for a in store.approvals_for(incident.id, "approve") if a.flow_run_id]
        if found:
            return found[0].message
        await asyncio.sleep(0.1)
    raise AssertionError("the public update's approval was never requested")


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_public_update_waits_for_approval_showing_its_text(
        comms: Store, sandbox: Sandbox, decision: str) -> None:
    incident = _incident(comms)
    cmds = IncidentCommands(comms, load_valid_runbooks(RUNBOOKS)[0])
    posted = cmds.post_update(f"INC-{incident.number}", UpdateDraft(
        status=UpdateStatus.INVESTIGATING, message="Checkout is failing for some customers.",
        audience=Audience.PUBLIC), Actor("ann", "cli"), load_catalog(Path(comms_catalog())))
    assert posted.update.state is UpdateState.AWAITING_APPROVAL
    assert posted.execution_id is not None
    execution_id = posted.execution_id

    async def scenario() -> tuple[str, dict[str, Any]]:
        flow = asyncio.create_task(run_runbook_result(execution_id))
        request = await _approval_requested(comms, incident)
        args = ["approve", f"INC-{incident.number}", "approve", "--as", "bob"]
        if decision == "reject":
            args += ["--reject", "--reason", "wording"]
        assert await asyncio.to_thread(main, args) == 0
        return request, await flow

    request, result = asyncio.run(scenario())
    assert "Checkout is failing for some customers." in request
    assert "[Investigating] Checkout errors" in request
    state = comms.get_update(posted.update.id).state
    page = Path(comms_catalog()).parent / "status" / "index.html"
    if decision == "approve":
        assert state is UpdateState.PUBLISHED
        assert len(_status_messages(sandbox)) == 1
        assert "Checkout is failing for some customers." in page.read_text()
        assert sorted(m["rcpt_tos"][0] for m in sandbox.state.emails) == [
            "status-subscribers@example.com", "web-stakeholders@example.com"]
        [hosted] = sandbox.state.statuspage_incidents.values()
        assert hosted["status"] == "investigating"
        assert hosted["name"] == "Degraded performance of Web shop"
        shown = page.read_text()
        assert "Degraded performance of Web shop" in shown
        assert "Checkout errors" not in shown, "the internal title never reaches the public"
        website = sandbox.state.statuspage_components["cmp00website"]
        assert website["status"] == "degraded_performance"
    else:
        assert state is UpdateState.REJECTED, result
        assert _status_messages(sandbox) == [] and sandbox.state.emails == []
        assert sandbox.state.statuspage_incidents == {}
        assert not page.exists() or "Checkout is failing" not in page.read_text()


def comms_catalog() -> str:
    """The catalog the `comms` fixture wrote (FIRELANE_CATALOG)."""
    import os

    return os.environ["FIRELANE_CATALOG"]


def test_private_incidents_never_publish_and_mistakes_are_clear(comms: Store) -> None:
    cmds = IncidentCommands(comms, load_valid_runbooks(RUNBOOKS)[0])
    catalog = load_catalog(Path(comms_catalog()))
    secret = _incident(comms, private=True)
    with pytest.raises(ConfigError, match="private"):
        cmds.post_update(secret.id, UpdateDraft(status=UpdateStatus.INVESTIGATING, message="x",
                                                audience=Audience.PUBLIC), Actor("a", "cli"),
                         catalog)
    with pytest.raises(ConfigError, match="unknown service"):
        cmds.post_update(secret.id, UpdateDraft(status=UpdateStatus.INVESTIGATING, message="x",
                                                affected={"nope": "degraded"}),
                         Actor("a", "cli"), catalog)
    with pytest.raises(ConfigError, match="stakeholder-update"):
        IncidentCommands(comms, []).post_update(secret.id, UpdateDraft(
            status=UpdateStatus.INVESTIGATING, message="x"), Actor("a", "cli"), catalog)
    assert comms.list_updates(secret.id) == []
    assert main(["update", str(secret.number), "--status", "monitoring", "--message", "x",
                 "--affected", "web=gone"]) != 0


@pytest.mark.usefixtures("prefect_api")
def test_a_runbook_posts_its_update_once(comms: Store) -> None:
    incident = comms.declare_incident(IncidentDraft(
        title="Checkout errors", severity=Severity.SEV2, service="web"))
    execution = comms.create_execution(new_execution(parse_runbook(FIRST, "first.yaml"),
                                                     incident, {}, sandbox=True))
    for _ in range(2):
        result = asyncio.run(run_runbook_result(execution.id))
        assert result["status"] == "succeeded", result
    [update] = comms.list_updates(incident.id)
    assert (update.author, update.via, update.status) == (
        "runbook first-update", "runbook", UpdateStatus.INVESTIGATING)
    assert update.next_due_at is not None
    assert (update.next_due_at - update.created_at).total_seconds() == 3600
    delivery = [e for e in comms.list_executions(incident.id)
                if e.runbook_name == "stakeholder-update"]
    assert [e.id for e in delivery] == [update.execution_id]


def test_the_api_and_slack_post_updates_as_their_verified_users(
        comms: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from flows.intake.app import create_app
    from flows.intake.config import IntakeConfig
    from tests.test_slack_commands import _app, _form, _send

    incident = _incident(comms)
    writer, _ = comms.create_token("ann", "write", "ann")
    reader, _ = comms.create_token("ann-read", "read", "ann")
    app = create_app(comms, IntakeConfig())
    url = f"/api/v1/incidents/INC-{incident.number}/updates"

    async def api() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            def auth(token: str) -> dict[str, str]:
                return {"authorization": f"Bearer {token}"}
            return [
                await client.post(url, json={"status": "identified", "message": "Bad deploy",
                                             "audience": "public"}, headers=auth(writer)),
                await client.post(url, json={"status": "identified", "message": "x"},
                                  headers=auth(reader)),
                await client.post(url, json={"status": "fixed", "message": "x"},
                                  headers=auth(writer)),
                await client.post(url, json={"status": "identified", "message": "x"}),
                await client.get(url, headers=auth(reader))]

    posted, read_only, bad, anonymous, listed = asyncio.run(api())
    assert posted.status_code == 201, posted.text
    assert posted.json()["update"]["state"] == "awaiting_approval"
    assert (read_only.status_code, bad.status_code, anonymous.status_code) == (403, 422, 401)
    assert [u["message"] for u in listed.json()["updates"]] == ["Bad deploy"]

    slack_app = _app(comms, monkeypatch)
    [said, wrong] = _send(slack_app, [
        _form(f"update public monitoring web=major_outage Fix deployed INC-{incident.number}"),
        _form(f"update INC-{incident.number}")])
    assert said["response_type"] == "in_channel" and "update #2" in said["text"], said
    assert "needs a status and a message" in wrong["text"]
    first, second = comms.list_updates(incident.id)
    assert (first.author, first.via, first.verified) == ("ann", "api", True)
    assert (second.author, second.via, second.verified) == ("@ann", "slack", True)
    assert (second.audience, second.affected, second.message) == (
        Audience.PUBLIC, {"web": "major_outage"}, "Fix deployed")


@pytest.mark.usefixtures("prefect_api")
def test_the_prefect_ui_posts_an_update_in_the_same_words_as_slack(comms: Store) -> None:
    from collections.abc import Coroutine
    from typing import cast

    from flows.runs.incident_command import Verb, incident_command

    incident = _incident(comms)

    def ui(value: str) -> Any:
        running = incident_command(f"INC-{incident.number}", Verb.UPDATE, value, "ann",
                                   return_state=True)
        return asyncio.run(cast(Coroutine[Any, Any, Any], running))

    assert ui("public identified web=major_outage Bad deploy found").is_completed()
    refused = ui("fixed it")
    assert refused.is_failed() and "needs a status and a message" in str(refused.message)
    [update] = comms.list_updates(incident.id)
    assert (update.author, update.via, update.verified, update.audience) == (
        "ann", "prefect-ui", False, Audience.PUBLIC)
    assert (update.status, update.affected) == (UpdateStatus.IDENTIFIED, {"web": "major_outage"})
    assert update.state is UpdateState.AWAITING_APPROVAL


def test_updates_that_would_mislead_or_reach_nobody_are_refused(comms: Store) -> None:
    from firelane.catalog import Catalog
    from firelane.models import IncidentStatus

    cmds = IncidentCommands(comms, load_valid_runbooks(RUNBOOKS)[0])
    catalog = load_catalog(Path(comms_catalog()))
    done = _incident(comms)
    comms.set_status(done.id, IncidentStatus.RESOLVED, "ann")
    monitoring = UpdateDraft(status=UpdateStatus.MONITORING, message="Watching it")
    with pytest.raises(ConfigError, match="is resolved: an update saying 'monitoring'"):
        cmds.post_update(done.id, monitoring, Actor("a", "cli"), catalog)
    closing = cmds.post_update(done.id, UpdateDraft(
        status=UpdateStatus.RESOLVED, message="All good"), Actor("a", "cli"), catalog)
    assert closing.update.execution_id == closing.execution_id is not None
    fresh = _incident(comms)
    with pytest.raises(ConfigError, match=r"would reach nobody: .* for web"):
        cmds.post_update(fresh.id, monitoring, Actor("a", "cli"), Catalog())
    with pytest.raises(ConfigError, match="names web"):
        cmds.post_update(fresh.id, UpdateDraft(status=UpdateStatus.MONITORING, message="x",
                                               affected={"payments": "degraded"}),
                         Actor("a", "cli"), catalog)
    assert [u.message for u in comms.list_updates(done.id)] == ["All good"]
    assert comms.list_updates(fresh.id) == []
