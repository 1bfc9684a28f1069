"""Deployments: `prefect.yaml` is generated from the runbooks and current, `prefect deploy --all`
registers every deployment on a real Prefect server with typed forms and the cron schedule, the
operator flows validate before any step and run the runbook, and `firelane worker` runs them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from firelane.errors import RunbookError
from firelane.settings import Settings
from firelane.store import open_store
from flows.cli import main
from flows.runs.deployments import (
    POOL,
    REMINDER_CRON,
    UPDATE_REMINDER_CRON,
    render_prefect_yaml,
    worker_command,
)
from flows.runs.operator import operator_flow

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = sorted(p.stem for p in (ROOT / "runbooks").glob("*.yaml"))


def test_prefect_yaml_is_current_and_lists_every_runbook(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("FIRELANE_RUNBOOKS_DIR", raising=False)
    text = (ROOT / "prefect.yaml").read_text()
    assert text == render_prefect_yaml(), "stale: run `firelane deployments --write`"
    assert main(["deployments", "--check"]) == 0
    spec = yaml.safe_load(text)
    names = [d["name"] for d in spec["deployments"]]
    assert names == ["respond-to-incident", *RUNBOOKS, "incident-command", "timeline-report",
                     "remind-action-items", "remind-updates"]
    for d in spec["deployments"]:
        assert ".py" not in d["entrypoint"] and d["work_pool"] == {"name": POOL}, d
    schedules = {d["name"]: d.get("schedules") for d in spec["deployments"]}
    assert schedules["remind-action-items"] == [{"cron": REMINDER_CRON, "timezone": "UTC"}]
    assert schedules["remind-updates"] == [{"cron": UPDATE_REMINDER_CRON, "timezone": "UTC"}]


def test_check_fails_when_a_runbook_is_added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    runbooks = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", runbooks)
    out = tmp_path / "prefect.yaml"
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(runbooks))
    assert main(["deployments", "--write", "--output", str(out)]) == 0
    assert main(["deployments", "--check", "--output", str(out)]) == 0
    (runbooks / "extra.yaml").write_text(
        "version: 1\nname: extra\nsteps:\n  - {id: hi, uses: core.note, with: {message: hi}}\n")
    assert main(["deployments", "--check", "--output", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err


def test_an_input_named_like_an_incident_field_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "clash.yaml").write_text(
        "version: 1\nname: clash\ninputs:\n  service: {type: string}\n"
        "steps:\n  - {id: hi, uses: core.note, with: {message: hi}}\n")
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(tmp_path))
    with pytest.raises(RunbookError, match=r"clash\.yaml: input.*service.*collide"):
        operator_flow.__wrapped__("clash")


def _launch(runbook: str, **params: Any) -> Any:
    """Call the runbook's operator flow (built afresh for this test's environment)."""
    launch = operator_flow.__wrapped__(runbook)
    return asyncio.run(cast(Coroutine[Any, Any, Any], launch(**params)))


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text("services:\n  web: {jira_project: OPS}\n  payments: {}\n")
    monkeypatch.setenv("FIRELANE_CATALOG", str(path))
    return path


async def _ensure_pool() -> None:
    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))


@pytest.fixture(scope="module")
def deployed(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`prefect deploy --all` from the repository against the test server."""
    asyncio.run(_ensure_pool())
    cat = tmp_path_factory.mktemp("deploy") / "services.yaml"
    cat.write_text("services:\n  web: {}\n  payments: {}\n")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "FIRELANE_CATALOG": str(cat)}
    env.pop("FIRELANE_RUNBOOKS_DIR", None)
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    async def read() -> dict[str, Any]:
        async with get_client() as client:
            found = await client.read_deployments()
            flows = {f.id: f.name for f in await client.read_flows()}
            return {f"{flows[d.flow_id]}/{d.name}": d for d in found}
    return asyncio.run(read())


def test_deploy_all_registers_typed_forms_and_the_schedule(deployed: dict[str, Any]) -> None:
    want = {"run-runbook/respond-to-incident", "timeline-report/timeline-report",
            "remind-action-items/remind-action-items", "remind-updates/remind-updates",
            *(f"runbook/{r}" for r in RUNBOOKS)}
    assert want <= set(deployed)
    form = deployed["runbook/web-5xx-rollback"].parameter_openapi_schema
    props = form["properties"]
    assert form["required"] == ["title", "service"]
    assert props["service"]["enum"] == ["payments", "web"]
    assert form["definitions"]["Severity"]["enum"] == ["SEV1", "SEV2", "SEV3", "SEV4"]
    assert props["severity"]["default"] == "SEV2" and props["dry_run"]["default"] is False
    assert "catalog" in props["service"]["description"]
    triage = deployed["runbook/sample-triage"].parameter_openapi_schema["properties"]
    assert triage["settle_seconds"]["type"] == "number"
    assert triage["settle_seconds"]["default"] == 0.5
    assert triage["note"]["description"] == "First note on the timeline"
    shell = deployed["runbook/shell-remediation"].parameter_openapi_schema["properties"]
    assert shell["older_than_days"] == {**shell["older_than_days"], "type": "integer",
                                        "default": 7}
    respond = deployed["run-runbook/respond-to-incident"].parameter_openapi_schema
    assert list(respond["properties"]) == ["execution_id"]
    for d in deployed.values():
        assert d.work_pool_name == POOL and d.enforce_parameter_schema, d.name
    schedules = deployed["remind-action-items/remind-action-items"].schedules
    assert [s.schedule.cron for s in schedules] == [REMINDER_CRON]
    cadence = deployed["remind-updates/remind-updates"].schedules
    assert [s.schedule.cron for s in cadence] == [UPDATE_REMINDER_CRON]
    assert all(not d.schedules for k, d in deployed.items() if not k.startswith("remind"))


def test_the_server_refuses_a_form_that_breaks_the_schema(deployed: dict[str, Any]) -> None:
    from prefect.deployments import run_deployment

    with pytest.raises(Exception, match="service"):
        run_deployment("runbook/web-5xx-rollback",
                       parameters={"title": "x", "service": "nope"}, timeout=0)


def test_operator_flow_declares_runs_and_reports(
        prefect_api: str, firelane_env: str, catalog: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELANE_REPORTS_DIR", str(tmp_path / "reports"))
    result = _launch("sample-triage", title="checkout slow", service="web", severity="SEV3",
                     labels={"region": "eu-1"}, settle_seconds=0.1)
    assert result["status"] == "succeeded"
    store = open_store(firelane_env)
    incident = store.get_incident(result["incident"])
    assert (incident.title, incident.severity.value, incident.labels) == (
        "checkout slow", "SEV3", {"region": "eu-1"})
    execution = store.get_execution(result["execution_id"])
    assert execution.inputs["settle_seconds"] == 0.1 and not execution.sandbox
    assert Path(result["report"][1]).name == f"inc-{incident.number}.html"
    assert "report.published" in [e.kind for e in store.timeline(incident.id)]


@pytest.mark.parametrize(("params", "message"), [
    ({"service": "billing"}, "service: Input should be 'payments' or 'web'"),
    ({"service": "web", "title": ""}, "title"),
    ({"service": "web", "sandbox": True}, "FIRELANE_SANDBOX_URL"),
])
def test_bad_operator_input_fails_before_any_step(
        prefect_api: str, firelane_env: str, catalog: Path, monkeypatch: pytest.MonkeyPatch,
        params: dict[str, Any], message: str) -> None:
    monkeypatch.delenv("FIRELANE_SANDBOX_URL", raising=False)
    with pytest.raises(Exception, match=message):
        _launch("sample-triage", **{"title": "t", **params})
    assert open_store(firelane_env).list_incidents() == []


def test_runbook_validation_message_fails_the_run(
        prefect_api: str, firelane_env: str, catalog: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rb").mkdir()
    (tmp_path / "rb" / "sized.yaml").write_text(
        "version: 1\nname: sized\ninputs:\n  size: {type: string, enum: [s, m], default: s}\n"
        "steps:\n  - {id: hi, uses: core.note, with: {message: hi}}\n")
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(tmp_path / "rb"))
    launch = operator_flow.__wrapped__("sized")
    with pytest.raises(RunbookError, match=r"sized.yaml: bad inputs for sized: input 'size' "
                                           r"must be one of \['s', 'm'\], got 'xl'"):
        asyncio.run(cast(Coroutine[Any, Any, Any], launch.fn(
            title="t", service="web", size="xl", sandbox=False)))
    assert open_store(firelane_env).list_incidents() == []


@pytest.fixture
def worker(prefect_api: str, firelane_env: str, catalog: Path,
           tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    asyncio.run(_ensure_pool())
    log = (tmp_path / "worker.log").open("wb")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PYTHONPATH": str(ROOT),
           "FIRELANE_REPORTS_DIR": str(tmp_path / "reports")}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "firelane"), "worker",
                             "--limit", "2"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def test_firelane_worker_runs_an_operator_deployment(
        deployed: dict[str, Any], worker: subprocess.Popen[bytes], firelane_env: str,
        tmp_path: Path) -> None:
    from prefect.deployments import run_deployment

    run: Any = run_deployment(
        "runbook/sample-triage", timeout=180,
        parameters={"title": "queue backlog", "service": "web", "settle_seconds": 0.1})
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert run.state.is_completed(), f"{run.state}\n{log[-4000:]}"
    assert run.name.startswith("sample-triage · queue backlog")
    [incident] = open_store(firelane_env).list_incidents()
    assert incident.title == "queue backlog"
    assert (tmp_path / "reports" / f"inc-{incident.number}.html").exists()
    assert "Firelane worker · pool firelane" in log


def test_worker_needs_an_api_url_and_pins_paths(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["worker"]) == 2
    assert "PREFECT_API_URL is not set" in capsys.readouterr().err
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", "runbooks")
    argv, env = worker_command(POOL, 3, Settings.from_env())
    assert argv[1:] == ["-m", "prefect", "worker", "start", "--pool", POOL, "--type",
                        "process", "--limit", "3", "--install-policy", "never"]
    assert Path(env["FIRELANE_RUNBOOKS_DIR"]).is_absolute()
    assert env["PREFECT_WORKER_QUERY_SECONDS"] == "1"
