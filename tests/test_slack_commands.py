"""The `/incident` slash command on the intake (`POST /slack/commands`), signed like Slack signs:
the vendor's own signature vector is accepted and a forgery refused; `/incident declare` opens
an incident whose runbook opens a full war room in the sandbox; in that war room `ack`, `sev`,
`role`, `note` and `resolve` act on its incident, made by the Slack user (verified), the page
following; outside a war room a command must name its incident; and a command slower than
Slack's 3-second deadline is answered at once and its result posted to `response_url`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
import pytest

from firelane.commands import IncidentCommands
from firelane.models import IncidentDraft, Severity
from firelane.settings import Settings
from firelane.store import Store, open_store
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef
from flows.respond.starter import ResponseStarter
from integrations.sandbox import Sandbox
from tests.slack_vector import vector_intake

SECRET = "slack-signing-secret-for-commands"


def _form(text: str, channel: str = "C0GENERAL", user: str = "U0ANN", name: str = "ann",
          response_url: str = "") -> bytes:
    return urlencode({"token": "x", "team_id": "T1", "channel_id": channel, "user_id": user,
                      "user_name": name, "command": "/incident", "text": text,
                      "response_url": response_url}).encode()


def _signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": ts, "x-slack-signature": f"v0={mac}",
            "content-type": "application/x-www-form-urlencoded"}


def _app(store: Store, monkeypatch: pytest.MonkeyPatch, starter: ResponseStarter | None = None,
         clock: Any = None) -> Any:
    monkeypatch.setenv("TEST_SLACK_SECRET", SECRET)
    return create_app(store, IntakeConfig(slack_signing_secret=SecretRef(
        env="TEST_SLACK_SECRET")), starter, slack_clock=clock)


def _send(app: Any, bodies: list[bytes], starter: ResponseStarter | None = None,
          ) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        out = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            for body in bodies:
                answer = await client.post("/slack/commands", content=body,
                                           headers=_signed(body))
                assert answer.status_code == 200, answer.text
                out.append(answer.json())
                while starter is not None and starter.tasks:
                    await asyncio.wait(starter.tasks, timeout=120)
            for _ in range(200):
                if len(asyncio.all_tasks()) <= 1:
                    break
                await asyncio.sleep(0.05)
        return out
    return asyncio.run(go())


def test_vendor_vector_is_accepted_and_forgeries_refused(sqlite_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    app, body, headers = vector_intake(open_store(sqlite_url), monkeypatch)

    async def post(content: bytes) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return await client.post("/slack/commands", content=content, headers=headers)
    good = asyncio.run(post(body))
    assert good.status_code == 200 and "`/incident` commands" in good.json()["text"]
    assert good.json()["response_type"] == "ephemeral"
    assert asyncio.run(post(body.replace(b"roadrunner", b"coyote"))).status_code == 401
    unconfigured = create_app(open_store(sqlite_url), IntakeConfig())

    async def post_unconfigured() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=unconfigured),
                                     base_url="http://intake") as client:
            return await client.post("/slack/commands", content=body, headers=headers)
    assert asyncio.run(post_unconfigured()).status_code == 404


@pytest.mark.usefixtures("prefect_api")
def test_declare_opens_a_war_room_whose_commands_act_on_its_incident(
        firelane_env: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(firelane_env)
    starter = ResponseStarter(store, Settings.from_env(), "declare-incident", sandbox=True)
    app = _app(store, monkeypatch, starter)
    [declared] = _send(app, [_form("declare sev2 checkout Checkout 5xx above 20%")], starter)
    assert declared["response_type"] == "in_channel", declared
    assert declared["text"].startswith("INC-1 declared by @ann: [SEV2] Checkout 5xx above 20%")
    assert "runbook declare-incident is opening the war room" in declared["text"]
    state = sandbox.state.dump()
    [channel] = state["slack_channels"].values()
    assert len(state["jira_issues"]) == len(state["pd_incidents"]) == 1
    room = str(channel["id"])
    answers = _send(app, [_form("ack", room), _form("ack", room, "U0BOB", "bob"),
                          _form("sev SEV1 customers cannot pay", room),
                          _form("role investigator <@U0BOB|bob>", room),
                          _form("note rolled back deploy 42", room),
                          _form("show", room), _form("resolve error rate normal", room)])
    assert [a["text"] for a in answers[:5]] == [
        "INC-1: Incident acknowledged by @ann via slack; @ann is commander",
        "INC-1: nothing to change (INC-1 is already acknowledged)",
        "INC-1: Severity SEV2 → SEV1 (customers cannot pay)",
        "INC-1: bob is investigator", "INC-1: rolled back deploy 42"]
    assert "commander @ann" in answers[5]["text"] and "investigators bob" in answers[5]["text"]
    incident = store.get_incident("INC-1")
    assert (incident.status, incident.severity, incident.investigators) == (
        "resolved", "SEV1", ["bob"])
    [page] = sandbox.state.dump()["pd_incidents"].values()
    assert page["status"] == "resolved", "the page follows the incident"
    [room_now] = sandbox.state.dump()["slack_channels"].values()
    assert room_now["topic"]["value"] == ("INC-1 [SEV1] resolved · IC @ann · investigating "
                                          "bob · Checkout 5xx above 20%"), "the topic follows"
    assert "U0BOB" in room_now["members"], "a named person is invited"
    assert not [e for e in store.timeline(incident.id) if e.kind == "war_room.mirror_failed"]
    made = [e for e in store.timeline(incident.id) if e.details.get("via") == "slack"
            and e.kind.startswith("incident.")]
    assert [e.kind for e in made] == ["incident.declared", "incident.status",
                                      "incident.severity", "incident.role", "incident.note",
                                      "incident.status"]
    assert all(e.details["verified"] and e.details["actor_id"] == "U0ANN" for e in made)

    shortcut = urlencode({"payload": json.dumps({
        "type": "message_action", "callback_id": "add_to_timeline",
        "user": {"id": "U0BOB", "username": "bob"}, "channel": {"id": room},
        "message": {"text": "db failover finished at 02:14", "ts": "1700000000.000100"}})
    }).encode()

    async def add() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return await client.post("/slack/interactions", content=shortcut,
                                     headers=_signed(shortcut))
    added = asyncio.run(add())
    assert added.json()["text"].startswith("Added to the timeline of INC-1")
    [note] = [e for e in store.timeline(incident.id) if e.summary ==
              "db failover finished at 02:14"]
    assert note.kind == "incident.note" and note.actor == "@bob" and note.details["verified"]


def test_outside_a_war_room_a_command_names_its_incident(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(sqlite_url)
    store.declare_incident(IncidentDraft(title="t", severity=Severity.SEV3, service="web"))
    app = _app(store, monkeypatch)
    lost, named, bad, listed = _send(app, [_form("ack"), _form("ack INC-1"),
                                           _form("sev SEV9 INC-1"), _form("list")])
    assert lost["response_type"] == "ephemeral"
    assert "this channel is no incident's war room" in lost["text"]
    assert "`/incident ack INC-7`" in lost["text"]
    assert named["text"].startswith("INC-1: Incident acknowledged by @ann")
    assert bad["text"].startswith("Not done:") and "SEV9" in bad["text"]
    assert listed["text"] == "INC-1 [SEV3] acknowledged · web · t"
    assert store.get_incident("INC-1").severity == "SEV3"


class _Collector(BaseHTTPRequestHandler):
    posted: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        self.posted.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.posted = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/commands/T1/1/x", _Collector.posted
    server.shutdown()


def test_a_slow_store_cannot_break_slacks_deadline(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
        response_url: tuple[str, list[dict[str, Any]]]) -> None:
    store = open_store(sqlite_url)
    store.declare_incident(IncidentDraft(title="t", severity=Severity.SEV3, service="web"))
    acknowledge = IncidentCommands.acknowledge

    def slow(self: IncidentCommands, *args: Any, **kwargs: Any) -> Any:
        time.sleep(3.5)
        return acknowledge(self, *args, **kwargs)
    monkeypatch.setattr(IncidentCommands, "acknowledge", slow)
    url, posted = response_url
    [answer] = _send(_app(store, monkeypatch), [_form("ack INC-1", response_url=url)])
    assert answer == {"response_type": "ephemeral", "text": "Working on `ack`…"}, \
        "answered before the work finished"
    for _ in range(100):
        if posted:
            break
        time.sleep(0.1)
    assert posted == [{"response_type": "in_channel",
                       "text": "INC-1: Incident acknowledged by @ann via slack; @ann is "
                               "commander"}]
    assert store.get_incident("INC-1").status == "acknowledged"


ESCALATE = """version: 1
name: sev1-escalate
description: An upgrade to SEV1 pages the service's leadership too.
match:
  severity: [SEV1]
credentials: {pagerduty: default}
steps:
  - id: page_leads
    uses: pagerduty.trigger
    with: {summary: "SEV1: {{ incident.title }}"}
"""


@pytest.mark.usefixtures("prefect_api")
def test_a_severity_upgrade_starts_the_runbooks_it_now_matches(
        firelane_env: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parent.parent / "runbooks" / "declare-incident.yaml"
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "declare-incident.yaml").write_text(shipped.read_text())
    (folder / "sev1-escalate.yaml").write_text(ESCALATE)
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(folder))
    store = open_store(firelane_env)
    starter = ResponseStarter(store, Settings.from_env(), "declare-incident", sandbox=True)
    app = _app(store, monkeypatch, starter)
    _send(app, [_form("declare SEV2 checkout Checkout 5xx")], starter)
    room = str(next(iter(sandbox.state.dump()["slack_channels"].values()))["id"])
    up, again = _send(app, [_form("sev SEV1 customers cannot pay", room),
                            _form("sev SEV2 back", room)], starter)
    assert up["text"] == ("INC-1: Severity SEV2 → SEV1 (customers cannot pay); started "
                          "sev1-escalate")
    assert again["text"] == "INC-1: Severity SEV1 → SEV2 (back)"
    _send(app, [_form("sev SEV1 worse again", room)], starter)
    pages = [p["title"] for p in sandbox.state.dump()["pd_incidents"].values()]
    assert len(pages) == 2 and pages.count("SEV1: Checkout 5xx") == 1, pages
    runs = sorted(e.runbook_name for e in store.list_executions(store.get_incident("INC-1").id))
    assert runs == ["declare-incident", "sev1-escalate"]


@pytest.mark.usefixtures("prefect_api")
def test_a_private_incident_has_a_private_room_and_stays_out_of_sight(
        firelane_env: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(firelane_env)
    store.declare_incident(IncidentDraft(title="cdn slow", severity=Severity.SEV3,
                                         service="cdn"))
    starter = ResponseStarter(store, Settings.from_env(), "declare-incident", sandbox=True)
    app = _app(store, monkeypatch, starter)
    [declared] = _send(app, [_form("declare private SEV1 auth Credential leak")], starter)
    assert declared["text"].startswith("Private INC-2 declared by @ann")
    assert "Credential leak" not in declared["text"], "the answer is seen in a public channel"
    [room] = [c for c in sandbox.state.dump()["slack_channels"].values()
              if c["name"].startswith("inc-2-")]
    assert room["is_private"] is True
    listed, outside, inside = _send(app, [_form("list"), _form("ack INC-2"),
                                          _form("ack INC-2", str(room["id"]))], starter)
    assert listed["text"] == "INC-1 [SEV3] declared · cdn · cdn slow"
    assert outside["text"].startswith("Not done: no incident 'INC-2' here")
    assert inside["text"].startswith("INC-2: Incident acknowledged by @ann")
