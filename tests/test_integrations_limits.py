"""Vendor limits: each fitted by the actions and refused by the sandbox at, below and above it."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest

from integrations.jira import limits as jira
from integrations.limits import MARKER, fit, fit_key, single_line, transliterate, utf16_units
from integrations.pagerduty import limits as pagerduty
from integrations.sandbox import Sandbox
from integrations.slack import limits as slack
from integrations.slack.limits import channel_name
from integrations.video import limits as zoom
from tests.sandbox_fixtures import make_ctx, run_action

EMOJI = "🔥"


def act(name: str, inputs: dict[str, Any], step: str = "step") -> tuple[Any, list[Any]]:
    ctx = make_ctx(step)
    out = asyncio.run(run_action(name, inputs, ctx))
    return out, ctx.events


def http(sandbox: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.url, verify=sandbox.ca_file, timeout=10)


@pytest.mark.parametrize("size", [254, 255, 256])
def test_fit_counts_in_the_vendors_unit_and_marks_a_cut(size: int) -> None:
    text = "x" * size
    fitted = fit(text, 255)
    assert fitted == text if size <= 255 else fitted == "x" * 254 + MARKER
    assert len(fitted) <= 255
    emoji = EMOJI * size
    in_units = fit(emoji, 255, utf16_units)
    assert utf16_units(in_units) <= 255 and in_units.endswith(MARKER)
    assert "\ud83d" not in in_units


def test_single_line_and_keys() -> None:
    assert single_line("db\r\n down\tnow\u2028!") == "db down now !"
    assert fit_key("k" * 255, 255) == "k" * 255
    long_a, long_b = "a" * 319, "a" * 318 + "b"
    assert len(fit_key(long_a, 255)) == 255 and fit_key(long_a, 255) == fit_key(long_a, 255)
    assert fit_key(long_a, 255) != fit_key(long_b, 255)
    assert fit_key(long_a, 255).startswith("a" * 100)


def test_channel_names_are_transliterated_not_stripped() -> None:
    assert channel_name("Überweisungen") == "uberweisungen"
    assert channel_name("Straße Ærø") == "strasse-aero"
    cjk = channel_name("支付 down")
    assert cjk.startswith("u") and cjk.endswith("-down") and cjk != channel_name("结账 down")
    assert cjk == channel_name("支付 down")
    assert transliterate("café — ok") == "cafe   ok"
    for size in (79, 80, 81):
        name = channel_name("a" * size)
        assert len(name) == min(size, 80) and slack.CHANNEL_NAME_ALLOWED.match(name)


@pytest.mark.parametrize("size", [254, 255, 256])
def test_jira_summary_is_fitted_and_the_full_title_kept(sandbox: Sandbox, size: int) -> None:
    title = "t" * size
    issue, events = act("jira.create_issue", {"project": "OPS", "summary": title,
                                              "description": "body"}, "ticket")
    fields = sandbox.state.jira_issues[issue.key]["fields"]
    assert len(fields["summary"]) == min(size, 255) and bool(events) == (size > 255)
    assert fields["description"] == (f"{title}\n\nbody" if size > 255 else "body")
    emoji_title = f"{EMOJI * size}\nsecond line"
    issue, events = act("jira.create_issue", {"project": "OPS", "summary": emoji_title},
                        "ticket2")
    fields = sandbox.state.jira_issues[issue.key]["fields"]
    assert utf16_units(fields["summary"]) <= 255 and "\n" not in fields["summary"]
    assert fields["summary"].endswith(MARKER) and fields["description"] == emoji_title
    assert events[0].kind == "vendor.fitted" and events[0].details["full"] == emoji_title


@pytest.mark.parametrize("units", [254, 255, 256])
def test_sandbox_jira_refuses_what_jira_refuses(sandbox: Sandbox, units: int) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()}
    with http(sandbox) as client:
        def create(summary: str) -> httpx.Response:
            return client.post("/jira/rest/api/2/issue", headers=auth, json={"fields": {
                "project": {"key": "OPS"}, "summary": summary, "issuetype": {"name": "Task"}}})

        got = create(EMOJI * (units // 2) + "x" * (units % 2))
        if units <= 255:
            assert got.status_code == 201
        else:
            assert got.status_code == 400 and got.json() == {
                "errorMessages": [], "errors": {"summary": jira.SUMMARY_TOO_LONG_ERROR}}
        multi = create("two\nlines")
        assert multi.status_code == 400
        assert multi.json()["errors"]["summary"] == jira.SUMMARY_NEWLINE_ERROR


@pytest.mark.parametrize("size", [254, 255, 256, 319])
def test_pagerduty_dedup_keys_are_hashed_and_refused(sandbox: Sandbox, size: int) -> None:
    key = "k" * size
    page, events = act("pagerduty.trigger", {"summary": "s" * 1025, "dedup_key": key}, "page")
    assert page.dedup_key == fit_key(key, 255) and len(page.dedup_key) <= 255
    assert (page.dedup_key == key) == (size <= 255)
    [incident] = sandbox.state.pd_incidents.values()
    assert incident["incident_key"] == page.dedup_key
    assert any(e.details["field"] == "payload.summary" for e in events)
    resolved, _ = act("pagerduty.resolve", {"dedup_key": key}, "resolve")
    assert resolved.dedup_key == page.dedup_key and incident["status"] == "resolved"
    with http(sandbox) as client:
        got = client.post("/pagerduty/v2/enqueue", json={
            "routing_key": "r" * 32, "event_action": "trigger", "dedup_key": key,
            "payload": {"summary": "s" * (size * 4), "source": "x", "severity": "info"}})
    if size <= 255:
        assert got.status_code == 202
    else:
        assert got.status_code == 400 and got.json()["status"] == "invalid event"
        assert got.json()["message"] == "Event object is invalid"
        assert any("dedup_key" in e for e in got.json()["errors"])
        assert pagerduty.DEDUP_KEY.maximum == 255


@pytest.mark.parametrize("size", [1023, 1024, 1025])
def test_pagerduty_summary_limit(sandbox: Sandbox, size: int) -> None:
    act("pagerduty.trigger", {"summary": "s" * size}, "page")
    [incident] = sandbox.state.pd_incidents.values()
    assert len(incident["title"]) == min(size, 1024)
    assert incident["title"].endswith(MARKER) == (size > 1024)
    with http(sandbox) as client:
        got = client.post("/pagerduty/v2/enqueue", json={
            "routing_key": "r" * 32, "event_action": "trigger",
            "payload": {"summary": "s" * size, "source": "x", "severity": "info"}})
    assert got.status_code == (202 if size <= 1024 else 400)


def test_pagerduty_note_answers_200_as_documented(sandbox: Sandbox) -> None:
    page, _ = act("pagerduty.trigger", {"summary": "down"}, "page")
    [incident_id] = sandbox.state.pd_incidents
    with http(sandbox) as client:
        got = client.post(f"/pagerduty/incidents/{incident_id}/notes",
                          headers={"Authorization": "Token token=x", "From": "a@example.com"},
                          json={"note": {"content": "hello"}})
    assert got.status_code == 200 and got.json()["note"]["content"] == "hello"
    assert act("pagerduty.add_note", {"dedup_key": page.dedup_key, "content": "n"},
               "note")[0].created


def _slack(client: httpx.Client, method: str, **args: Any) -> dict[str, Any]:
    got = client.post(f"/slack/api/{method}", headers={"Authorization": "Bearer xoxb-t"},
                      data=args)
    assert got.status_code == 200
    body: dict[str, Any] = got.json()
    return body


@pytest.mark.parametrize("size", [79, 80, 81])
def test_slack_channel_name_limit(sandbox: Sandbox, size: int) -> None:
    made, _ = act("slack.create_channel", {"name": "c" * size}, "channel")
    assert len(made.name) == min(size, 80)
    with http(sandbox) as client:
        got = _slack(client, "conversations.create", name="d" * size)
        assert got["ok"] == (size <= 80)
        if size > 80:
            assert got == {"ok": False, "error": "invalid_name_maxlength"}
        assert _slack(client, "conversations.create", name="Über")["error"] == \
            "invalid_name_specials"


@pytest.mark.parametrize("size", [249, 250, 251])
def test_slack_topic_is_fitted_and_refused_past_250(sandbox: Sandbox, size: int) -> None:
    made, _ = act("slack.create_channel", {"name": "topics"}, "channel")
    topic, events = act("slack.set_topic", {"channel": made.id, "topic": "t" * size}, "topic")
    assert len(topic.topic) == min(size, 250) and bool(events) == (size > 250)
    assert sandbox.state.slack_channels[made.id]["topic"]["value"] == topic.topic
    with http(sandbox) as client:
        got = _slack(client, "conversations.setTopic", channel=made.id, topic="u" * size)
    assert got == ({"ok": False, "error": "too_long"} if size > 250 else got)
    assert got["ok"] == (size <= slack.TOPIC.maximum)


@pytest.mark.parametrize("size", [3999, 4000, 4001, 40001, 50000])
def test_slack_long_text_is_cut_and_posted_in_full_in_the_thread(sandbox: Sandbox,
                                                                 size: int) -> None:
    made, _ = act("slack.create_channel", {"name": "msgs"}, "channel")
    text = "".join(chr(ord("a") + n % 26) for n in range(size))
    for _ in range(2):
        posted, _ = act("slack.post_message", {"channel": made.id, "text": text}, "post")
    sent = [m for m in sandbox.state.slack_messages if m["channel"] == made.id]
    [top] = [m for m in sent if "thread_ts" not in m]
    thread = [m["text"] for m in sent if m.get("thread_ts") == top["ts"]]
    assert top["ts"] == posted.ts and len(top["text"]) == min(size, 4000)
    assert top["text"].endswith(MARKER) == (size > 4000)
    if size <= 4000:
        assert not thread
    elif size <= 40000:
        assert "".join(thread) == text
    else:
        assert len(thread) == 10 and text.startswith("".join(thread)[:-1])
    assert all(len(piece) <= 4000 for piece in thread)
    with http(sandbox) as client:
        got = _slack(client, "chat.postMessage", channel=made.id, text="n" * size)
    assert got["ok"] == (size <= slack.MESSAGE_HARD.maximum)
    if size > slack.MESSAGE_HARD.maximum:
        assert got["error"] == "msg_too_long"


def test_thread_pieces_are_bounded() -> None:
    from integrations.slack.overflow import MAX_PIECES, pieces

    assert pieces("x" * 8000) == ["x" * 4000] * 2
    many = pieces("y" * 4000 * (MAX_PIECES + 2))
    assert len(many) == MAX_PIECES and many[-1].endswith(MARKER) and len(many[-1]) == 4000


@pytest.mark.parametrize("size", [199, 200, 201])
def test_zoom_topic_limit(sandbox: Sandbox, size: int) -> None:
    meeting, _ = act("video.create_meeting", {"topic": "z" * size + "\n"}, "bridge")
    [stored] = sandbox.state.zoom_meetings
    assert len(stored["topic"]) == min(size, 200) and "\n" not in stored["topic"]
    assert meeting.provider == "zoom"
    with http(sandbox) as client:
        token = client.post("/zoom/oauth/token", params={
            "grant_type": "account_credentials", "account_id": "acc"},
            headers={"Authorization": "Basic " + base64.b64encode(b"id:secret").decode()})
        got = client.post("/zoom/v2/users/me/meetings", json={"topic": "y" * size, "type": 1},
                          headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    if size <= zoom.TOPIC.maximum:
        assert got.status_code == 201
    else:
        assert got.status_code == 400 and got.json()["code"] == 300
        assert got.json()["errors"][0]["field"] == "topic"


@pytest.mark.parametrize("size", [254, 255, 256])
def test_action_item_titles_are_fitted_like_summaries(sandbox: Sandbox, size: int) -> None:
    title = "a" * size
    items, events = act("jira.create_action_items", {"project": "OPS", "items": [
        {"title": title, "owner": "bob"}]}, "items")
    fields = sandbox.state.jira_issues[items.keys[0]]["fields"]
    assert len(fields["summary"]) == min(size, 255) and bool(events) == (size > 255)
    assert fields["description"] == (f"{title}\n\nOwner: bob" if size > 255 else "Owner: bob")


@pytest.mark.parametrize("size", [249, 250, 251])
def test_bookmark_titles_are_fitted(sandbox: Sandbox, size: int) -> None:
    made, _ = act("slack.create_channel", {"name": "marks"}, "channel")
    act("slack.add_bookmark", {"channel": made.id, "title": "b" * size,
                               "link": "https://example.com"}, "mark")
    [mark] = sandbox.state.slack_channels[made.id]["bookmarks"]
    assert len(mark["title"]) == min(size, slack.BOOKMARK_TITLE.maximum)
