"""Zoom's daily limit of 100 meetings created per host user: the sandbox refuses the 101st as
Zoom does, a spent host hands the bridge to the block's next spare host, every host spent fails
the step at once (or opens a Jitsi room with `fallback: jitsi`), and the war room opens and
says so without its bridge."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import ssl
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from firelane.errors import QuotaExhausted, RateLimited
from firelane.registry import ActionContext
from firelane.store import open_store
from flows.cli import main
from integrations.common import forget_blocks
from integrations.sandbox import Sandbox
from integrations.video.block import ZoomCredentials
from tests.sandbox_fixtures import make_ctx, run_action

SPARE = "ops-bridge-2@example.com"


def _post(sb: Sandbox, user: str, n: int) -> list[httpx.Response]:
    creds = ZoomCredentials.for_sandbox(sb.url, sb.ca_file)

    async def go() -> list[httpx.Response]:
        async with creds.http() as client:
            auth = {"Authorization": f"Bearer {await creds.token(client)}"}
            return [await client.post(f"{creds.api_url}/users/{user}/meetings", headers=auth,
                                      json={"topic": f"m{i}", "type": 2,
                                            "start_time": "2026-12-01T07:00:00Z"})
                    for i in range(n)]
    return asyncio.run(go())


def test_the_sandbox_refuses_a_users_101st_meeting_of_the_day_as_zoom_does(
        sandbox: Sandbox) -> None:
    made = _post(sandbox, "me", 101)
    assert [r.status_code for r in made[:100]] == [201] * 100
    refused = made[100]
    assert refused.status_code == 429 and refused.json() == {"code": 429, "message": (
        "You have exceeded the daily rate limit (100) of Meeting Create/Update API requests "
        "permitted for this particular user. You may resume these requests at GMT 00:00:00.")}
    assert len(sandbox.state.zoom_meetings) == 100
    assert [r.status_code for r in _post(sandbox, SPARE, 1)] == [201]


def test_a_create_whose_body_never_arrived_is_not_counted(sandbox: Sandbox) -> None:
    """A responder killed mid-request sent Zoom no meeting to create: the sandbox does not
    count it against the day's 100 (it did, and a crash test's takeover then met the limit
    one meeting early)."""
    sandbox.state.zoom_daily_limit = 1
    creds = ZoomCredentials.for_sandbox(sandbox.url, sandbox.ca_file)

    async def token() -> str:
        async with creds.http() as client:
            return str(await creds.token(client))
    bearer = asyncio.run(token()).encode()
    host, port = sandbox.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=sandbox.ca_file)
    with socket.create_connection((host, int(port))) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(b"POST /zoom/v2/users/me/meetings HTTP/1.1\r\nHost: sandbox\r\n"
                    b"Authorization: Bearer " + bearer + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100\r\n\r\n{")
    deadline = time.monotonic() + 5
    while "POST /zoom/v2/users/me/meetings" not in sandbox.state.requests and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert [r.status_code for r in _post(sandbox, "me", 2)] == [201, 429]


def _saved_block(sb: Sandbox, spare: list[str]) -> dict[str, str]:
    name = "quota-" + secrets.token_hex(4)
    block = ZoomCredentials.for_sandbox(sb.url, sb.ca_file)
    block.spare_hosts = spare
    block.save(name, overwrite=True)
    forget_blocks()
    return {"zoom": name}


def _ctx(step: str, credentials: dict[str, str], **changes: Any) -> ActionContext:
    return replace(make_ctx(step), sandbox=False, credentials=credentials, first_use=True,
                   **changes)


def _kinds(ctx: ActionContext) -> list[str]:
    return [e.kind for e in ctx.events]


@pytest.mark.usefixtures("prefect_api")
def test_a_spent_host_hands_the_bridge_to_the_spare_host_then_the_step_fails_at_once(
        sandbox: Sandbox) -> None:
    sandbox.state.zoom_daily_limit = 1
    creds = _saved_block(sandbox, [SPARE])
    first = asyncio.run(run_action("video.create_meeting", {"provider": "zoom"},
                                   _ctx("bridge-1", creds)))
    assert first.created and first.host == "me"
    handed = _ctx("bridge-2", creds)
    second = asyncio.run(run_action("video.create_meeting", {"provider": "zoom"}, handed))
    assert second.created and second.host == SPARE
    assert _kinds(handed) == ["integration.quota"] and "me" in handed.events[0].summary
    asked = len(sandbox.state.requests)
    spent = _ctx("bridge-3", creds)
    with pytest.raises(QuotaExhausted) as caught:
        asyncio.run(run_action("video.create_meeting", {"provider": "zoom"}, spent))
    error = caught.value
    assert not isinstance(error, RateLimited) and not error.retryable
    assert f"every Zoom host (me, the user the credentials belong to, {SPARE}) has reached " \
           "its daily limit of meetings created (1), until 00:00 UTC" in str(error)
    assert "spare_hosts" in str(error)
    assert error.resets_at > datetime.now(UTC) and " h " not in str(error)
    assert _kinds(spent) == ["integration.quota"] and "integration.retry" not in _kinds(spent)
    posts = [r for r in sandbox.state.requests[asked:] if r.startswith("POST")]
    assert len(posts) == 1, posts
    assert len(sandbox.state.zoom_meetings) == 2


@pytest.mark.usefixtures("prefect_api")
def test_a_re_run_finds_the_bridge_a_spare_host_made_even_with_every_host_spent(
        sandbox: Sandbox) -> None:
    sandbox.state.zoom_daily_limit = 1
    creds = _saved_block(sandbox, [SPARE])
    _post(sandbox, "me", 1)
    ctx = _ctx("bridge-again", creds)
    made = asyncio.run(run_action("video.create_meeting", {"provider": "zoom"}, ctx))
    assert made.host == SPARE
    again = asyncio.run(run_action("video.create_meeting", {"provider": "zoom"}, replace(
        ctx, first_use=False, repeat_since=datetime.now(UTC), events=[])))
    assert not again.created and (again.meeting_id, again.host) == (made.meeting_id, SPARE)
    assert len(sandbox.state.zoom_meetings) == 2


@pytest.mark.usefixtures("prefect_api")
def test_with_fallback_jitsi_a_spent_zoom_gives_a_jitsi_room_and_says_why(
        sandbox: Sandbox) -> None:
    sandbox.state.zoom_daily_limit = 0
    ctx = _ctx("bridge-jitsi", _saved_block(sandbox, []))
    room = asyncio.run(run_action("video.create_meeting",
                                  {"provider": "zoom", "fallback": "jitsi"}, ctx))
    assert room.provider == "jitsi" and room.url.startswith("https://meet.jit.si/Firelane-INC7")
    assert _kinds(ctx) == ["integration.quota", "integration.fallback"]
    assert ctx.events[1].summary.endswith("the bridge is a Jitsi room instead")
    assert "fallback: jitsi" not in ctx.events[1].summary and not sandbox.state.zoom_meetings


@pytest.mark.usefixtures("prefect_api")
def test_declare_incident_opens_the_war_room_without_a_bridge_and_says_so(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    sandbox.state.zoom_daily_limit = 0
    incident = tmp_path / "incident.json"
    incident.write_text(json.dumps({"title": "Checkout down", "severity": "SEV1",
                                    "service": "checkout"}))
    assert main(["run", "declare-incident", "--incident", str(incident), "--sandbox"]) == 0
    line = capsys.readouterr().out
    assert "succeeded; bridge failed (on_error: continue): QuotaExhausted: zoom: every Zoom " \
           "host (me, the user the credentials belong to) has reached its daily limit of " \
           "meetings created (0), until 00:00 UTC" in line
    assert "`with: {fallback: jitsi}` (HTTP 429) (execution" in line
    state = sandbox.state.dump()
    [room] = state["slack_channels"].values()
    assert "bridge none ·" in room["topic"]["value"]
    [announce] = state["slack_messages"]
    assert "bridge none (QuotaExhausted: zoom: every Zoom host (me, the user the credentials " \
        "belong to) has reached its daily limit of meetings created (0), until 00:00 UTC." \
        in announce["text"]
    titles = [b["title"] for b in room["bookmarks"]]
    assert "Video bridge" not in titles and f"Ticket {next(iter(state['jira_issues']))}" in titles
    assert not state["zoom_meetings"]
    store = open_store(firelane_env)
    [incident_row] = store.list_incidents()
    kinds = [e.kind for e in store.timeline(incident_row.id)]
    assert "integration.quota" in kinds and "bridge" not in incident_row.links


FALLBACK_RUNBOOK = """version: 1
name: bridge-or-jitsi
steps:
  - {id: bridge, uses: video.create_meeting, with: {fallback: jitsi}}
"""


@pytest.mark.usefixtures("prefect_api")
def test_a_run_whose_bridge_fell_back_to_jitsi_says_so_in_its_last_line(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    sandbox.state.zoom_daily_limit = 0
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "bridge-or-jitsi.yaml").write_text(FALLBACK_RUNBOOK)
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(tmp_path / "runbooks"))
    incident = tmp_path / "incident.json"
    incident.write_text(json.dumps({"title": "Checkout down", "severity": "SEV2",
                                    "service": "checkout"}))
    assert main(["run", "bridge-or-jitsi", "--incident", str(incident), "--sandbox"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "bridge-or-jitsi: succeeded; bridge fell back: zoom: every Zoom host (me, the user " \
           "the credentials belong to) has reached its daily limit of meetings created, " \
           "until 00:00 UTC; the bridge is a Jitsi room instead" in line, line
    [incident_row] = open_store(firelane_env).list_incidents()
    assert incident_row.links["bridge"].startswith("https://meet.jit.si/Firelane-INC")
