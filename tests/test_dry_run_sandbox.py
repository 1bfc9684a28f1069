"""A dry run of `runbooks/web-5xx-rollback.yaml` pages nobody (issue 20): with credentials that
reach a vendor (blocks pointing at the sandbox, as real ones point at the real vendors) it
leaves the sandbox untouched, while its read-only probes run for real; with `--sandbox` as
well it exercises the coordination against the stand-ins. Either way nothing is rolled back,
and every listing and report marks the incident. Real parts: the `run-runbook` flow, the
vendors' clients, the sandbox over TLS, an HTTP health endpoint."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from firelane.inputs import new_execution
from firelane.loader import parse_runbook
from firelane.models import IncidentDraft, Severity
from firelane.store import Store, open_store
from flows.cli import main
from flows.runs.run_runbook import run_runbook_result
from integrations.common import forget_blocks
from integrations.jira.block import JiraCredentials
from integrations.pagerduty.block import PagerDutyCredentials
from integrations.sandbox import Sandbox
from integrations.slack.block import SlackCredentials
from integrations.video.block import ZoomCredentials

RUNBOOK = Path(__file__).resolve().parent.parent / "runbooks" / "web-5xx-rollback.yaml"
pytestmark = pytest.mark.usefixtures("prefect_api")
BLOCK = "dry-run-test"


@dataclass
class Health:
    """A health endpoint that answers 500 to its first `bad` probes, then 200."""

    url: str
    bad: int
    seen: int = 0


@pytest.fixture
def health() -> Iterator[Health]:
    state = Health(url="", bad=6)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen += 1
            self.send_response(500 if state.seen <= state.bad else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def releases(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    for name in ("r1", "r2"):
        (root / "releases" / name).mkdir(parents=True)
    (root / "current").symlink_to(Path("releases") / "r2")
    return root


@pytest.fixture
def setup(firelane_env: str, sandbox: Sandbox, health: Health, releases: Path,
          tmp_path: Path) -> Store:
    (tmp_path / "services.yaml").write_text(f"""services:
  web:
    jira_project: OPS
    health_url: {health.url}
    release_dir: {releases}
    supervisor: {{program: web, url: "http://127.0.0.1:9/RPC2"}}
""")
    for cls in (JiraCredentials, PagerDutyCredentials, SlackCredentials, ZoomCredentials):
        cls.for_sandbox(sandbox.url, sandbox.ca_file).save(BLOCK, overwrite=True)
    forget_blocks()
    return open_store(firelane_env)


def _run(store: Store, sandboxed: bool) -> tuple[str, str, dict[str, dict[str, object]]]:
    text = RUNBOOK.read_text().replace(
        "credentials: {jira: default, pagerduty: default, slack: default}",
        f"credentials: {{jira: {BLOCK}, pagerduty: {BLOCK}, slack: {BLOCK}, zoom: {BLOCK}}}")
    assert BLOCK in text
    loaded = parse_runbook(text, str(RUNBOOK))
    incident = store.declare_incident(IncidentDraft(title="web 5xx above 20%",
                                                    severity=Severity.SEV1, service="web"))
    execution = store.create_execution(new_execution(loaded, incident, {}, dry_run=True,
                                                     sandbox=sandboxed))
    result = asyncio.run(run_runbook_result(execution.id))
    records = store.step_records(execution.id)
    outputs = {k: dict(v.outputs or {}, status=v.status.value) for k, v in records.items()}
    return str(result["status"]), incident.id, outputs


async def _flow_run_name(flow_run_id: str) -> str:
    from uuid import UUID

    from prefect import get_client

    async with get_client() as client:
        return (await client.read_flow_run(UUID(flow_run_id))).name


def test_dry_run_of_the_rollback_runbook_contacts_no_vendor(
        setup: Store, sandbox: Sandbox, health: Health, releases: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    status, incident_id, steps = _run(setup, sandboxed=False)
    state = sandbox.state.dump()
    touched = {k: state[k] for k in ("jira_issues", "pd_incidents", "slack_channels",
                                     "slack_messages", "zoom_meetings") if state[k]}
    assert touched == {}, "a dry run opened a ticket, paged, or opened a channel or bridge"
    assert state["requests"] == [], "a dry run sent requests to the vendors"
    assert status == "succeeded", steps
    for step in ("ticket", "page", "channel", "bridge", "announce", "resolve_page",
                 "close_ticket", "outcome"):
        assert steps[step]["status"] == "succeeded" and steps[step]["dry_run"] is True, step
    assert steps["diagnose"]["status"] == "failed", "the probe is read-only: it really ran"
    assert steps["rollback"]["dry_run"] is True
    assert (steps["rollback"]["from_release"], steps["rollback"]["to_release"]) == ("r2", "r1")
    assert steps["verify"]["status"] == "succeeded" and steps["verify"]["healthy"] is True
    assert "Rolled back r2 →\nr1" in str(steps["outcome"]["would_send"]) \
        or "Rolled back r2 → r1" in str(steps["outcome"]["would_send"])
    assert steps["page"]["would_send"]["summary"] == "[SEV1] web 5xx above 20%"  # type: ignore[index]
    assert (releases / "current").readlink() == Path("releases") / "r2"
    incident = setup.get_incident(incident_id)
    assert set(incident.links) <= {"flow_run"}, "placeholders are no links"
    assert incident.status.value == "declared"
    assert main(["incidents", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines()
                if x.startswith(f"INC-{incident.number} "))
    assert line.endswith("[DRY RUN]")
    assert main(["timeline", str(incident.number), "--format", "md", "--offline"]) == 0
    report = capsys.readouterr().out
    assert report.startswith(f"# INC-{incident.number} [SEV1] web 5xx above 20% [DRY RUN]")
    assert "not a real incident" in report
    assert main(["timeline", str(incident.number), "--format", "html", "--offline"]) == 0
    html = capsys.readouterr().out
    assert "[DRY RUN]</title>" in html and '<span class="sandbox">dry run</span>' in html


def test_dry_run_with_sandbox_exercises_the_coordination_for_real(
        setup: Store, sandbox: Sandbox, health: Health, releases: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    status, incident_id, steps = _run(setup, sandboxed=True)
    assert status == "succeeded", steps
    state = sandbox.state.dump()
    assert len(state["jira_issues"]) == 1 and len(state["pd_incidents"]) == 1
    assert [i["status"] for i in state["pd_incidents"].values()] == ["resolved"]
    assert len(state["slack_channels"]) == 1
    texts = [m["text"] for m in state["slack_messages"]]
    assert any("Rolled back r2 → r1" in t for t in texts), texts
    for step in ("ticket", "page", "channel", "announce"):
        assert not steps[step].get("dry_run"), step
    assert steps["rollback"]["dry_run"] is True, "the sandbox does not make remediation real"
    assert (releases / "current").readlink() == Path("releases") / "r2"
    number = setup.get_incident(incident_id).number
    runs = setup.list_executions(incident_id)
    [execution] = [e for e in runs if e.runbook_name == "web-5xx-rollback"]
    deliveries = [e for e in runs if e.runbook_name == "stakeholder-update"]
    assert deliveries and all(e.dry_run and e.sandbox for e in deliveries), \
        "an update of a dry run in the sandbox is delivered as one too"
    assert asyncio.run(_flow_run_name(str(execution.flow_run_id))) == \
        f"INC-{number} · web-5xx-rollback · DRY RUN · SANDBOX"
    assert main(["incidents", "show", str(number)]) == 0
    shown = capsys.readouterr().out
    assert shown.splitlines()[0].endswith("[DRY RUN · SANDBOX]")
    assert "(dry run) (sandbox)" in shown
    assert main(["incidents", "list", "--json"]) == 0
    import json

    listed = {i["number"]: i["marks"] for i in json.loads(capsys.readouterr().out)}
    assert listed[number] == ["dry run", "sandbox"]
