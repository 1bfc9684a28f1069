"""The stakeholder update cadence, clock-controlled (every pass gets `now` explicitly) against
the sandbox's Slack through the real slack_sdk client: a SEV1 incident is reminded when its
update is due and not before, escalated once when overdue even by two overlapping runs (in
threads), left alone once resolved; an update moves the due time; a SEV3 has no cadence; a
reminder Slack refused is retried by the next run and never doubled."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from firelane.catalog import Catalog, Communications, ServiceEntry
from firelane.inputs import new_execution
from firelane.loader import parse_runbook
from firelane.models import (
    Incident,
    IncidentDraft,
    IncidentStatus,
    Role,
    Severity,
    TimelineEvent,
)
from firelane.store import Store, open_store
from firelane.updates import Audience, IncidentUpdate, UpdateState, UpdateStatus
from flows.records.cadence import (
    OVERDUE,
    due_reminder,
    manager_text,
    managers_of,
    next_due,
    overdue_text,
)
from flows.runs.run_runbook import run_runbook
from flows.runs.update_reminders import Outcome, remind_updates, remind_updates_once
from integrations.sandbox import Sandbox

pytestmark = pytest.mark.usefixtures("prefect_api")

WAR_ROOM = """version: 1
name: war-room
steps:
  - {id: channel, uses: slack.create_channel}
"""
CATALOG = Catalog(services={"web": ServiceEntry()},
                  communications=Communications(managers={"alice": "carol@example.com"}))


def _incident(store: Store, severity: Severity = Severity.SEV1, room: bool = True,
              title: str = "Checkout 5xx") -> tuple[Incident, str | None]:
    """A declared incident with commander alice and communicator bob, and its war room."""
    incident = store.declare_incident(IncidentDraft(title=title, severity=severity,
                                                    service="web"))
    store.assign_role(incident.id, Role.COMMANDER, "alice@example.com")
    store.assign_role(incident.id, Role.COMMUNICATOR,
                      "bob@example.com")
    channel = None
    if room:
        execution = store.create_execution(new_execution(
            parse_runbook(WAR_ROOM, "war-room.yaml"), incident, {}, sandbox=True))
        asyncio.run(run_runbook(execution.id))
        channel = str((store.step_records(execution.id)["channel"].outputs or {})["id"])
    return store.get_incident(incident.id), channel


def _pass(store: Store, at: datetime, by: str = "test") -> Outcome:
    return asyncio.run(remind_updates_once(store, CATALOG, at, by))


def _messages(sandbox: Sandbox, channel: str | None) -> list[str]:
    return [str(m["text"]) for m in sandbox.state.dump()["slack_messages"]
            if m["channel"] == channel and ("stakeholder update" in str(m["text"]))]


@pytest.fixture
def carol(sandbox: Sandbox) -> Sandbox:
    """The sandbox's Slack knows carol, alice's manager."""
    sandbox.state.slack_users["U0CAROL"] = {"id": "U0CAROL", "name": "carol",
                                            "real_name": "Carol Manager",
                                            "profile": {"email": "carol@example.com"}}
    return sandbox


def test_due_then_overdue_once_under_overlap_and_nothing_after_resolution(
        firelane_env: str, carol: Sandbox) -> None:
    store = open_store(firelane_env)
    incident, room = _incident(store)
    t0 = incident.created_at
    assert _pass(store, t0 + timedelta(minutes=29, seconds=59)) == Outcome()
    assert _messages(carol, room) == [] and _messages(carol, "DU0BOB") == []

    due = _pass(store, t0 + timedelta(minutes=30))
    assert len(due.reminded) == 1 and not due.escalated and not due.failed
    [dm] = _messages(carol, "DU0BOB")
    assert f"INC-{incident.number}" in dm and "update is due" in dm and "every 30m" in dm
    assert _messages(carol, room) == [dm], "the war room gets the same reminder"
    assert _messages(carol, "DU0ALICE") == [dm], "the commander is reminded too"
    assert _pass(store, t0 + timedelta(minutes=35)) == Outcome(), "due is sent once"

    results: list[Outcome] = []
    start = threading.Barrier(2)

    def run(name: str) -> None:
        start.wait()
        results.append(_pass(store, t0 + timedelta(minutes=40), by=name))

    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(len(r.escalated) for r in results) == 1 and not any(r.failed for r in results)
    [_, escalation] = _messages(carol, room)
    assert "10m overdue" in escalation and "<@U0ALICE> (commander)" in escalation
    assert "<@U0BOB> (communicator)" in escalation and "carol@example.com" in escalation
    [to_manager] = _messages(carol, "DU0CAROL")
    assert "overdue" in to_manager and "commander alice@example.com" in to_manager
    assert _pass(store, t0 + timedelta(minutes=55)) == Outcome(), "escalated once"

    store.set_status(incident.id, IncidentStatus.RESOLVED, actor="alice")
    assert _pass(store, t0 + timedelta(hours=3)) == Outcome()
    assert len(_messages(carol, room)) == 2 and len(_messages(carol, "DU0BOB")) == 1
    events = [e for e in store.timeline(incident.id) if e.kind == "update.reminder"]
    assert [e.details["level"] for e in events] == ["due", "overdue"]
    claims = store.update_reminders_of(incident.id)
    assert [(c["level"], c["due_at"]) for c in claims] == [
        ("due", t0 + timedelta(minutes=30)), ("overdue", t0 + timedelta(minutes=30))]
    assert "carol@example.com" in claims[1]["sent_to"] and room in claims[1]["sent_to"]


def test_an_update_moves_the_due_time_and_sev3_has_no_cadence(
        firelane_env: str, carol: Sandbox, tmp_path: Path) -> None:
    store = open_store(firelane_env)
    incident, room = _incident(store)
    t0 = incident.created_at
    assert len(_pass(store, t0 + timedelta(minutes=30)).reminded) == 1
    store.add_update(IncidentUpdate(
        incident_id=incident.id, status=UpdateStatus.INVESTIGATING, message="Looking into it",
        author="bob", via="cli", audience=Audience.INTERNAL,
        created_at=t0 + timedelta(minutes=35), published_at=t0 + timedelta(minutes=35)),
        _update_event(incident))
    assert next_due(incident, store.list_updates(incident.id), timedelta(minutes=30)) == \
        t0 + timedelta(minutes=65)
    assert _pass(store, t0 + timedelta(minutes=41)) == Outcome(), \
        "no escalation for the due time the update answered"
    assert _pass(store, t0 + timedelta(minutes=64, seconds=59)) == Outcome()
    assert len(_pass(store, t0 + timedelta(minutes=65)).reminded) == 1
    assert [c["due_at"] for c in store.update_reminders_of(incident.id)] == [
        t0 + timedelta(minutes=30), t0 + timedelta(minutes=65)]
    assert "last one" in _messages(carol, room)[-1]
    (tmp_path / "services.yaml").write_text(
        "services:\n  web: {manager: carol@example.com}\ncommunications: {grace_minutes: 5, "
        f"status_page: {{folder: '{tmp_path / 'status'}'}}}}\n")
    flow_said = asyncio.run(remind_updates(now=(t0 + timedelta(minutes=70)).isoformat()))
    assert len(flow_said["escalated"]) == 1 and not flow_said["failed"], flow_said
    assert len(_messages(carol, "DU0CAROL")) == 1, "the deployed flow reads the catalog"
    assert (tmp_path / "status" / "status.json").exists(), "the run refreshes the status page"

    minor, minor_room = _incident(store, Severity.SEV3, title="Slow admin page")
    later = _pass(store, minor.created_at + timedelta(hours=6))
    assert not any(f"INC-{minor.number} " in label for label in later.reminded + later.escalated)
    assert store.update_reminders_of(minor.id) == [] and _messages(carol, minor_room) == []


def test_a_reminder_slack_refused_is_retried_next_run_and_never_doubled(
        firelane_env: str, carol: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(firelane_env)
    incident, room = _incident(store)
    t0 = incident.created_at
    down = carol.faults.add(path="/slack/api/chat.postMessage", status=503, times=100)
    failed = _pass(store, t0 + timedelta(minutes=30))
    assert failed.reminded == [] and len(failed.failed) == 1 and down.hits >= 1
    assert store.update_reminders_of(incident.id) == [], "the claim was given back"
    assert not [e for e in store.timeline(incident.id) if e.kind == "update.reminder"]
    carol.faults.clear()

    monkeypatch.setenv("FIRELANE_RETRY_ATTEMPTS", "1")
    carol.faults.add(path="/slack/api/chat.postMessage", kind="apply_then_fail", times=1)
    lost_answer = _pass(store, t0 + timedelta(minutes=35))
    assert len(lost_answer.failed) == 1 and len(_messages(carol, room)) == 1, \
        "the war-room message landed, Slack's answer did not"
    carol.faults.clear()

    retried = _pass(store, t0 + timedelta(minutes=36))
    assert len(retried.reminded) == 1 and not retried.failed
    assert len(_messages(carol, room)) == 1, "found by its key, not posted twice"
    assert len(_messages(carol, "DU0BOB")) == 1
    [claim] = store.update_reminders_of(incident.id)
    assert claim["level"] == "due" and "bob@example.com" in claim["sent_to"]


def test_who_is_reminded_and_who_hears_when_overdue() -> None:
    t0 = datetime.fromisoformat("2026-11-30T08:00:00+00:00")
    catalog = Catalog(services={"web": ServiceEntry(manager="dana@example.com")},
                      communications=Communications(managers={"alice": "carol@example.com"},
                                                    grace_minutes=10))
    nobody = Incident(number=4, title="t", severity=Severity.SEV2, service="web",
                      created_at=t0)
    due = due_reminder(nobody, [], catalog, t0 + timedelta(minutes=60))
    assert due is not None and due.remind == [] and due.level == "due"
    late = due_reminder(nobody, [], catalog, t0 + timedelta(minutes=70))
    assert late is not None and late.level == OVERDUE and late.managers == ["dana@example.com"]
    said = overdue_text(late, {}, t0 + timedelta(minutes=70))
    assert "nobody is named" in said and "tell them yourself: dana@example.com" in said
    assert "Told by DM: dana@example.com" in overdue_text(
        late, {"dana@example.com": "<@U0DANA>"}, t0 + timedelta(minutes=70))
    led = nobody.model_copy(update={"commander": "alice@example.com", "communicator": "@U0BOB"})
    assert managers_of(led, catalog) == ["dana@example.com", "carol@example.com"]
    reminded = due_reminder(led, [], catalog, t0 + timedelta(minutes=60))
    assert reminded is not None and reminded.remind == ["alice@example.com", "@U0BOB"]
    assert due_reminder(led.model_copy(update={"severity": Severity.SEV3}), [], catalog,
                        t0 + timedelta(days=1)) is None
    assert due_reminder(led.model_copy(update={"status": IncidentStatus.RESOLVED}), [],
                        catalog, t0 + timedelta(days=1)) is None
    secret = led.model_copy(update={"private": True, "title": "Breach at acme"})
    private_late = due_reminder(secret, [], catalog, t0 + timedelta(minutes=75))
    assert private_late is not None and private_late.level == OVERDUE, "private: reminded too"
    to_manager = manager_text(private_late, t0 + timedelta(minutes=75))
    assert "Breach" not in to_manager and "(private incident)" in to_manager


def _update_event(incident: Incident) -> TimelineEvent:
    return TimelineEvent(incident_id=incident.id, kind="incident.update",
                         summary="Update #{seq} (internal, investigating): Looking into it")


def test_report_communications_agree_in_markdown_and_html(sqlite_url: str) -> None:
    from flows.records.report import build_report, render

    store = open_store(sqlite_url)
    incident = store.declare_incident(IncidentDraft(title="Checkout 5xx",
                                                    severity=Severity.SEV1, service="web"))
    t0 = incident.created_at
    script = [(12, 12, Audience.INTERNAL, UpdateStatus.INVESTIGATING, "Looking | into it"),
              (20, 25, Audience.PUBLIC, UpdateStatus.IDENTIFIED, "Bad deploy found"),
              (30, None, Audience.PUBLIC, UpdateStatus.MONITORING, "Not approved yet"),
              (72, 72, Audience.INTERNAL, UpdateStatus.MONITORING, "Rolled back, watching")]
    for written, published, audience, status, message in script:
        store.add_update(IncidentUpdate(
            incident_id=incident.id, status=status, message=message, author="bob", via="cli",
            audience=audience, created_at=t0 + timedelta(minutes=written),
            state=UpdateState.PUBLISHED if published else UpdateState.AWAITING_APPROVAL,
            published_at=t0 + timedelta(minutes=published) if published else None),
            _update_event(incident))
    report = build_report(store, incident, catalog=CATALOG)
    comms = report.comms
    assert comms.counts == {"internal": 2, "public": 1} and comms.unpublished == 1
    assert comms.largest_gap == timedelta(minutes=47) and comms.late
    assert comms.cadence == timedelta(minutes=30)
    assert comms.first_public == timedelta(minutes=25)

    md = render(report, "md").split("## Communications")[1].split("## Timeline")[0]
    html = render(report, "html").split("<h2>Communications</h2>")[1].split("<h2>Timeline")[0]
    assert "**2 internal**, **1 public** (1 more awaiting approval or rejected)" in md
    assert "Largest gap **47m 00s** against a **30m 00s** cadence (late)" in md
    assert "First public update **25m 00s** after declaration" in md
    assert "2 internal, 1 public (1 more awaiting approval or rejected)" in html
    assert "Largest gap 47m 00s against a 30m 00s cadence (late)" in html
    assert "First public update 25m 00s after declaration" in html
    assert "<span>Largest gap</span><b>47m 00s</b>" in html
    assert "<span>First public update</span><b>25m 00s</b>" in html
    for text in (md, html):
        assert text.count("Bad deploy found") == 1 and text.count("Rolled back, watching") == 1
        assert "Not approved yet" not in text
        assert f"{t0 + timedelta(minutes=25):%H:%M:%S}" in text
    assert "Looking \\| into it" in md and "Looking | into it" in html

    quiet = store.declare_incident(IncidentDraft(title="Slow", severity=Severity.SEV3,
                                                 service="web"))
    none_md = render(build_report(store, quiet, catalog=CATALOG), "md")
    assert "No updates were published." in none_md
