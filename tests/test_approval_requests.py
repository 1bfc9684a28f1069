"""An approval request an operator can find and judge: rendered (the exact argv, no `{{`) in
the store, the Prefect resume form and Slack; told on the run above the paused subflow (a log
line and an artifact linking its page); and, once decided, the Slack request replaced by the
decision without buttons (the sandbox's `chat.update` refuses what Slack refuses)."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import flow

from firelane.inputs import new_execution
from firelane.loader import parse_runbook
from firelane.models import IncidentDraft, Severity
from firelane.store import open_store
from flows.cli import main
from flows.runs.run_runbook import run_runbook_result
from integrations.sandbox import Sandbox

RUNBOOK = """version: 1
name: clean-disk
inputs:
  path: {type: string, default: /var/log/app}
  days: {type: integer, default: 7}
shell: {allow: [find]}
steps:
  - {id: channel, uses: slack.create_channel, with: {name: inc-clean-disk-test}}
  - id: clean
    uses: shell.run
    needs: [channel]
    approval: {timeout_seconds: 120, message: "Delete old logs under {{ inputs.path }}?"}
    with: {argv: [find, "{{ inputs.path }}", -name, "*.gz", -mtime, "+{{ inputs.days }}",
                  -delete]}
  - {id: after, uses: core.note, needs: [clean], with: {message: done}}
"""


@flow(name="operator-launch")
async def _launched(execution_id: str) -> dict[str, Any]:
    return await run_runbook_result(execution_id)


def _api(path: str, body: dict[str, Any] | None = None) -> Any:
    from prefect.settings import PREFECT_API_URL

    url = f"{PREFECT_API_URL.value()}{path}"
    got = httpx.post(url, json=body, timeout=10) if body is not None else httpx.get(url)
    return got.json()


def _messages(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [m for m in sandbox.state.dump()["slack_messages"]
            if any(b.get("type") == "actions" for b in m.get("blocks") or [])
            or "clean" in m.get("text", "")]


@pytest.mark.usefixtures("prefect_api")
def test_request_is_rendered_linked_from_the_launched_run_and_slack_shows_the_decision(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path) -> None:
    store = open_store(firelane_env)
    logs = tmp_path / "logs"
    incident = store.declare_incident(IncidentDraft(title="disk full", severity=Severity.SEV3,
                                                    service="web"))
    execution = store.create_execution(new_execution(
        parse_runbook(RUNBOOK, "clean.yaml"), incident, {"path": str(logs)}, sandbox=True))
    argv = shlex.join(["find", str(logs), "-name", "*.gz", "-mtime", "+7", "-delete"])

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        launched = asyncio.create_task(_launched(execution.id))
        for _ in range(600):
            pending = [a for a in store.approvals_for(incident.id, "clean") if a.flow_run_id]
            if pending and _api(f"/flow_runs/{pending[0].flow_run_id}")["state_type"] \
                    == "PAUSED" and _messages(sandbox) and len(_api("/artifacts/filter", {
                        "artifacts": {"key": {"any_": [f"approval-inc-{incident.number}-clean"]}}}
                    )) >= 2:
                break
            await asyncio.sleep(0.1)
        [approval] = store.approvals_for(incident.id, "clean")
        paused = _api(f"/flow_runs/{approval.flow_run_id}")
        keyset = paused["state"]["state_details"]["run_input_keyset"]
        form = _api(f"/flow_runs/{approval.flow_run_id}/input/{keyset['description']}")
        [parent] = _api("/flow_runs/filter", {
            "flows": {"name": {"any_": ["operator-launch"]}}, "sort": "EXPECTED_START_TIME_DESC",
            "limit": 1})
        told = {"logs": [lg["message"] for lg in _api("/logs/filter", {
            "logs": {"flow_run_id": {"any_": [parent["id"]]}}})],
                "artifacts": _api("/artifacts/filter", {
                    "artifacts": {"flow_run_id": {"any_": [parent["id"]]}}}),
                "form": form, "slack": _messages(sandbox)[0]}
        code = await asyncio.to_thread(main, ["approve", f"INC-{incident.number}", "clean",
                                              "--reject", "--as", "ann", "--reason", "no"])
        assert code == 0
        return told, await launched

    told, result = asyncio.run(scenario())
    [approval] = store.approvals_for(incident.id, "clean")
    for shown in (approval.message, told["form"], told["slack"]["blocks"][0]["text"]["text"]):
        assert argv in shown and "{{" not in shown, shown
        assert f"Delete old logs under {logs}?" in shown
        assert "`clean` is skipped, and so are the steps that need it (after)" in shown \
            or "*Reject:* `clean` is skipped, and so are the steps that need it (after)" \
            in shown
        assert "/runs/flow-run/" in shown, "links to the incident's run"
    link = f"/runs/flow-run/{approval.flow_run_id}"
    assert any(link in line and "waits for approval" in line for line in told["logs"])
    [artifact] = [a for a in told["artifacts"] if a["key"] == f"approval-inc-{incident.number}-"
                  "clean"]
    assert link in artifact["data"] and argv in artifact["data"]
    assert result["status"] == "failed", "a rejected remediation is not a success"
    assert result["outcome"]["kind"] == "remediation_rejected", result["outcome"]
    decided = next(m for m in sandbox.state.dump()["slack_messages"]
                   if m["ts"] == told["slack"]["ts"])
    assert not [b for b in decided["blocks"] if b["type"] == "actions"], "buttons removed"
    assert "clean rejected by ann (firelane approve) at " in decided["text"]
    assert argv in decided["blocks"][0]["text"]["text"] and decided.get("edited")
    later = [lg["message"] for lg in _api("/logs/filter", {
        "logs": {"flow_run_id": {"any_": [told["artifacts"][0]["flow_run_id"]]}}})]
    assert any("clean rejected by cli:ann" in line for line in later)


def test_sandbox_chat_update_refuses_what_slack_refuses(sandbox: Sandbox) -> None:
    headers = {"authorization": "Bearer xoxb-sandbox"}
    base = f"{sandbox.url}/slack/api"

    def call(method: str, **args: Any) -> dict[str, Any]:
        got = httpx.post(f"{base}/{method}", json=args, headers=headers, verify=False)
        return dict(got.json())

    channel = call("conversations.create", name="inc-update-test")["channel"]["id"]
    sent = call("chat.postMessage", channel=channel, text="approve?",
                blocks=[{"type": "actions", "elements": []}])
    assert call("chat.update", channel=channel, ts="1.000001", text="x")["error"] \
        == "message_not_found"
    assert call("chat.update", channel="C404", ts=sent["ts"], text="x")["error"] \
        == "channel_not_found"
    assert call("chat.update", channel=channel, ts=sent["ts"])["error"] == "no_text"
    assert call("chat.update", channel=channel, ts=sent["ts"], text="x" * 40_001)["error"] \
        == "msg_too_long"
    with sandbox.state.lock:
        sandbox.state.slack_messages.append({"type": "message", "channel": channel,
                                             "user": "U0ALICE", "text": "mine", "blocks": [],
                                             "ts": "2.000002", "metadata": None,
                                             "pinned": False})
    assert call("chat.update", channel=channel, ts="2.000002", text="x")["error"] \
        == "cant_update_message"
    done = call("chat.update", channel=channel, ts=sent["ts"], text="approved",
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "approved"}}])
    assert done["ok"] and done["message"]["text"] == "approved"
    [stored] = [m for m in sandbox.state.dump()["slack_messages"] if m["ts"] == sent["ts"]]
    assert [b["type"] for b in stored["blocks"]] == ["section"] and stored["edited"]
