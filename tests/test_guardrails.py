"""The engine's guardrails in a real `run-runbook` flow: kill switch and maintenance windows,
the per-service lock (a strict Prefect global concurrency limit), the hourly rate limit, and
dry runs that touch nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from firelane.models import TimelineEvent, utcnow
from firelane.store import Store, open_store
from firelane.timeparse import parse_time
from flows.cli import main
from flows.runs.run_runbook import run_runbook_result
from tests.helpers import prepare, statuses
from tests.plugin_actions import effects

pytestmark = pytest.mark.usefixtures("prefect_api")

RUNBOOK = """version: 1
name: fix-web
guardrails: {max_runs_per_hour: %(limit)d}
steps:
  - {id: page, uses: test.effect, with: {name: "page-%(tag)s"}}
  - {id: fix, uses: test.change, needs: [page], on_locked: %(on_locked)s,
     with: {name: "fix-%(tag)s", before_seconds: %(hold)s}}
  - {id: after, uses: test.change, needs: [fix], with: {name: "after-%(tag)s"}}
"""


@pytest.fixture
def fl_store(firelane_env: str) -> Store:
    return open_store(firelane_env)


def _runbook(tag: str, limit: int = 3, on_locked: str = "wait", hold: float = 0) -> str:
    return RUNBOOK % {"tag": tag, "limit": limit, "on_locked": on_locked, "hold": hold}


def _events(store: Store, incident_id: str, kind: str) -> list[TimelineEvent]:
    return [e for e in store.timeline(incident_id) if e.kind == kind]


def test_kill_switch_skips_destructive_steps_and_lets_the_page_through(fl_store: Store) -> None:
    assert main(["automation", "pause", "web", "--reason", "bad deploy train", "--as",
                 "carol"]) == 0
    rc = prepare(fl_store, _runbook("paused"))
    result = asyncio.run(run_runbook_result(rc.execution.id))
    assert statuses(rc) == {"page": "succeeded", "fix": "skipped", "after": "skipped"}
    assert result["status"] == "failed", "a remediation the kill switch stopped did not happen"
    assert (result["outcome"]["kind"], result["outcome"]["guardrail"]) == ("blocked",
                                                                           "kill_switch")
    assert [name for _, name in effects()] == ["page-paused"]
    [blocked] = _events(fl_store, rc.incident.id, "guardrail.blocked")
    assert "automation paused for service web by carol: bad deploy train" in blocked.summary
    assert main(["automation", "resume", "web"]) == 0
    again = prepare(fl_store, _runbook("resumed"))
    asyncio.run(run_runbook_result(again.execution.id))
    assert statuses(again)["fix"] == "succeeded"


def test_maintenance_window_blocks_only_while_it_is_open(fl_store: Store) -> None:
    now = utcnow()
    fl_store.add_pause("maintenance", "web", "dave", "db migration",
                       starts_at=now + timedelta(hours=1), until=now + timedelta(hours=2))
    later = prepare(fl_store, _runbook("before-window"))
    asyncio.run(run_runbook_result(later.execution.id))
    assert statuses(later)["fix"] == "succeeded"
    fl_store.add_pause("maintenance", "*", "dave", "network work",
                       starts_at=now - timedelta(minutes=1), until=now + timedelta(hours=1))
    inside = prepare(fl_store, _runbook("in-window"))
    asyncio.run(run_runbook_result(inside.execution.id))
    assert statuses(inside)["fix"] == "skipped"
    [blocked] = _events(fl_store, inside.incident.id, "guardrail.blocked")
    assert "maintenance window for all services" in blocked.summary
    assert fl_store.lift_pauses("*") == 0, "resume lifts pauses, not maintenance windows"


def test_fourth_remediation_in_an_hour_is_refused(fl_store: Store) -> None:
    outcomes = []
    for n in range(4):
        rc = prepare(fl_store, _runbook(f"run{n}"))
        asyncio.run(run_runbook_result(rc.execution.id))
        outcomes.append(statuses(rc)["fix"])
    assert outcomes == ["succeeded", "succeeded", "succeeded", "skipped"]
    [blocked] = _events(fl_store, rc.incident.id, "guardrail.blocked")
    assert "rate limit: 3 remediations of web in the last hour" in blocked.summary
    assert [n for _, n in effects()].count("after-run3") == 0


def test_one_remediation_per_service_at_a_time(fl_store: Store) -> None:
    service = f"web-{uuid.uuid4().hex[:8]}"
    first, second = (prepare(fl_store, _runbook(tag, hold=1.5), service=service)
                     for tag in ("a", "b"))

    async def both() -> list[dict[str, Any]]:
        return list(await asyncio.gather(run_runbook_result(first.execution.id),
                                         run_runbook_result(second.execution.id)))

    asyncio.run(both())
    spans = []
    for rc in (first, second):
        assert statuses(rc) == {"page": "succeeded", "fix": "succeeded", "after": "succeeded"}
        timeline = [e for e in fl_store.timeline(rc.incident.id) if e.step_id in ("fix", "after")]
        start = min(e.at for e in timeline if e.kind == "step.started")
        end = max(e.at for e in timeline if e.kind == "step.succeeded")
        spans.append((start, end))
    (_, a1), (b0, _) = sorted(spans)
    assert a1 <= b0, f"remediations overlapped: {spans}"


def test_locked_service_with_on_locked_skip_skips(fl_store: Store) -> None:
    holder = prepare(fl_store, _runbook("holder", hold=15))
    skipper = prepare(fl_store, _runbook("skipper", on_locked="skip"))

    async def race() -> None:
        task = asyncio.create_task(run_runbook_result(holder.execution.id))
        for _ in range(100):
            if any(e.kind == "step.started" and e.step_id == "fix"
                   for e in fl_store.timeline(holder.incident.id)):
                break
            await asyncio.sleep(0.05)
        await run_runbook_result(skipper.execution.id)
        assert not task.done(), "the holder finished before the skipper looked at the lock"
        await task

    asyncio.run(race())
    assert statuses(skipper)["fix"] == "skipped"
    [blocked] = _events(fl_store, skipper.incident.id, "guardrail.blocked")
    assert "on_locked: skip" in blocked.summary
    assert statuses(holder)["fix"] == "succeeded"


def test_dry_run_is_not_stopped_and_touches_nothing(fl_store: Store) -> None:
    fl_store.add_pause("pause", "*", "erin", "freeze")
    rc = prepare(fl_store, _runbook("dry"), dry_run=True)
    asyncio.run(run_runbook_result(rc.execution.id))
    records = fl_store.step_records(rc.execution.id)
    assert records["fix"].status.value == "succeeded" and records["fix"].outputs == {
        "name": "fix-dry", "created": False, "dry_run": True,
        "would_send": {"name": "fix-dry", "before_seconds": 0.0, "after_seconds": 0.0}}
    assert records["page"].outputs and records["page"].outputs["dry_run"] is True
    assert effects() == [], "a dry run pages nobody"


def test_times_parse_relative_and_iso() -> None:
    now = utcnow()
    assert parse_time("+90m", now) == now + timedelta(minutes=90)
    assert parse_time("2026-11-23T18:00Z").hour == 18
    from firelane.errors import ConfigError

    with pytest.raises(ConfigError, match="not a time"):
        parse_time("tomorrow-ish")


def test_rate_limit_stop_is_told_in_slack(fl_store: Store, sandbox: object,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from firelane.inputs import new_execution
    from firelane.loader import parse_runbook
    from firelane.models import IncidentDraft, Severity
    from integrations.sandbox import Sandbox
    from tests.sandbox_fixtures import make_ctx, run_action

    assert isinstance(sandbox, Sandbox)
    alarm = asyncio.run(run_action("slack.create_channel", {"name": "sre-alarms"},
                                   make_ctx("alarm"))).id
    monkeypatch.setenv("FIRELANE_PAGE_FAILURE_CHANNEL", alarm)
    loaded = parse_runbook(_runbook("limited", limit=1), "limited.yaml")
    outcomes = []
    for _ in range(2):
        incident = fl_store.declare_incident(IncidentDraft(title="web down",
                                                           severity=Severity.SEV2,
                                                           service="web"))
        execution = fl_store.create_execution(new_execution(loaded, incident, {},
                                                            sandbox=True))
        asyncio.run(run_runbook_result(execution.id))
        outcomes.append(fl_store.step_records(execution.id)["fix"].status.value)
    assert outcomes == ["succeeded", "skipped"]
    notices = [m["text"] for m in sandbox.state.dump()["slack_messages"]
               if m["channel"] == alarm]
    assert len(notices) == 1 and f"INC-{incident.number}" in notices[0]
    assert "remediation blocked by the rate limit (rate limit: 1 remediations of web in the " \
        "last hour" in notices[0]


def test_runbook_level_dry_run_input_makes_destructive_steps_report(fl_store: Store) -> None:
    rc = prepare(fl_store, """version: 1
name: dry-by-input
inputs:
  dry_run: {type: boolean, default: false}
steps:
  - {id: fix, uses: test.change, with: {name: would-fix}}
""", inputs={"dry_run": True})
    assert rc.execution.dry_run
    asyncio.run(run_runbook_result(rc.execution.id))
    assert fl_store.step_records(rc.execution.id)["fix"].outputs == {
        "name": "would-fix", "created": False, "dry_run": True,
        "would_send": {"name": "would-fix", "before_seconds": 0.0, "after_seconds": 0.0}}
    assert effects() == []
