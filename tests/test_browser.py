"""The Prefect UI as the operator console, in headless Debian Chromium driven by Playwright.

A local Prefect server (with its UI, on PostgreSQL: on SQLite its "database is locked"
stalls once lost the resume here), `prefect deploy --all`, `firelane worker`, the sandbox and
the sample web service with its bad release under supervisord. The browser opens the
`web-5xx-rollback` deployment, fills its form (typed incident fields), starts the run, finds on
that launched run's page that an approval waits (its logs, and an artifact whose link opens the
paused subflow run in one click), approves the rollback in that run's resume form (which shows
the rendered request), and finds the run completed with its report artifact. Screenshots go to
`test-artifacts/browser/`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port
from firelane.store import open_store
from integrations.sandbox import Sandbox
from tests.pgserver import create_database
from tests.remediation_fixtures import GOOD, Service

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BIN = Path(sys.executable).parent


def _missing() -> str | None:
    if CHROMIUM is None:
        return "Debian's chromium is not installed (make test installs it)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


if _missing() and os.environ.get("FIRELANE_REQUIRE_BROWSER"):
    raise RuntimeError(f"FIRELANE_REQUIRE_BROWSER is set but {_missing()}")
pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


@dataclass
class UiStack:
    """A Prefect server with its UI, the deployments, a worker, and their settings."""

    ui: str
    api: str
    env: dict[str, str]
    catalog: Path
    reports: Path

    def get(self, path: str) -> Any:
        return httpx.get(f"{self.api}{path}", timeout=10).json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return httpx.post(f"{self.api}{path}", json=body, timeout=10).json()


def _wait(what: str, check: Callable[[], Any], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _catalog(service: Service | None) -> str:
    web = "{}" if service is None else (
        f'{{jira_project: OPS, health_url: "{service.health_url}", release_dir: '
        f'"{service.release_dir}", supervisor: {{program: web, url: "{service.unix_url}"}}}}')
    return f"services:\n  web: {web}\n  checkout: {{jira_project: PAY}}\n"


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory, sandbox_server: Sandbox,
             pg_url: str) -> Iterator[UiStack]:
    tmp = tmp_path_factory.mktemp("ui")
    prefect_db = create_database(pg_url, "ui_prefect").replace("+psycopg", "+asyncpg")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    catalog = tmp / "services.yaml"
    catalog.write_text(_catalog(None))
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_UI_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db,
           "FIRELANE_DATABASE_URL": f"sqlite:///{tmp / 'firelane.db'}",
           "FIRELANE_CATALOG": str(catalog), "FIRELANE_REPORTS_DIR": str(tmp / "reports"),
           "FIRELANE_RUNBOOKS_DIR": str(ROOT / "runbooks"),
           "FIRELANE_SANDBOX_URL": sandbox_server.url,
           "FIRELANE_SANDBOX_CA": sandbox_server.ca_file, "FIRELANE_RETRY_BASE_SECONDS": "0.05"}
    env.pop("FIRELANE_PLUGINS", None)
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        procs.append(proc)
        return proc

    try:
        start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                         "--port", str(port)])
        _wait("the Prefect server", lambda: _healthy(f"{api}/health"), 120)
        start("worker", [str(BIN / "firelane"), "worker", "--limit", "4"])
        _wait("the work pool", lambda: _healthy(f"{api}/work_pools/firelane"), 60)
        done = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield UiStack(f"http://127.0.0.1:{port}", api, env, catalog, tmp / "reports")
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(30_000)
        yield tab
        browser.close()


def _choose(page: Any, name: str, value: str) -> list[str]:
    """Pick `value` in the dropdown of property `name`; returns the options it offered."""
    _field(page, name).locator("button.p-select-button__control").click()
    page.keyboard.press("ArrowDown")
    options = page.locator("div.p-select-option")
    options.first.wait_for()
    offered = [t.strip() for t in options.all_inner_texts()]
    options.filter(has_text=re.compile(rf"^{value}$")).click()
    return offered


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _field(root: Any, name: str) -> Any:
    """The form property labelled `name` (Prefect adds " (Optional)" to optional ones)."""
    page = getattr(root, "page", root)
    return root.locator("div.schema-form-property").filter(has=page.locator(
        "span.schema-form-property__label", has_text=re.compile(rf"^{name}( \(Optional\))?$")))


def test_operator_runs_a_runbook_and_approves_it_in_the_ui(
        ui_stack: UiStack, page: Any, service: Service) -> None:
    try:
        _scenario(ui_stack, page, service)
    except BaseException:
        _shot(page, "failure")
        (SHOTS / "failure.html").write_text(page.content())
        raise


def _scenario(ui_stack: UiStack, page: Any, service: Service) -> None:
    ui_stack.catalog.write_text(_catalog(service))
    [dep] = [d for d in ui_stack.post("/deployments/filter", {})
             if d["name"] == "web-5xx-rollback"]
    page.goto(f"{ui_stack.ui}/deployments")
    page.get_by_placeholder("Search deployments...").fill("web-5xx")
    page.get_by_text("web-5xx-rollback").first.click()
    page.wait_for_url(f"**/deployments/deployment/{dep['id']}**")
    _shot(page, "01-deployment")

    page.goto(f"{ui_stack.ui}/deployments/deployment/{dep['id']}/run")
    _field(page, "title").locator("textarea").fill("web 5xx above 20% after deploy")
    _choose(page, "severity", "SEV1")
    assert _choose(page, "service", "web") == ["checkout", "web"]
    _field(page, "sandbox").locator("label[role=switch]").click()
    _shot(page, "02-form")
    page.locator("button[type=submit]").click()

    runs = _wait("the flow run", lambda: ui_stack.post("/flow_runs/filter", {
        "deployments": {"id": {"any_": [dep["id"]]}}}), 30)
    run_id = runs[0]["id"]
    assert runs[0]["parameters"]["severity"] == "SEV1"
    assert runs[0]["parameters"]["service"] == "web" and runs[0]["parameters"]["sandbox"]

    store = open_store(ui_stack.env["FIRELANE_DATABASE_URL"])
    incident = _wait("the incident", lambda: store.list_incidents(), 120)[0]
    approval = _wait("the paused approval", lambda: [
        a for a in store.approvals_for(incident.id, "rollback") if a.flow_run_id], 120)[0]
    _wait("the approval subflow to pause", lambda: ui_stack.get(
        f"/flow_runs/{approval.flow_run_id}")["state_type"] == "PAUSED", 60)
    _wait("the approval told on the launched run", lambda: ui_stack.post("/artifacts/filter", {
        "artifacts": {"flow_run_id": {"any_": [run_id]},
                      "key": {"any_": [f"approval-inc-{incident.number}-rollback"]}}}), 60)
    page.goto(f"{ui_stack.ui}/runs/flow-run/{run_id}")
    paused_url = f"{ui_stack.ui}/runs/flow-run/{approval.flow_run_id}"
    in_logs = page.get_by_role("link", name=paused_url)
    in_logs.first.wait_for()
    page.locator("li.p-tab#artifacts").click()
    page.get_by_role("link", name="Open the approval form (Resume)").first.wait_for()
    _shot(page, "03-launched-run-artifact")
    page.locator("li.p-tab#logs").click()
    in_logs.first.wait_for()
    _shot(page, "04-launched-run-logs")
    in_logs.first.click()
    page.wait_for_url(f"**/runs/flow-run/{approval.flow_run_id}**")
    page.get_by_role("button", name="Resume").click()
    dialog = page.get_by_role("dialog")
    _field(dialog, "Approved").locator("label[role=switch]").click()
    _field(dialog, "Reason").locator("textarea").fill("bad deploy, roll it back")
    _field(dialog, "Decided By").locator("textarea").fill("ann")
    assert "{{" not in dialog.inner_text() and "release_dir" in dialog.inner_text()
    _shot(page, "05-resume-form")
    dialog.get_by_role("button", name="Submit").click()

    final = _wait("the run to finish", lambda: (lambda r: r if r["state_type"] in (
        "COMPLETED", "FAILED", "CRASHED") else None)(ui_stack.get(f"/flow_runs/{run_id}")), 180)
    assert final["state_type"] == "COMPLETED", final["state"]
    decided = store.approvals_for(incident.id, "rollback")[0]
    assert (decided.status, decided.decided_by) == ("approved", "prefect-ui:ann")
    assert service.current() == GOOD and service.health() == 200
    assert (ui_stack.reports / f"inc-{incident.number}.html").exists()
    assert f"incident:{incident.id}" in ui_stack.get(f"/flow_runs/{run_id}")["tags"]

    page.goto(f"{ui_stack.ui}/runs/flow-run/{run_id}")
    page.locator("li.p-tab#artifacts").click()
    page.get_by_text(f"inc-{incident.number}-report").first.wait_for()
    _shot(page, "06-run-artifacts")
    store.close()
