"""The timeline report: one ordered timeline from the store, PagerDuty and Slack, key times,
Markdown and HTML, published to the reports folder, a Prefect artifact, Jira and Slack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firelane.errors import ConfigError
from firelane.models import Alert, IncidentDraft, IncidentStatus, Severity
from firelane.store import open_store
from firelane.timeline import Entry, key_times, merge
from flows.cli import main
from flows.records.report import build_report, render
from flows.runs.report import timeline_report
from integrations.sandbox import Sandbox
from tests.sandbox_fixtures import run_action

INCIDENT = Path(__file__).resolve().parent.parent / "examples" / "incident.json"


def _at(minutes: float) -> datetime:
    return datetime(2026, 11, 23, 2, 0, tzinfo=UTC) + timedelta(minutes=minutes)


def test_merge_orders_and_drops_duplicates_and_key_times_follow() -> None:
    from firelane.models import Incident

    incident = Incident(number=3, title="db slow", severity=Severity.SEV2, service="db",
                        created_at=_at(2))
    entries = merge(
        [Entry(at=_at(2), source="firelane", kind="incident.declared", summary="declared"),
         Entry(at=_at(9), source="firelane", kind="incident.status", summary="mitigated",
               details={"to": "mitigated"}),
         Entry(at=_at(30), source="firelane", kind="incident.status", summary="resolved",
               details={"to": "resolved"})],
        [Entry(at=_at(0), source="alert", kind="alert.started", summary="alert", dedup="a"),
         Entry(at=_at(0), source="alert", kind="alert.started", summary="again", dedup="a")],
        [Entry(at=_at(4), source="pagerduty", kind="acknowledge_log_entry", summary="ack")])
    assert [e.summary for e in entries] == ["alert", "declared", "ack", "mitigated", "resolved"]
    times = key_times(incident, entries)
    assert (times.detected, times.acknowledged) == (_at(0), _at(4))
    assert times.time_to_acknowledge == timedelta(minutes=4)
    assert times.time_to_mitigate == timedelta(minutes=9)
    assert times.time_to_resolve == timedelta(minutes=30)


def test_templates_can_be_overridden_and_bad_zones_are_named(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(sqlite_url)
    incident = store.declare_incident(IncidentDraft(title="<script>alert(1)</script>",
                                                    severity=Severity.SEV3, service="api"))
    html = render(build_report(store, incident), "html")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    (tmp_path / "report.md.j2").write_text("custom {{ inc.number }} {{ r.entries | length }}")
    monkeypatch.setenv("FIRELANE_TEMPLATES_DIR", str(tmp_path))
    assert render(build_report(store, incident), "md") == f"custom {incident.number} 1"
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Base'"):
        build_report(store, incident, tz="Mars/Base")


@pytest.mark.usefixtures("prefect_api")
def test_report_from_every_source_reaches_folder_artifact_jira_and_slack(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    monkeypatch.setenv("FIRELANE_REPORTS_DIR", str(tmp_path / "reports"))
    store = open_store(firelane_env)
    [accepted] = store.accept_alerts([Alert(
        source="alertmanager", fingerprint="fp-report", title="Checkout 5xx", service="web",
        severity=Severity.SEV1, starts_at=datetime.now(UTC) - timedelta(minutes=3))])
    assert main(["run", "declare-incident", "--incident", str(INCIDENT), "--sandbox"]) == 0
    [incident] = [i for i in store.list_incidents() if i.id != accepted.incident_id]
    [execution] = store.list_executions(incident.id)
    page = store.step_records(execution.id)["page"].outputs or {}
    from tests.sandbox_fixtures import make_ctx

    asyncio.run(run_action("pagerduty.acknowledge", {"dedup_key": page["dedup_key"]},
                           make_ctx("ack")))
    ticket = store.step_records(execution.id)["ticket"].outputs or {}
    asyncio.run(run_action("jira.add_comment", {"issue": ticket["key"],
                                                "body": "rolled back deploy 42"},
                           make_ctx("comment")))
    asyncio.run(run_action("jira.transition", {"issue": ticket["key"], "to": "Done"},
                           make_ctx("close")))
    for status in (IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED):
        store.set_status(incident.id, status, actor="ann")
    assert main(["incidents", "status", f"INC-{incident.number}", "closed"]) == 1, \
        "mitigated → closed skips resolved"
    assert main(["incidents", "status", f"INC-{incident.number}", "resolved", "--as", "ann",
                 "--reason", "rolled back"]) == 0
    assert (tmp_path / "reports" / f"inc-{incident.number}-postmortem.md").exists()
    result = asyncio.run(timeline_report(incident.id, tz="Europe/Paris"))
    md = Path(result["paths"][0]).read_text()
    html = Path(result["paths"][1]).read_text()
    assert "Time to acknowledge" in md and "Europe/Paris" in md
    assert f"{ticket['key']}: To Do → Done" in md and "rolled back deploy 42" in md
    for source in ("| firelane |", "| runbook |", "| pagerduty |", "| slack |", "| jira |"):
        assert source in md, f"{source} missing from the timeline"
    assert "<svg" in html and "<script" not in html and 'src="http' not in html
    assert "href=\"http" not in html.split("<body>")[0]
    state = sandbox.state.dump()
    attachments = [a for i in state["jira_issues"].values() for a in i.get("attachments", [])]
    assert any(a["filename"] == f"inc-{incident.number}-timeline.md" for a in attachments)
    assert any(f["name"] == f"inc-{incident.number}-timeline.md"
               for f in state["slack_files"].values())
    assert set(result["published"].values()) == {"attached", "uploaded"}
    postmortem = Path(result["paths"][2]).read_text()
    for heading in ("## Summary", "## Impact", "## Timeline", "## Contributing factors",
                    "## What went well", "## What to improve", "## Action items"):
        assert heading in postmortem
    assert "Blameless" in postmortem and "Triggered" in postmortem
    assert any(a["filename"] == f"inc-{incident.number}-postmortem.md" for a in attachments)

    async def artifacts() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"inc-{incident.number}-report",
                                            f"inc-{incident.number}-key-times"])))
            return sorted(str(a.type) for a in found)

    assert set(asyncio.run(artifacts())) == {"markdown", "table"}
    capsys.readouterr()
    assert main(["timeline", f"INC-{incident.number}", "--offline"]) == 0
    mark, *lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert mark == f"INC-{incident.number} [SANDBOX]: not a real incident"
    assert f"INC-{incident.number} declared" in lines[0]
    assert "Timeline report" in lines[-1]
    assert lines == sorted(lines, key=lambda line: line[:19])


@pytest.mark.usefixtures("prefect_api")
def test_incident_resolved_by_its_alert_gets_one_report(
        firelane_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.respond.responder import report_resolved

    monkeypatch.setenv("FIRELANE_REPORTS_DIR", str(tmp_path / "reports"))
    store = open_store(firelane_env)
    alert = Alert(source="grafana", fingerprint="fp-auto", title="Disk full", service="db",
                  severity=Severity.SEV3)
    [fired] = store.accept_alerts([alert])
    store.accept_alerts([alert.model_copy(update={"id": "r" * 32, "status": "resolved"})],
                        auto_resolve=True)
    incident = store.get_incident(fired.incident_id or "")
    assert incident.status == "resolved"
    assert [i.id for i in store.resolved_without_report(incident.created_at)] == [incident.id]

    async def one_pass() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(report_resolved(store, stop, every=0.2))
        for _ in range(300):
            if (tmp_path / "reports" / f"inc-{incident.number}-postmortem.md").exists():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        stop.set()
        return await task

    assert asyncio.run(one_pass()) == 1
    assert store.resolved_without_report(incident.created_at) == []
    assert not store.claim_report(incident.id, incident.reopened)
    assert "Disk full" in (tmp_path / "reports" / f"inc-{incident.number}.md").read_text()
