"""Approvals through Slack: the request with buttons in the war room, Slack's signed
interaction callback on the intake (valid, forged, stale), approvers enforced, and UI/CLI
decisions refused when approvers are named and the Prefect API proves nobody."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from firelane.inputs import new_execution
from firelane.loader import parse_runbook
from firelane.models import Execution, Incident, IncidentDraft, Severity
from firelane.store import Store, open_store
from flows.cli import main
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef
from flows.runs.run_runbook import run_runbook_result
from integrations.sandbox import Sandbox
from tests.slack_vector import vector_intake

SECRET = "slack-signing-secret-for-tests"


def _signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    ts = str(at if at is not None else int(time.time()))
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": ts, "x-slack-signature": f"v0={mac}",
            "content-type": "application/x-www-form-urlencoded"}


def _click(user: str, name: str, action: str, approval_id: str,
           channel: str | None = None) -> bytes:
    payload: dict[str, Any] = {"type": "block_actions", "user": {"id": user, "username": name},
                               "actions": [{"action_id": action, "value": approval_id}]}
    if channel:
        payload["channel"] = {"id": channel}
    return urlencode({"payload": json.dumps(payload)}).encode()


def _app(store: Store, monkeypatch: pytest.MonkeyPatch, clock: Any = None) -> Any:
    monkeypatch.setenv("TEST_SLACK_SECRET", SECRET)
    return create_app(store, IntakeConfig(slack_signing_secret=SecretRef(
        env="TEST_SLACK_SECRET")), slack_clock=clock)


def _approval_run(store: Store, approver: str, channel: str) -> tuple[Incident, Execution]:
    """A sandbox execution: open a channel, then a destructive step only `approver` may
    approve."""
    loaded = parse_runbook(f"""version: 1
name: approve-in-slack
steps:
  - {{id: channel, uses: slack.create_channel, with: {{name: {channel}}}}}
  - {{id: fix, uses: test.change, needs: [channel], with: {{name: fixed}},
     approval: {{approvers: ["{approver}"], timeout_seconds: 120, message: Restart web?}}}}
""", "approve.yaml")
    incident = store.declare_incident(IncidentDraft(title="web 5xx", severity=Severity.SEV2,
                                                    service="web"))
    return incident, store.create_execution(new_execution(loaded, incident, {}, sandbox=True))


async def _post(app: Any, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://intake") as client:
        return await client.post("/slack/interactions", content=body, headers=headers)


def test_slack_vendor_signature_vector_and_forgeries(sqlite_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    app, body, headers = vector_intake(open_store(sqlite_url), monkeypatch)
    good = asyncio.run(_post(app, body, headers))
    assert good.status_code == 400 and "not an interaction" in good.text
    forged = asyncio.run(_post(app, body.replace(b"roadrunner", b"coyote"), headers))
    assert forged.status_code == 401
    live = _app(open_store(sqlite_url), monkeypatch)
    stale = asyncio.run(_post(live, _click("U1", "a", "firelane_approve", "x"),
                              _signed(_click("U1", "a", "firelane_approve", "x"),
                                      at=int(time.time()) - 600)))
    assert stale.status_code == 401
    wrong_key = asyncio.run(_post(live, _click("U1", "a", "firelane_approve", "x"),
                                  _signed(_click("U1", "a", "firelane_approve", "x"), "nope")))
    assert wrong_key.status_code == 401
    unknown = asyncio.run(_post(live, _click("U1", "a", "firelane_approve", "x" * 32),
                                _signed(_click("U1", "a", "firelane_approve", "x" * 32))))
    assert unknown.status_code == 404


@pytest.mark.usefixtures("prefect_api")
def test_slack_buttons_decide_and_only_named_approvers_count(
        firelane_env: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(firelane_env)
    incident, execution = _approval_run(store, "U0ALICE", "inc-approve-test")
    app = _app(store, monkeypatch)

    async def scenario() -> tuple[list[httpx.Response], int, dict[str, Any]]:
        flow = asyncio.create_task(run_runbook_result(execution.id))
        buttons: list[dict[str, Any]] = []
        for _ in range(600):
            buttons = [e for m in sandbox.state.dump()["slack_messages"]
                       for b in m.get("blocks") or [] if b.get("type") == "actions"
                       for e in b["elements"]]
            if buttons:
                break
            await asyncio.sleep(0.1)
        assert [b["action_id"] for b in buttons] == ["firelane_approve", "firelane_reject"]
        approval_id = buttons[0]["value"]
        cli = await asyncio.to_thread(main, ["approve", f"INC-{incident.number}", "fix",
                                             "--as", "U0ALICE"])
        replies = []
        channel = next(iter(sandbox.state.dump()["slack_channels"]))
        for user, name in (("U0BOB", "bob"), ("U0ALICE", "alice"), ("U0ALICE", "alice")):
            body = _click(user, name, "firelane_approve", approval_id, channel)
            replies.append(await _post(app, body, _signed(body)))
        return replies, cli, await flow

    (bob, alice, again), cli, result = asyncio.run(scenario())
    assert cli == 1, "a CLI decision cannot prove who made it"
    assert "Not accepted" in bob.json()["text"] and "not among the approvers" in bob.json()["text"]
    assert alice.json()["text"] == "fix approved by <@U0ALICE>"
    assert "Too late" in again.json()["text"]
    assert result["status"] == "succeeded" and statuses_of(store, execution.id)["fix"] == \
        "succeeded"
    [approval] = store.approvals_for(incident.id, "fix")
    assert approval.decided_by == "slack:U0ALICE" and approval.reason == "via Slack by @alice"
    refused = [e for e in store.timeline(incident.id) if e.kind == "approval.refused"]
    assert {e.details["how"] for e in refused} == {"cli", "slack"}
    assert any(e.kind == "approval.slack" for e in store.timeline(incident.id))
    said = [m for m in sandbox.state.dump()["slack_messages"]
            if "fix approved by <@U0ALICE>" in m["text"]]
    assert len(said) == 1, "the decision replaces the request, once"
    [request] = said
    assert not [b for b in request["blocks"] if b["type"] == "actions"], "no buttons left"
    assert request.get("edited") and " at 20" in request["text"] and " UTC" in request["text"]
    assert "test.change" in request["blocks"][0]["text"]["text"], "the request is kept"


def statuses_of(store: Store, execution_id: str) -> dict[str, str]:
    return {k: v.status.value for k, v in store.step_records(execution_id).items()}


@pytest.mark.usefixtures("prefect_api")
def test_approvers_named_by_email_are_matched_through_slack(
        firelane_env: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(firelane_env)
    incident, execution = _approval_run(store, "Bob@Example.com", "inc-email-approval")
    app = _app(store, monkeypatch)

    async def scenario() -> tuple[str, str, dict[str, Any]]:
        flow = asyncio.create_task(run_runbook_result(execution.id))
        approval_id = ""
        for _ in range(600):
            pending = [a for a in store.approvals_for(incident.id, "fix") if a.flow_run_id]
            if pending:
                approval_id = pending[0].id
                break
            await asyncio.sleep(0.1)
        alice = _click("U0ALICE", "alice", "firelane_approve", approval_id)
        bob = _click("U0BOB", "bob", "firelane_approve", approval_id)
        refused = (await _post(app, alice, _signed(alice))).json()["text"]
        accepted = (await _post(app, bob, _signed(bob))).json()["text"]
        return refused, accepted, await flow

    refused, accepted, result = asyncio.run(scenario())
    assert "not among the approvers" in refused
    assert accepted == "fix approved by <@U0BOB>" and result["status"] == "succeeded"
