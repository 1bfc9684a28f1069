"""Every action through the vendor's real client against the sandbox, happy paths and errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from firelane.errors import ConfigError, VendorRejected
from integrations.sandbox import Sandbox
from integrations.slack import channel_name
from tests.sandbox_fixtures import make_ctx, run_action


def act(name: str, inputs: dict[str, Any], step: str = "step", **kw: Any) -> Any:
    return asyncio.run(run_action(name, inputs, make_ctx(step, **kw)))


def test_jira_issue_lifecycle(sandbox: Sandbox) -> None:
    issue = act("jira.create_issue", {"project": "OPS", "summary": "DB down", "labels": ["x"]},
                "ticket")
    again = act("jira.create_issue", {"project": "OPS", "summary": "DB down"}, "ticket")
    assert issue.created and not again.created and again.key == issue.key == "OPS-1"
    assert issue.url.endswith("/browse/OPS-1")
    c1 = act("jira.add_comment", {"issue": "OPS-1", "body": "paged"}, "comment")
    c2 = act("jira.add_comment", {"issue": "OPS-1", "body": "paged"}, "comment")
    assert c1.created and not c2.created and c1.id == c2.id
    moved = act("jira.transition", {"issue": "OPS-1", "to": "In Progress"}, "t1")
    same = act("jira.transition", {"issue": "OPS-1", "to": "In Progress"}, "t2")
    assert moved.changed and not same.changed and same.from_status == "In Progress"
    with pytest.raises(VendorRejected, match="cannot go from In Progress to Closed"):
        act("jira.transition", {"issue": "OPS-1", "to": "Closed"}, "t3")
    att = act("jira.attach_file", {"issue": "OPS-1", "filename": "timeline.md",
                                   "content": "# INC-7"}, "attach")
    att2 = act("jira.attach_file", {"issue": "OPS-1", "filename": "timeline.md",
                                    "content": "# INC-7"}, "attach")
    assert att.size == 7 and att.created and not att2.created
    items = act("jira.create_action_items", {"project": "OPS", "parent": "OPS-1", "items": [
        {"title": "Add alert on queue depth", "due": "2026-12-01"},
        {"title": "Fix retry storm", "owner": "bob"}]}, "items")
    assert items.keys == ["OPS-2", "OPS-3"] and items.created == 2
    assert act("jira.create_action_items", {"project": "OPS", "parent": "OPS-1", "items": [
        {"title": "Add alert on queue depth"}, {"title": "Fix retry storm"}]}, "items").created == 0
    found = act("jira.search", {"jql": 'labels = "firelane-action-item" AND status != Done'})
    assert sorted(i["key"] for i in found.issues) == ["OPS-2", "OPS-3"]
    state = sandbox.state.dump()
    assert len(state["jira_issues"]) == 3 and len(state["jira_links"]) == 2
    assert len(state["jira_issues"]["OPS-1"]["comments"]) == 1
    with pytest.raises(VendorRejected, match="project"):
        act("jira.create_issue", {"project": "NOPE", "summary": "x"}, "bad")


def test_jira_cloud_mode_uses_enhanced_search(sandbox: Sandbox) -> None:
    from integrations.common import forget_pooled

    forget_pooled()
    sandbox.state.jira_mode = "Cloud"
    try:
        act("jira.create_issue", {"project": "WEB", "summary": "cloud"}, "c")
        assert act("jira.create_issue", {"project": "WEB", "summary": "cloud"}, "c").key == \
            "WEB-1"
        assert any("/search/jql" in r for r in sandbox.state.requests)
    finally:
        sandbox.state.jira_mode = "Server"
        forget_pooled()


def test_pagerduty_page_lifecycle(sandbox: Sandbox) -> None:
    page = act("pagerduty.trigger", {"summary": "Checkout down"}, "page")
    again = act("pagerduty.trigger", {"summary": "Checkout down"}, "page")
    assert page.dedup_key == again.dedup_key
    assert len(sandbox.state.pd_incidents) == 1
    note = act("pagerduty.add_note", {"dedup_key": page.dedup_key, "content": "rolling back"},
               "note")
    assert note.created and not act("pagerduty.add_note", {
        "dedup_key": page.dedup_key, "content": "rolling back"}, "note").created
    act("pagerduty.acknowledge", {"dedup_key": page.dedup_key})
    act("pagerduty.resolve", {"dedup_key": page.dedup_key})
    [incident] = sandbox.state.pd_incidents.values()
    assert incident["status"] == "resolved" and len(incident["notes"]) == 1
    oncall = act("pagerduty.get_oncall", {"level": 1})
    assert oncall.emails == ["alice@example.com"]
    log = act("pagerduty.log_entries", {"dedup_key": page.dedup_key})
    kinds = [e["type"] for e in log.entries]
    assert kinds == ["trigger_log_entry", "notify_log_entry", "annotate_log_entry",
                     "acknowledge_log_entry", "resolve_log_entry"]


def test_pagerduty_log_entries_follow_pagination(sandbox: Sandbox) -> None:
    page = act("pagerduty.trigger", {"summary": "many notes"}, "page")
    for n in range(120):
        act("pagerduty.add_note", {"dedup_key": page.dedup_key, "content": f"n{n}"}, f"n{n}")
    log = act("pagerduty.log_entries", {"dedup_key": page.dedup_key})
    assert len(log.entries) == 122
    assert any("offset=100" in r for r in sandbox.state.requests)


def test_slack_war_room(sandbox: Sandbox) -> None:
    channel = act("slack.create_channel", {}, "channel")
    assert channel.name == "inc-7-checkout" and channel.created
    reused = act("slack.create_channel", {}, "channel-other-step")
    assert reused.id == channel.id and not reused.created
    invited = act("slack.invite", {"channel": channel.id,
                                   "users": ["alice@example.com", "ghost@example.com"]})
    assert invited.user_ids == ["U0ALICE"] and invited.not_found == ["ghost@example.com"]
    act("slack.invite", {"channel": channel.id, "users": ["U0ALICE"]}, "again")
    act("slack.set_topic", {"channel": channel.id, "topic": "SEV1 checkout"})
    msg = act("slack.post_message", {"channel": channel.id, "text": "war room open",
                                     "pin": True}, "announce")
    same = act("slack.post_message", {"channel": channel.id, "text": "war room open",
                                      "pin": True}, "announce")
    assert msg.created and not same.created and same.ts == msg.ts
    act("slack.add_bookmark", {"channel": channel.id, "title": "Ticket",
                               "link": "https://jira.example/browse/OPS-1"})
    up = act("slack.upload_file", {"channel": channel.id, "filename": "timeline.md",
                                   "content": "# INC-7\n", "title": "Timeline",
                                   "comment": "The timeline so far"})
    history = act("slack.history", {"channel": channel.id})
    assert [(m["text"], m["files"]) for m in history.messages] == [
        ("war room open", []), ("The timeline so far", ["timeline.md"])]
    assert history.messages[0]["pinned"]
    with pytest.raises(VendorRejected, match="channel_not_found"):
        act("slack.upload_file", {"channel": "C404", "filename": "t.md", "content": "x"},
            "nowhere")
    assert act("slack.archive", {"channel": channel.id}).archived
    assert act("slack.archive", {"channel": channel.id}, "again").archived
    state = sandbox.state.dump()
    [room] = state["slack_channels"].values()
    assert room["members"] == ["U0FIRELANE", "U0ALICE"] and room["is_archived"]
    assert room["topic"]["value"] == "SEV1 checkout" and len(room["bookmarks"]) == 1
    assert state["slack_files"][up.file_id]["uploaded_bytes"] == 8
    with pytest.raises(VendorRejected, match="channel_not_found"):
        act("slack.post_message", {"channel": "C404", "text": "x"}, "lost")


def test_channel_names_are_valid() -> None:
    assert channel_name("INC 42: Checkout/Payments — EU!") == "inc-42-checkout-payments-eu"
    assert channel_name("!!!") == "incident"
    assert len(channel_name("x" * 200)) == 80


def test_video_bridges(sandbox: Sandbox) -> None:
    jitsi = act("video.create_meeting", {"provider": "jitsi"}, "bridge")
    assert jitsi.url.startswith("https://meet.jit.si/Firelane-INC7-Checkout-")
    assert act("video.create_meeting", {"provider": "jitsi"}, "bridge").url == jitsi.url
    zoom = act("video.create_meeting", {}, "bridge")
    again = act("video.create_meeting", {}, "bridge")
    assert zoom.provider == "zoom" and zoom.created and not again.created
    assert again.meeting_id == zoom.meeting_id and len(sandbox.state.zoom_meetings) == 1


def test_no_sandbox_running_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRELANE_SANDBOX_URL", raising=False)
    with pytest.raises(ConfigError, match="no sandbox is running"):
        act("slack.create_channel", {}, "x")


def test_dry_run_changes_nothing(sandbox: Sandbox) -> None:
    ctx = make_ctx("page")
    ctx.dry_run = True
    out = asyncio.run(run_action("pagerduty.trigger", {"summary": "x"}, ctx))
    assert out.dry_run and sandbox.state.pd_incidents == {}


def test_a_dm_to_a_user_id_goes_through_their_dm_channel_once(sandbox: Sandbox) -> None:
    ctx = make_ctx("dm")
    first = asyncio.run(run_action("slack.post_message",
                                   {"channel": "U0ALICE", "text": "An update is due"}, ctx))
    again = asyncio.run(run_action("slack.post_message",
                                   {"channel": "U0ALICE", "text": "An update is due"}, ctx))
    assert first.channel.startswith("D") and (first.created, again.created) == (True, False)
    assert [m["channel"] for m in sandbox.state.slack_messages] == [first.channel]
    assert any(r.startswith("POST /slack/api/conversations.open") for r in sandbox.state.requests)
    from integrations.slack.block import SlackCredentials

    client = SlackCredentials.for_sandbox(sandbox.url, sandbox.ca_file).get_client()
    with pytest.raises(Exception, match="channel_not_found"):
        client.conversations_history(channel="U0ALICE")
