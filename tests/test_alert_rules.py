"""Firelane's own alerting rules (deploy/prometheus) and the liveness they rest on: promtool
checks and unit-tests the rules, every metric they use is on a real intake's /metrics, and a
real `firelane respond` process shows up live, and drops out when killed or stopped."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from firelane.models import (
    Execution,
    Incident,
    IncidentDraft,
    IncidentStatus,
    Severity,
    TimelineEvent,
    utcnow,
)
from firelane.settings import Settings
from firelane.store import Store, open_store
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig
from flows.respond.liveness import PAGING_ROLES, PROCESS_ROLES, Liveness
from tests.helpers import scrape_page

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "firelane-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "firelane-rules.test.yml"
DOC = ROOT / "docs" / "how-to" / "alert-on-firelane.md"
PROMTOOL = shutil.which("promtool")

if PROMTOOL is None and os.environ.get("FIRELANE_REQUIRE_PROMTOOL"):
    raise RuntimeError("FIRELANE_REQUIRE_PROMTOOL is set but promtool is missing (Debian's "
                       "prometheus package; make system-deps installs it)")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                    "(make test installs Debian's prometheus package)")


def _rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in done.stdout


@needs_promtool
def test_each_alert_fires_on_its_synthetic_series_and_not_on_healthy_ones() -> None:
    done = _promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    spec = yaml.safe_load(RULE_TESTS.read_text())
    fired = {check["alertname"] for case in spec["tests"] for check in case["alert_rule_test"]
             if check["exp_alerts"]}
    quiet = {check["alertname"] for case in spec["tests"] if case["name"].startswith("healthy")
             for check in case["alert_rule_test"] if not check["exp_alerts"]}
    every = {r["alert"] for r in _rules()}
    assert fired == every, f"never shown firing: {every - fired}"
    assert quiet == every, f"never shown quiet on healthy series: {every - quiet}"


def test_every_alert_has_a_severity_and_tells_the_on_call_what_to_do() -> None:
    headings = {re.sub(r"[^a-z0-9]", "", line.lstrip("#").strip().lower())
                for line in DOC.read_text().splitlines() if line.startswith("## ")}
    for rule in _rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        notes = rule["annotations"]
        assert notes["summary"] and len(notes["description"]) > 80, rule["alert"]
        anchor = notes["runbook_url"].rpartition("#")[2]
        assert notes["runbook_url"].startswith(
            "file:///opt/firelane/docs/how-to/alert-on-firelane.md#"), rule["alert"]
        assert anchor == rule["alert"].lower() and anchor in headings, rule["alert"]


def _scrape(app: Any) -> str:
    async def go() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            response = await client.get("/metrics")
            assert response.status_code == 200
            return response.text
    return asyncio.run(go())


def test_the_rules_use_only_metrics_and_roles_a_real_intake_exposes(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    page = scrape_page(_scrape(create_app(store, IntakeConfig())))
    exposed = {name for name, _ in page}
    used: set[str] = set()
    roles: set[str] = set()
    for rule in _rules():
        used |= set(re.findall(r"\bfirelane_[a-z_]+\b", rule["expr"]))
        for pattern in re.findall(r'role=~?"([^"]+)"', rule["expr"]):
            roles |= set(pattern.split("|"))
    assert used and used <= exposed, f"phantom metrics: {used - exposed}"
    assert roles <= set(PROCESS_ROLES)
    assert {"all", "urgent", "inline"} == set(PAGING_ROLES) <= roles
    live = {dict(labels)["role"]: value for (name, labels), value in page.items()
            if name == "firelane_processes_live"}
    assert live == dict.fromkeys(PROCESS_ROLES, 0.0)
    store.close()


def _resolved_with_page(store: Store, resolve_page: bool, dry_run: bool = False) -> Incident:
    incident = store.declare_incident(IncidentDraft(title="disk full", severity=Severity.SEV2,
                                                    service="db"))
    execution = store.create_execution(Execution(
        incident_id=incident.id, runbook_name="r", runbook_hash="h", runbook_source="",
        dry_run=dry_run))
    uses = ["pagerduty.trigger", *(["pagerduty.resolve"] if resolve_page else [])]
    for i, action in enumerate(uses):
        store.append_events([TimelineEvent(
            incident_id=incident.id, kind="step.succeeded", execution_id=execution.id,
            step_id=f"s{i}", at=utcnow() + timedelta(seconds=i), summary=action,
            details={"uses": action})])
    return store.set_status(incident.id, IncidentStatus.RESOLVED, actor="alertmanager")


def test_a_resolved_incident_counts_while_its_page_is_open(sq: Store) -> None:
    open_page = _resolved_with_page(sq, resolve_page=False)
    _resolved_with_page(sq, resolve_page=True)
    _resolved_with_page(sq, resolve_page=False, dry_run=True)
    assert sq.resolved_page_open() == 1
    assert sq.resolved_page_open(utcnow() + timedelta(days=2)) == 0
    sq.set_status(open_page.id, IncidentStatus.CLOSED)
    assert sq.resolved_page_open() == 0


def test_heartbeats_count_per_role_and_a_goodbye_removes_them(sq: Store) -> None:
    settings = Settings(liveness_seconds=1.0)

    async def scenario() -> tuple[dict[str, int], dict[str, int]]:
        alive = Liveness(sq, settings, ["intake", "inline"]).start()
        for _ in range(50):
            await asyncio.sleep(0.02)
            if alive.beats:
                break
        during = sq.live_processes(1.0)
        await alive.stop()
        return during, sq.live_processes(1.0)

    during, after = asyncio.run(scenario())
    assert during == {"intake": 1, "inline": 1}
    assert after == {}
    sq.beat_process("old", "urgent", "h", 1, utcnow() - timedelta(days=2),
                    now=utcnow() - timedelta(days=2))
    assert sq.live_processes(1.0) == {} and sq.prune_processes() == 1


def _live(app: Any) -> dict[str, float]:
    return {dict(labels)["role"]: value for (name, labels), value in
            scrape_page(_scrape(app)).items() if name == "firelane_processes_live"}


def _until(check: Callable[[], bool], seconds: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def responder_env(sqlite_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FIRELANE_DATABASE_URL": sqlite_url,
           "FIRELANE_WAKE_ADDRESS": "off", "FIRELANE_LIVENESS_SECONDS": "1.5",
           "FIRELANE_CATALOG": str(tmp_path / "none.yaml"),
           "FIRELANE_REPORTS_DIR": str(tmp_path / "reports")}
    env.pop("FIRELANE_PLUGINS", None)
    yield env


def _start_responder(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "respond", "--role", "urgent"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while "Firelane responder" not in proc.stdout.readline():
        assert proc.poll() is None and time.monotonic() < deadline, "responder did not start"
    return proc


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_real_paging_responder_is_live_until_killed_or_stopped(
        responder_env: dict[str, str], sig: signal.Signals) -> None:
    store = open_store(responder_env["FIRELANE_DATABASE_URL"])
    app = create_app(store, IntakeConfig(), settings=Settings(liveness_seconds=1.5))
    proc = _start_responder(responder_env)
    try:
        _until(lambda: _live(app)["urgent"] == 1, 20)
        assert _live(app)["all"] == 0
        proc.send_signal(sig)
        proc.wait(30)
        rows = [p.role for p in store.list_processes()]
        _until(lambda: _live(app)["urgent"] == 0, 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if sig == signal.SIGKILL:
        assert rows == ["urgent"], "a killed responder cannot say goodbye: its row ages out"
        assert [p.role for p in store.list_processes()] == ["urgent"]
    else:
        assert rows == [], "an orderly stop removes the process before it exits"
    store.close()


def test_the_worker_is_live_while_its_prefect_worker_runs_and_stops_it_on_sigterm(
        responder_env: dict[str, str], prefect_api: str) -> None:
    store = open_store(responder_env["FIRELANE_DATABASE_URL"])
    env = {**responder_env, "PREFECT_API_URL": prefect_api}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "worker", "--pool",
                             "liveness-test"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _until(lambda: store.live_processes(1.5).get("worker") == 1, 60)
        children = _children(proc.pid)
        assert any("prefect" in c and "worker" in c for c in children.values()), children
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "an orderly stop is exit 0 (systemd counts others failed)"
        assert store.list_processes() == []
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], \
            "the Prefect worker outlived its supervisor"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        store.close()


def _children(pid: int) -> dict[int, str]:
    found: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found[int(stat.parent.name)] = cmdline
    return found
