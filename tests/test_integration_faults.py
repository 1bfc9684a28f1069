"""The fault matrix: every creating action x every fault the sandbox injects → exactly one
side effect, and the retries are on the timeline. `make test-faults` prints it as a table
(action x fault → outcome, see `tests/conftest.py`). The re-run of a step is given
`repeat_since`, as the engine gives every step it runs again (a retry, a resumed step)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from integrations.sandbox import Sandbox
from tests.helpers import collect_errors
from tests.sandbox_fixtures import make_ctx, run_action

FAULTS: dict[str, dict[str, Any]] = {
    "429": {"kind": "status", "status": 429, "retry_after": 1},
    "500": {"kind": "status", "status": 500},
    "502": {"kind": "status", "status": 502},
    "503": {"kind": "status", "status": 503},
    "timeout": {"kind": "latency", "latency": 1.2},
    "reset": {"kind": "reset"},
    "dropped": {"kind": "drop"},
    "applied-then-500": {"kind": "apply_then_fail"},
    "applied-then-lost": {"kind": "apply_then_reset"},
}


def _issue(sb: Sandbox) -> None:
    asyncio.run(run_action("jira.create_issue", {"project": "OPS", "summary": "s"},
                           make_ctx("setup-ticket")))


def _page(sb: Sandbox) -> None:
    asyncio.run(run_action("pagerduty.trigger", {"summary": "s"}, make_ctx("setup-page")))


def _channel(sb: Sandbox) -> None:
    asyncio.run(run_action("slack.create_channel", {"name": "war-room"},
                           make_ctx("setup-channel")))


def _channel_id(sb: Sandbox) -> str:
    return next(iter(sb.state.slack_channels))


def _shares(sb: Sandbox) -> int:
    """Times a file was shared to a channel (a repeated completion counts again)."""
    return sum(len(f["channels"]) for f in sb.state.slack_files.values())


_STATUSPAGE = "/statuspage/v1/pages/fl0sandbox00"


def _status_updates(sb: Sandbox) -> int:
    return sum(len(i["_updates"]) for i in sb.state.statuspage_incidents.values())


def _web(sb: Sandbox) -> None:
    from integrations.sandbox.kubernetes_app import configure

    configure(sb.state.kubernetes, {"ready_delay": 0.1, "deployments": [
        {"name": "web", "namespace": "shop", "image": "web:1", "replicas": 2}]})


def _web_bad(sb: Sandbox) -> None:
    from tests.kubernetes_fixtures import deploy

    _web(sb)
    deploy(sb, "web:2")


def _k8s_count(field: str) -> Callable[[Sandbox], int]:
    def count(sb: Sandbox) -> int:
        from tests.kubernetes_fixtures import web

        meta = web(sb)["metadata"]
        return int(meta["annotations"]["deployment.kubernetes.io/revision"]
                   if field == "revision" else meta["generation"])
    return count


_DEPLOYMENT = "/kubernetes/apis/apps/v1/namespaces/shop/deployments/web"
_VICTIM: dict[str, str] = {}


def _web_victim(sb: Sandbox) -> None:
    """`shop/web`, and the pod the step deletes (named once: a re-run names the same pod)."""
    _web(sb)
    _VICTIM["pod"] = sorted(name for _, name in sb.state.kubernetes.pods)[0]


def _killed(sb: Sandbox) -> int:
    return sum(1 for e in sb.state.kubernetes.events if e["reason"] == "Killing")


CASES: dict[str, tuple[Callable[[Sandbox], None] | None, str, str,
                       Callable[[Sandbox], dict[str, Any]], Callable[[Sandbox], int]]] = {
    "jira.create_issue": (None, "POST", "/jira/rest/api/2/issue",
                          lambda sb: {"project": "OPS", "summary": "DB down"},
                          lambda sb: len(sb.state.jira_issues)),
    "jira.add_comment": (_issue, "POST", "/jira/rest/api/2/issue/OPS-1/comment",
                         lambda sb: {"issue": "OPS-1", "body": "rolled back"},
                         lambda sb: len(sb.state.jira_issues["OPS-1"]["comments"])),
    "pagerduty.trigger": (None, "POST", "/pagerduty/v2/enqueue",
                          lambda sb: {"summary": "Checkout down"},
                          lambda sb: len(sb.state.pd_incidents)),
    "pagerduty.add_note": (_page, "POST", "/pagerduty/incidents/",
                           lambda sb: {"dedup_key": next(iter(sb.state.pd_incidents.values()))[
                               "incident_key"], "content": "note"},
                           lambda sb: sum(len(i["notes"]) for i in sb.state.pd_incidents.values())),
    "slack.create_channel": (None, "POST", "/slack/api/conversations.create",
                             lambda sb: {}, lambda sb: len(sb.state.slack_channels)),
    "slack.post_message": (_channel, "POST", "/slack/api/chat.postMessage",
                           lambda sb: {"channel": _channel_id(sb), "text": "war room"},
                           lambda sb: len(sb.state.slack_messages)),
    "slack.broadcast": (_channel, "POST", "/slack/api/chat.postMessage",
                        lambda sb: {"channels": ["#war-room"], "text": "stakeholders"},
                        lambda sb: len(sb.state.slack_messages)),
    "slack.upload_file": (_channel, "POST", "/slack/api/files.completeUploadExternal",
                          lambda sb: {"channel": _channel_id(sb), "filename": "t.md",
                                      "content": "# timeline", "comment": "the report"},
                          _shares),
    "video.create_meeting": (None, "POST", "/zoom/v2/users/me/meetings",
                             lambda sb: {"provider": "zoom"},
                             lambda sb: len(sb.state.zoom_meetings)),
    "statuspage.post_update": (None, "POST", f"{_STATUSPAGE}/incidents",
                               lambda sb: {"status": "investigating", "body": "looking",
                                           "components": {"cmp0checkout": "major_outage"}},
                               _status_updates),
    "statuspage.set_component_status": (
        None, "PATCH", f"{_STATUSPAGE}/components/cmp0checkout",
        lambda sb: {"component_id": "cmp0checkout", "status": "partial_outage"},
        lambda sb: len(sb.state.statuspage_component_changes)),
    "kubernetes.rollout_undo": (_web_bad, "PATCH", _DEPLOYMENT,
                                lambda sb: {"namespace": "shop", "name": "web"},
                                _k8s_count("revision")),
    "kubernetes.rollout_restart": (_web, "PATCH", _DEPLOYMENT,
                                   lambda sb: {"namespace": "shop", "name": "web"},
                                   _k8s_count("revision")),
    "kubernetes.delete_pod": (_web_victim, "DELETE", "/kubernetes/api/v1/namespaces/shop/pods/",
                              lambda sb: {"namespace": "shop", "name": _VICTIM["pod"],
                                          "timeout_seconds": 20},
                              _killed),
    "kubernetes.scale": (_web, "PATCH", f"{_DEPLOYMENT}/scale",
                         lambda sb: {"namespace": "shop", "name": "web", "replicas": 3},
                         _k8s_count("generation")),
}


@pytest.fixture
def fault_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    from integrations.statuspage import block as statuspage_block

    monkeypatch.setenv("FIRELANE_RETRY_SETTLE_SECONDS", "0.6")
    monkeypatch.setattr(statuspage_block, "SANDBOX_INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(sandbox.state, "statuspage_rate_limit", None)
    return sandbox


FIRST_USE = ["jira.create_issue", "video.create_meeting"]


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("action", list(CASES))
@pytest.mark.fault_matrix
def test_fault_matrix(fault_env: Sandbox, action: str, fault: str) -> None:
    _one_effect_under(fault_env, action, fault, first_use=False)


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("action", FIRST_USE)
@pytest.mark.fault_matrix
def test_fault_matrix_first_use(fault_env: Sandbox, action: str, fault: str) -> None:
    """A step's first try (`first_use`) creates without looking first; a fault still leaves
    one effect: every retry looks."""
    _one_effect_under(fault_env, action, fault, first_use=True)


def _one_effect_under(sb: Sandbox, action: str, fault: str, first_use: bool) -> None:
    setup, method, path, inputs, count = CASES[action]
    if setup is not None:
        setup(sb)
    before = count(sb)
    rule = sb.faults.add(path=path, method=method, **FAULTS[fault])
    ctx = replace(make_ctx(f"step-{action.replace('.', '-')}"), first_use=first_use)
    if action.startswith("kubernetes."):
        from tests.kubernetes_fixtures import ALLOW

        ctx = replace(ctx, kubernetes_allow=ALLOW)
    first_try = datetime.now(UTC)
    asyncio.run(run_action(action, inputs(sb), ctx))
    assert rule.hits == 1, "the fault never fired"
    assert count(sb) == before + 1, f"{action} under {fault}: {count(sb) - before} effects"
    retries = [e for e in ctx.events if e.kind == "integration.retry"]
    assert len(retries) == 1 and retries[0].details["attempt"] == 1
    asyncio.run(run_action(action, inputs(sb), replace(ctx, repeat_since=first_try,
                                                       first_use=False)))
    assert count(sb) == before + 1, "a re-run of the same step made a second effect"


UPLOAD_CALLS = {"slack.upload_file (1: url)": "/slack/api/files.getUploadURLExternal",
                "slack.upload_file (2: bytes)": "/slack/upload/"}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("action", list(UPLOAD_CALLS))
@pytest.mark.fault_matrix
def test_fault_matrix_upload_calls(fault_env: Sandbox, action: str, fault: str) -> None:
    """Slack's upload is three calls; the matrix row `slack.upload_file` aims at the third
    (the share), these at the first two: one share of the whole content each time."""
    _channel(fault_env)
    rule = fault_env.faults.add(path=UPLOAD_CALLS[action], method="POST", **FAULTS[fault])
    ctx = make_ctx("step-upload")
    out = asyncio.run(run_action("slack.upload_file", CASES["slack.upload_file"][3](
        fault_env), ctx))
    assert rule.hits == 1, "the fault never fired"
    assert _shares(fault_env) == 1, f"{_shares(fault_env)} shares"
    stored = fault_env.state.slack_files[out.file_id]
    assert stored["bytes"] == b"# timeline" and stored["channels"] == [_channel_id(fault_env)]
    assert len([e for e in ctx.events if e.kind == "integration.retry"]) == 1


def test_a_token_without_files_read_uploads_blind_and_says_the_file_may_show_twice(
        fault_env: Sandbox) -> None:
    """A Slack app installed before uploads looked for themselves lacks `files:read`: its
    uploads still go out (as before), and the timeline says they could not be checked."""
    _channel(fault_env)
    fault_env.state.slack_withheld_scopes = ["files:read"]
    fault_env.faults.add(path="/slack/api/files.completeUploadExternal", method="POST",
                         **FAULTS["applied-then-500"])
    inputs = CASES["slack.upload_file"][3](fault_env)
    ctx = make_ctx("blind-upload")
    first_try = datetime.now(UTC)
    asyncio.run(run_action("slack.upload_file", inputs, ctx))
    assert _shares(fault_env) == 2
    assert [e.kind for e in ctx.events] == ["integration.retry", "integration.unchecked"]
    assert "files:read" in ctx.events[1].summary
    again = replace(ctx, repeat_since=first_try, events=[])
    asyncio.run(run_action("slack.upload_file", inputs, again))
    assert _shares(fault_env) == 3 and [e.kind for e in again.events] == [
        "integration.unchecked"]
    fault_env.state.slack_withheld_scopes = []
    asyncio.run(run_action("slack.upload_file", inputs, replace(again, events=[])))
    assert _shares(fault_env) == 3, "with the scope back, the re-run finds its file"


@pytest.mark.parametrize("fault", ["timeout", "applied-then-lost", "applied-then-500"])
def test_a_chart_whose_share_answer_was_lost_is_posted_once(fault_env: Sandbox,
                                                            fault: str) -> None:
    """The k8s runbook once found its graph twice in the war room after a read timeout."""
    from integrations.prometheus.post import post_chart

    _channel(fault_env)
    room = _channel_id(fault_env)
    fault_env.faults.add(path="/slack/api/files.completeUploadExternal", method="POST",
                         **FAULTS[fault])
    claimed: list[str] = []

    async def claim(name: str) -> bool:
        claimed.append(name)
        return len(claimed) == 1

    ctx = replace(make_ctx("graph"), claim_effect=claim)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    posted = asyncio.run(post_chart(ctx, room, "inc-7-graph.png", png, "5xx ratio", "after"))
    assert _shares(fault_env) == 1 and fault_env.state.slack_files[posted.file_id or ""][
        "bytes"] == png
    assert [e.kind for e in ctx.events] == ["integration.retry", "prometheus.graph_posted"]


LOOKUPS = {"jira.create_issue": ("GET", "/jira/rest/api/2/search"),
           "video.create_meeting": ("GET", "/zoom/v2/users/me/meetings")}


@pytest.mark.parametrize("action", FIRST_USE)
def test_a_first_use_creates_without_looking_and_a_repeat_finds_it(
        fault_env: Sandbox, action: str) -> None:
    _, _, _, inputs, count = CASES[action]
    method, path = LOOKUPS[action]
    looks = fault_env.faults.add(path=path, method=method, kind="latency", latency=0.0,
                                 times=100)
    ctx = replace(make_ctx(f"first-{action}"), first_use=True)
    made = asyncio.run(run_action(action, inputs(fault_env), ctx))
    assert made.created and looks.hits == 0 and count(fault_env) == 1
    again = asyncio.run(run_action(action, inputs(fault_env), replace(
        ctx, first_use=False, repeat_since=datetime.now(UTC), attempt=2)))
    assert not again.created and looks.hits >= 1 and count(fault_env) == 1
    assert again.model_dump()["url"] == made.model_dump()["url"]


def test_jira_lost_response_with_search_lag(fault_env: Sandbox) -> None:
    fault_env.state.jira_search_lag = 1.0
    fault_env.faults.add(path="/jira/rest/api/2/issue", method="POST", kind="apply_then_fail")
    ctx = make_ctx("lagged")
    out = asyncio.run(run_action("jira.create_issue", {"project": "OPS", "summary": "x"}, ctx))
    assert not out.created and out.key == "OPS-1" and len(fault_env.state.jira_issues) == 1


def test_jira_create_resumed_after_a_dead_worker_waits_for_the_index(
        fault_env: Sandbox) -> None:
    from datetime import UTC, datetime

    fault_env.state.jira_search_lag = 1.0
    first = make_ctx("resumed")
    asyncio.run(run_action("jira.create_issue", {"project": "OPS", "summary": "x"}, first))
    resumed = replace(make_ctx("resumed"), repeat_since=datetime.now(UTC))
    out = asyncio.run(run_action("jira.create_issue", {"project": "OPS", "summary": "x"},
                                 resumed))
    assert not out.created and out.key == "OPS-1" and len(fault_env.state.jira_issues) == 1
    fresh = make_ctx("fresh")
    out = asyncio.run(run_action("jira.create_issue", {"project": "OPS", "summary": "y"}, fresh))
    assert out.created and len(fault_env.state.jira_issues) == 2


def test_persistent_rate_limit_gives_up_with_the_vendor_message(fault_env: Sandbox) -> None:
    from firelane.errors import RateLimited

    fault_env.faults.add(path="/slack/api/conversations.create", kind="status", status=429,
                         retry_after=0, times=10)
    ctx = make_ctx("limited")
    with pytest.raises(RateLimited, match="slack: ratelimited"):
        asyncio.run(run_action("slack.create_channel", {}, ctx))
    assert len([e for e in ctx.events if e.kind == "integration.retry"]) == 3
    assert fault_env.state.slack_channels == {}


def test_a_client_that_gave_up_is_no_error_in_the_sandbox_log(fault_env: Sandbox) -> None:
    import time

    with collect_errors("uvicorn.error") as errors:
        rule = fault_env.faults.add(path="/slack/api/conversations.create", kind="latency",
                                    latency=1.2)
        started = time.monotonic()
        asyncio.run(run_action("slack.create_channel", {}, make_ctx("gave-up")))
        time.sleep(max(0.0, started + 1.8 - time.monotonic()))
    assert rule.hits == 1 and len(fault_env.state.slack_channels) == 1
    assert [r.getMessage() for r in errors.records] == []


@pytest.mark.parametrize("fault", ["409"])
@pytest.mark.parametrize("action", [a for a in CASES if a.startswith("kubernetes.")])
@pytest.mark.fault_matrix
def test_kubernetes_conflict_rereads_and_changes_once(fault_env: Sandbox, action: str,
                                                      fault: str) -> None:
    """A 409 on the write (a stale resourceVersion): the action re-reads and decides again;
    one change, no retry of the same write."""
    from tests.kubernetes_fixtures import ALLOW

    sb = fault_env
    setup, method, path, inputs, count = CASES[action]
    assert setup is not None
    setup(sb)
    before = count(sb)
    rule = sb.faults.add(path=path, method=method, kind="status", status=409)
    ctx = replace(make_ctx(f"conflict-{action.replace('.', '-')}"), kubernetes_allow=ALLOW)
    asyncio.run(run_action(action, inputs(sb), ctx))
    assert rule.hits == 1 and count(sb) == before + 1
    kinds = [e.kind for e in ctx.events]
    assert kinds.count("kubernetes.conflict") == 1 and "integration.retry" not in kinds


@pytest.mark.parametrize("first_use", [True, False])
def test_a_zoom_token_refused_is_renewed_once_and_makes_one_meeting(
        fault_env: Sandbox, first_use: bool) -> None:
    import time

    from integrations.video import block as zoom_block

    creds = zoom_block.ZoomCredentials.for_sandbox(fault_env.url, fault_env.ca_file)
    zoom_block._TOKENS[creds._token_key] = ("revoked-by-a-rotation", time.monotonic() + 3600)
    ctx = replace(make_ctx(f"rotated-{first_use}"), first_use=first_use)
    made = asyncio.run(run_action("video.create_meeting", {"provider": "zoom"}, ctx))
    assert made.created and len(fault_env.state.zoom_meetings) == 1
    assert zoom_block._TOKENS[creds._token_key][0] != "revoked-by-a-rotation"


def test_zoom_lists_scheduled_meetings_only_page_by_page_as_zoom_does(
        fault_env: Sandbox) -> None:
    from integrations.video import block as zoom_block

    creds = zoom_block.ZoomCredentials.for_sandbox(fault_env.url, fault_env.ca_file)
    base = f"{creds.api_url}/users/me/meetings"

    async def calls() -> tuple[list[dict[str, Any]], dict[str, Any], int]:
        async with creds.http() as client:
            auth = {"Authorization": f"Bearer {await creds.token(client)}"}
            for body in ({"topic": "instant", "type": 1},
                         {"topic": "no start", "type": 2},
                         {"topic": "scheduled", "type": 2, "start_time": "2026-12-01T07:00:00Z"}):
                assert (await client.post(base, headers=auth, json=body)).status_code == 201
            listed = (await client.get(base, headers=auth, params={"type": "scheduled"})).json()
            bad = await client.get(base, headers=auth, params={"type": "instant"})
            return listed["meetings"], listed, bad.status_code

    meetings, listed, bad = asyncio.run(calls())
    assert [m["topic"] for m in meetings] == ["scheduled"] and listed["next_page_token"] == ""
    assert bad == 400 and [m["type"] for m in fault_env.state.zoom_meetings] == [1, 1, 2]


def test_a_zoom_bridge_is_found_again_beyond_the_first_page(fault_env: Sandbox) -> None:
    from integrations.sandbox.zoom_app import SCHEDULED

    for n in range(650):
        fault_env.state.zoom_meetings.append({
            "id": 70000000000 + n, "type": SCHEDULED[0], "agenda": f"other {n}",
            "join_url": f"https://sandbox.zoom.local/j/{n}", "topic": "t", "_user": "me"})
    ctx = replace(make_ctx("page-three"), first_use=True)
    made = asyncio.run(run_action("video.create_meeting", {"provider": "zoom"}, ctx))
    [stored] = [m for m in fault_env.state.zoom_meetings if m["id"] == int(made.meeting_id)]
    assert made.created and stored["type"] == 2 and stored["start_time"].endswith("Z")
    again = asyncio.run(run_action("video.create_meeting", {"provider": "zoom"},
                                   replace(ctx, first_use=False, repeat_since=datetime.now(UTC))))
    assert not again.created and again.meeting_id == made.meeting_id
    assert len(fault_env.state.zoom_meetings) == 651
