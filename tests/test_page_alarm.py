"""A page that fails after its retries is raised loudly: label, timeline, log, Slack notice."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

import integrations  # noqa: F401  (registers the vendor actions)
from firelane.inputs import new_execution
from firelane.loader import load_runbook
from firelane.models import IncidentDraft, Severity
from firelane.settings import Settings
from firelane.store import Store, open_store
from flows.respond.fast_path import start_urgent_steps
from integrations.sandbox import Sandbox
from tests.sandbox_fixtures import make_ctx, run_action

RUNBOOK = Path(__file__).resolve().parent.parent / "runbooks" / "declare-incident.yaml"


def _urgent_run(store: Store) -> str:
    incident = store.declare_incident(IncidentDraft(title="Checkout down",
                                                    severity=Severity.SEV1, service="web"))
    execution = store.create_execution(new_execution(load_runbook(RUNBOOK), incident, {},
                                                     sandbox=True))

    async def go() -> None:
        await asyncio.gather(*await start_urgent_steps(store, execution.id, Settings.from_env()))

    asyncio.run(go())
    return execution.id


@pytest.fixture
def alarm_env(sandbox: Sandbox, sqlite_url: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "none.yaml"))
    return open_store(sqlite_url)


def test_failed_page_flags_incident_and_tells_slack(alarm_env: Store, sandbox: Sandbox,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    alarm = asyncio.run(run_action("slack.create_channel", {"name": "sre-alarms"},
                                   make_ctx("alarm"))).id
    monkeypatch.setenv("FIRELANE_PAGE_FAILURE_CHANNEL", alarm)
    down = sandbox.faults.add(path="/pagerduty/v2/enqueue", status=500, times=100)
    with caplog.at_level(logging.ERROR, logger="firelane.page_alarm"):
        execution_id = _urgent_run(alarm_env)
    records = alarm_env.step_records(execution_id)
    assert records["page"].status.value == "failed" and down.hits == 4
    assert records["ticket"].status.value == "succeeded"
    incident = alarm_env.get_incident(alarm_env.get_execution(execution_id).incident_id)
    assert incident.labels.get("page_failed") == "true"
    [event] = [e for e in alarm_env.timeline(incident.id) if e.kind == "page.failed"]
    assert alarm in event.details["slack_notified"]
    notices = [m for m in sandbox.state.dump()["slack_messages"]
               if "PAGE FAILED" in m["text"] and m["channel"] == alarm]
    assert len(notices) == 1 and f"INC-{incident.number}" in notices[0]["text"]
    assert any("PAGE FAILED" in r.getMessage() for r in caplog.records)
    assert not sandbox.state.dump()["pd_incidents"]


def test_failed_page_with_slack_down_is_still_recorded(alarm_env: Store, sandbox: Sandbox,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELANE_PAGE_FAILURE_CHANNEL", "C0NOWHERE")
    sandbox.faults.add(path="/pagerduty/v2/enqueue", status=503, times=100)
    sandbox.faults.add(path="/slack/api/chat.postMessage", status=503, times=100)
    sandbox.faults.add(path="/slack/api/conversations.history", status=503, times=100)
    execution_id = _urgent_run(alarm_env)
    incident_id = alarm_env.get_execution(execution_id).incident_id
    [event] = [e for e in alarm_env.timeline(incident_id) if e.kind == "page.failed"]
    assert event.details["slack_notified"] == []
    assert "C0NOWHERE" in event.details["slack_failures"]
    assert alarm_env.get_incident(incident_id).labels["page_failed"] == "true"


def test_successful_page_raises_no_alarm(alarm_env: Store, sandbox: Sandbox) -> None:
    execution_id = _urgent_run(alarm_env)
    incident_id = alarm_env.get_execution(execution_id).incident_id
    assert not [e for e in alarm_env.timeline(incident_id) if e.kind == "page.failed"]
    assert "page_failed" not in alarm_env.get_incident(incident_id).labels
    assert alarm_env.get_execution(execution_id).first_action_at is not None
