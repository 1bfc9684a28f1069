"""The incident commander's verbs, one implementation (`firelane.commands`) behind two surfaces
tested here from one table: the CLI (`firelane declare`, `firelane incidents
ack|severity|role|note|status|open`) and the Prefect UI's `incident-command` flow (run against
the real Prefect test server). Each change is on the timeline once, with its actor, its surface
and `verified: false` (neither surface proves who is typing); a change that changes nothing
records nothing; bad input is refused with what to fix; two people changing the severity at
once both land, in order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, cast

import pytest

from firelane.commands import Actor, IncidentCommands
from firelane.models import IncidentDraft, IncidentStatus, Severity
from firelane.store import Store, open_store
from flows.cli import main
from flows.runs.incident_command import Verb, incident_command

Surface = Callable[[str, str, str, str], bool]


def _cli(ref: str, verb: str, value: str, reason: str) -> bool:
    argv = {"acknowledge": ["incidents", "ack", ref],
            "status": ["incidents", "status", ref, value, "--no-report"],
            "severity": ["incidents", "severity", ref, value],
            "role": ["incidents", "role", ref, *value.split(" ", 1)],
            "note": ["incidents", "note", ref, value]}[verb]
    if reason and verb in ("status", "severity"):
        argv += ["--reason", reason]
    try:
        return main([*argv, "--as", "alice"]) == 0
    except SystemExit:
        return False


def _ui(ref: str, verb: str, value: str, reason: str) -> bool:
    running = incident_command(ref, Verb(verb), value, "alice", reason, return_state=True)
    state: Any = asyncio.run(cast(Coroutine[Any, Any, Any], running))
    return bool(state.is_completed())


SURFACES: dict[str, tuple[Surface, str]] = {"cli": (_cli, "cli"), "ui": (_ui, "prefect-ui")}
TABLE: list[tuple[str, str, str, Callable[[Any], object], object]] = [
    ("acknowledge", "", "", lambda i: (i.status.value, i.commander),
     ("acknowledged", "alice")),
    ("severity", "SEV1", "customers affected", lambda i: i.severity.value, "SEV1"),
    ("role", "communicator bob", "", lambda i: i.communicator, "bob"),
    ("role", "investigator carol", "", lambda i: i.investigators, ["carol"]),
    ("note", "rolled back deploy 42", "", lambda i: i.status.value, "declared"),
    ("status", "mitigated", "rollback verified", lambda i: i.status.value, "mitigated"),
]


def _incident(store: Store, title: str = "checkout 5xx",
              severity: Severity = Severity.SEV2) -> str:
    incident = store.declare_incident(IncidentDraft(title=title, severity=severity,
                                                    service="web"))
    return f"INC-{incident.number}"


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("surface", sorted(SURFACES))
@pytest.mark.parametrize(("verb", "value", "reason", "read", "expected"), TABLE,
                         ids=[f"{row[0]}-{row[1] or 'plain'}" for row in TABLE])
def test_each_verb_on_each_surface_changes_once_and_says_who_and_where(
        firelane_env: str, surface: str, verb: str, value: str, reason: str,
        read: Callable[[Any], object], expected: object) -> None:
    store = open_store(firelane_env)
    ref = _incident(store)
    call, via = SURFACES[surface]
    before = len(store.timeline(store.get_incident(ref).id))
    assert call(ref, verb, value, reason)
    incident = store.get_incident(ref)
    assert read(incident) == expected
    [event] = store.timeline(incident.id)[before:]
    assert event.actor == "alice" and event.details["via"] == via
    assert event.details["verified"] is False, "neither surface proves who is typing"
    if reason:
        assert reason in event.summary
    if verb == "note":
        assert event.kind == "incident.note" and event.summary == value
    assert call(ref, verb, value, reason), "repeating a change is not an error"
    assert len(store.timeline(incident.id)) == before + (1 if verb == "note" else 0) + 1, \
        "a change that changes nothing records nothing"


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("surface", sorted(SURFACES))
@pytest.mark.parametrize(("verb", "value"), [("severity", "SEV9"), ("status", "fixed"),
                                             ("role", "boss dan"), ("note", "  ")])
def test_bad_values_and_unknown_incidents_are_refused_and_change_nothing(
        firelane_env: str, surface: str, verb: str, value: str) -> None:
    store = open_store(firelane_env)
    ref = _incident(store)
    call, _ = SURFACES[surface]
    events = len(store.timeline(store.get_incident(ref).id))
    assert not call(ref, verb, value, "")
    assert not call("INC-404", "acknowledge", "", "")
    assert len(store.timeline(store.get_incident(ref).id)) == events


def test_cli_declare_needs_no_file_and_refuses_bad_input_clearly(
        firelane_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store(firelane_env)
    assert main(["declare", "--title", "db slow", "--severity", "SEV1", "--service", "db",
                 "--commander", "dan", "--label", "team=data", "--as", "erin"]) == 0
    assert "INC-1 declared: [SEV1] db slow · commander dan" in capsys.readouterr().out
    [incident] = store.list_incidents()
    assert (incident.commander, incident.labels) == ("dan", {"team": "data"})
    [declared] = store.timeline(incident.id)
    assert declared.actor == "erin" and declared.details["via"] == "cli"
    assert main(["declare", "--title", "", "--severity", "SEV1", "--service", "db"]) == 1
    assert "--title: String should have at least 1 character" in capsys.readouterr().err
    assert main(["declare", "--title", "x", "--severity", "SEV1", "--service", "db",
                 "--label", "oops"]) == 1
    assert "--label 'oops': write KEY=VALUE" in capsys.readouterr().err
    assert len(store.list_incidents()) == 1


def test_open_lists_most_severe_then_oldest(firelane_env: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store(firelane_env)
    for title, severity in (("a", Severity.SEV3), ("b", Severity.SEV1), ("c", Severity.SEV3),
                            ("d", Severity.SEV1)):
        _incident(store, title, severity)
    cmds = IncidentCommands(store)
    cmds.set_status("INC-4", IncidentStatus.RESOLVED, Actor("x", "cli"))
    assert [i.title for i in cmds.open_incidents()] == ["b", "a", "c"]
    capsys.readouterr()
    assert main(["incidents", "status", "INC-4", "resolved", "--no-report"]) == 0
    assert capsys.readouterr().out.strip() == \
        "INC-4: nothing to change (INC-4 is already resolved)"
    assert main(["incidents", "open"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["INC-2", "INC-1", "INC-3"]


def test_two_people_changing_severity_at_once_both_land_in_order(firelane_env: str) -> None:
    store = open_store(firelane_env)
    ref = _incident(store)
    cmds = IncidentCommands(store)
    start = threading.Barrier(2)

    def change(to: Severity, who: str) -> None:
        start.wait()
        cmds.set_severity(ref, to, Actor(who, "cli"), f"{who} says so")
    threads = [threading.Thread(target=change, args=args) for args in (
        (Severity.SEV1, "ann"), (Severity.SEV4, "ben"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    incident = store.get_incident(ref)
    changes = [e for e in store.timeline(incident.id) if e.kind == "incident.severity"]
    assert {e.actor for e in changes} == {"ann", "ben"}, "both recorded"
    assert changes[0].details["from"] == "SEV2"
    assert changes[1].details["from"] == changes[0].details["to"], "applied one after the other"
    assert incident.severity.value == changes[1].details["to"], "the later one wins"


def test_cli_severity_upgrade_queues_newly_matching_runbooks_once(
        firelane_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store(firelane_env)
    ref = _incident(store, "checkout 5xx", Severity.SEV3)
    assert main(["incidents", "severity", ref, "SEV2", "--as", "ann"]) == 0
    assert "Severity SEV3 → SEV2; started declare-incident" in capsys.readouterr().out
    assert main(["incidents", "severity", ref, "SEV1", "--as", "ann"]) == 0
    assert "started" not in capsys.readouterr().out, "declare-incident fitted SEV2 already"
    [queued] = store.list_executions(store.get_incident(ref).id)
    assert (queued.runbook_name, queued.status) == ("declare-incident", "pending"), \
        "left for the responders"
