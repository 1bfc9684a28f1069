"""`declare-incident` on the sandbox with a hostile title: every vendor gets a value it accepts,
the war room is complete, and the full title is on the incident and its timeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firelane.models import TITLE_MAX, IncidentDraft, Severity, fit_title
from firelane.store import open_store
from flows.cli import main
from integrations.limits import utf16_units
from integrations.sandbox import Sandbox

HOSTILE = ("Checkout 🔥 down\nfor Überweisungen 支付\r\n" + "🚨 payments failing " * 120)[:2000]


@pytest.mark.parametrize("size", [TITLE_MAX - 1, TITLE_MAX, TITLE_MAX + 1, 2000])
def test_incident_title_is_cut_the_way_the_intake_cuts_it(size: int) -> None:
    title = "t" * size
    draft = IncidentDraft(title=title, severity=Severity.SEV2, service="web",
                          description="more")
    assert draft.title == fit_title(title) and len(draft.title) == min(size, TITLE_MAX)
    assert draft.title.endswith("…") == (size > TITLE_MAX)
    assert draft.description == (f"{title}\n\nmore" if size > TITLE_MAX else "more")


@pytest.mark.usefixtures("prefect_api")
def test_hostile_title_still_opens_the_whole_war_room(firelane_env: str, sandbox: Sandbox,
                                                      tmp_path: Path) -> None:
    incident_file = tmp_path / "incident.json"
    incident_file.write_text(json.dumps({"title": HOSTILE, "severity": "SEV1",
                                         "service": "payments"}))
    assert main(["run", "declare-incident", "--incident", str(incident_file), "--sandbox"]) == 0
    state = sandbox.state.dump()
    [issue] = state["jira_issues"].values()
    summary = issue["fields"]["summary"]
    assert "\n" not in summary and utf16_units(summary) <= 255 and summary.endswith("…")
    assert fit_title(HOSTILE) in issue["fields"]["description"]
    [page] = state["pd_incidents"].values()
    assert len(page["incident_key"]) <= 255 and len(page["title"]) <= 1024
    [room] = state["slack_channels"].values()
    assert room["name"] == "inc-1-payments" and len(room["topic"]["value"]) <= 250
    assert issue["key"] in room["topic"]["value"]
    [announce] = state["slack_messages"]
    assert issue["key"] in announce["text"] and announce["pinned"]
    assert len(room["bookmarks"]) == 4
    [meeting] = state["zoom_meetings"]
    assert len(meeting["topic"]) <= 200 and "\n" not in meeting["topic"]
    store = open_store(firelane_env)
    [incident] = store.list_incidents()
    assert incident.title == fit_title(HOSTILE) and HOSTILE in incident.description
    fitted = [e for e in store.timeline(incident.id) if e.kind == "vendor.fitted"]
    assert {e.details["field"] for e in fitted} >= {"summary", "topic"}
    [jira_fit] = [e for e in fitted if e.details["vendor"] == "jira"]
    assert jira_fit.details["full"] == f"[SEV1] {fit_title(HOSTILE)}"
    assert all(fit_title(HOSTILE) in e.details["full"] for e in fitted)
