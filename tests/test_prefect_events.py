"""Incident lifecycle changes as Prefect events, on the real Prefect test server: one event per
change from any surface (named `firelane.incident.<what>`, the incident as the resource with
service and severity labels), none twice when relays overlap or restart; and the documented
`prefect.yaml` trigger runs its deployment for a declared incident of its service, once, and
not for another service."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from firelane.commands import Actor, IncidentCommands
from firelane.models import IncidentDraft, IncidentStatus, Severity
from firelane.store import Store, open_store
from flows.respond.events import EventRelay

DOC = Path(__file__).resolve().parent.parent / "docs" / "how-to" / "run-an-incident.md"
pytestmark = pytest.mark.usefixtures("prefect_api")


def _api(path: str, body: dict[str, Any] | None = None) -> Any:
    from prefect.settings import PREFECT_API_URL

    url = f"{PREFECT_API_URL.value()}{path}"
    answer = httpx.post(url, json=body, timeout=10) if body is not None else httpx.get(url)
    answer.raise_for_status()
    return answer.json()


def _events(resource: str, expected: int) -> list[dict[str, Any]]:
    """The resource's events once `expected` have arrived (and a second more, so that a
    duplicate would have arrived too)."""
    query = {"filter": {"resource": {"id": [resource]},
                        "occurred": {"since": "2000-01-01T00:00:00Z"}}, "limit": 50}
    for _ in range(100):
        if len(_api("/events/filter", query)["events"]) >= expected:
            time.sleep(1.0)
            break
        time.sleep(0.2)
    return list(_api("/events/filter", query)["events"])


def _flush() -> None:
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()


def test_each_change_is_one_event_whatever_relays_see_it(firelane_env: str) -> None:
    store = open_store(firelane_env)
    cmds, ann = IncidentCommands(store), Actor("ann", "api", verified=True)
    incident = cmds.declare(IncidentDraft(title="checkout 5xx", severity=Severity.SEV2,
                                          service="checkout"), ann)
    cmds.acknowledge(f"INC-{incident.number}", ann)
    cmds.set_severity(f"INC-{incident.number}", Severity.SEV1, ann, "customers")
    cmds.note(f"INC-{incident.number}", "rolled back", ann)
    cmds.set_status(f"INC-{incident.number}", IncidentStatus.RESOLVED, ann, "fixed")
    relay = EventRelay(store)
    assert relay.pump() == 5 and relay.pump() == 0, "a relay emits each change once"
    assert EventRelay(store).pump() == 5, "a restarted relay re-reads its look-back"
    _flush()
    events = _events(f"firelane.incident.{incident.id}", 5)
    assert sorted(e["event"] for e in events) == sorted([
        "firelane.incident.declared", "firelane.incident.acknowledged",
        "firelane.incident.severity-changed", "firelane.incident.note-added",
        "firelane.incident.resolved"]), "the server keeps one event per change"
    declared = next(e for e in events if e["event"] == "firelane.incident.declared")
    assert declared["resource"]["prefect.resource.name"] == f"INC-{incident.number}"
    assert declared["resource"]["firelane.service"] == "checkout"
    assert declared["payload"]["via"] == "api" and declared["payload"]["actor"] == "ann"


def test_more_changes_than_one_page_are_all_emitted_once(firelane_env: str) -> None:
    store = open_store(firelane_env)
    cmds, ann = IncidentCommands(store), Actor("ann", "api", verified=True)
    incident = cmds.declare(IncidentDraft(title="storm", severity=Severity.SEV2,
                                          service="checkout"), ann)
    for n in range(6):
        cmds.note(f"INC-{incident.number}", f"note {n}", ann)
    relay = EventRelay(store, page=2)
    assert relay.pump() == 7 and relay.pump() == 0
    assert not store.lifecycle_since(relay.since, seen=relay.sent)
    _flush()
    assert len(_events(f"firelane.incident.{incident.id}", 7)) == 7


def _doc_trigger() -> dict[str, Any]:
    block = re.search(r"```yaml\n(deployments:.*?)```", DOC.read_text(), re.S)
    assert block is not None, "the documented example is in the how-to"
    [deployment] = yaml.safe_load(block.group(1))["deployments"]
    [trigger] = deployment["triggers"]
    return dict(trigger)


def test_documented_trigger_runs_its_deployment_once_for_its_service(firelane_env: str) -> None:
    from prefect.events import DeploymentEventTrigger

    flow_id = _api("/flows/", {"name": "notify-checkout-owners"})["id"]
    deployment_id = _api("/deployments/", {"name": "notify", "flow_id": flow_id})["id"]
    trigger = DeploymentEventTrigger(**_doc_trigger())
    trigger.set_deployment_id(deployment_id)
    automation = trigger.as_automation()
    automation.name = "notify-checkout-owners"
    _api("/automations/", automation.model_dump(mode="json"))
    time.sleep(2.0)

    store: Store = open_store(firelane_env)
    cmds, ann = IncidentCommands(store), Actor("ann", "cli")
    mine = cmds.declare(IncidentDraft(title="checkout 5xx", severity=Severity.SEV2,
                                      service="checkout"), ann)
    cmds.declare(IncidentDraft(title="db slow", severity=Severity.SEV2, service="db"), ann)
    assert EventRelay(store).pump() == 2
    _flush()
    runs: list[dict[str, Any]] = []
    for _ in range(150):
        runs = _api("/flow_runs/filter", {"flow_runs": {"deployment_id": {
            "any_": [deployment_id]}}})
        if runs:
            break
        time.sleep(0.2)
    time.sleep(2.0)
    runs = _api("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}})
    assert [r["parameters"] for r in runs] == [{"incident": f"INC-{mine.number}"}]


def test_a_private_incident_event_says_only_that_it_changed() -> None:
    from firelane.models import Incident, TimelineEvent
    from flows.respond.events import prefect_event

    incident = Incident(title="credential leak", severity=Severity.SEV1, service="auth",
                        private=True, number=4)
    event = TimelineEvent(incident_id=incident.id, kind="incident.declared", actor="sam",
                          summary="INC-4 declared: [SEV1] credential leak",
                          details={"service": "auth"})
    spec = prefect_event(event, incident, ["declare-incident"])
    assert spec is not None and spec["payload"] == {"private": True, "actor": "sam"}
    assert "credential leak" not in str(spec)
