"""Every alert real: the sample service counts its requests, a real Prometheus scrapes it and
evaluates the HighErrorRate rule on its 5xx ratio (the rule `make demo` uses), and a real
Alertmanager posts firing and then resolved notifications to a running intake with its bearer
token. The incident is declared from the firing notification with the rule's labels and
summary, and resolved by the resolved one once the service is healthy again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.common import free_port
from firelane.store import Store, open_store
from tests.prometheus_fixtures import PROMETHEUS, needs_prometheus
from tests.test_alertmanager_groups import (  # noqa: F401  (the `alertmanager` fixture)
    alertmanager,
    needs_alertmanager,
)

ROOT = Path(__file__).resolve().parent.parent
RULE = ('(sum(rate(http_requests_total{job="web",path="/",code=~"5.."}[10s])) or vector(0)) '
        '/ sum(rate(http_requests_total{job="web",path="/"}[10s])) > 0.05')

pytestmark = [needs_prometheus, needs_alertmanager, pytest.mark.timeout(240)]


def _start(argv: list[str], log: Path, env: dict[str, str] | None = None,
           ) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The sample service on a broken release (its health file says so), with 20 requests
    a second of traffic; yields its release folder and port."""
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy(ROOT / "examples" / "sample_service" / "app.py", release / "app.py")
    (release / "RELEASE_HEALTH").write_text("broken")
    port = free_port()
    proc = _start([sys.executable, str(release / "app.py"), str(port)], tmp_path / "web.log")
    halt = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=1) as client:
            while not halt.wait(0.05):
                try:
                    client.get(f"http://127.0.0.1:{port}/")
                except httpx.HTTPError:
                    continue
    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    yield release, port
    halt.set()
    thread.join(5)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)


def _prometheus(root: Path, web_port: int, am_url: str) -> subprocess.Popen[bytes]:
    root.mkdir()
    (root / "rules.yml").write_text(json.dumps({"groups": [{"name": "web", "interval": "1s",
        "rules": [{"alert": "HighErrorRate", "expr": RULE,
                   "labels": {"severity": "critical", "service": "web"},
                   "annotations": {"summary": "web 5xx rate above 5%"}}]}]}))
    (root / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(root / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [am_url.removeprefix("http://")]}]}]},
        "scrape_configs": [{"job_name": "web", "static_configs": [
            {"targets": [f"127.0.0.1:{web_port}"]}]}]}))
    assert PROMETHEUS is not None
    return _start([PROMETHEUS, f"--config.file={root / 'prometheus.yml'}",
                   f"--storage.tsdb.path={root / 'data'}",
                   f"--web.listen-address=127.0.0.1:{free_port()}", "--log.level=warn"],
                  root / "prometheus.log")


def test_prometheus_and_alertmanager_fire_and_resolve_an_incident_for_real(
        sqlite_url: str, tmp_path: Path, service: tuple[Path, int],
        alertmanager: Callable[[int], str]) -> None:  # noqa: F811
    release, web_port = service
    (tmp_path / "firelane-token").write_text("am-group-token\n")
    config = tmp_path / "intake.yaml"
    config.write_text(json.dumps({"auto_resolve": True, "sources": {"alertmanager": {
        "bearer_token": {"file": str(tmp_path / "firelane-token")}}}}))
    (tmp_path / "runbooks").mkdir()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FIRELANE_WAKE_ADDRESS": "off",
           "FIRELANE_DATABASE_URL": sqlite_url,
           "FIRELANE_RUNBOOKS_DIR": str(tmp_path / "runbooks")}
    intake = _start([sys.executable, "-m", "flows.cli", "serve", "--port", str(port),
                     "--config", str(config), "--responder", "external"], tmp_path / "serve.log",
                    env)
    store: Store = open_store(sqlite_url)
    prometheus: subprocess.Popen[bytes] | None = None

    def until(check: Callable[[], object], seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            assert intake.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.2)

    try:
        until(lambda: _healthy(port))
        prometheus = _prometheus(tmp_path / "prometheus", web_port, alertmanager(port))
        until(lambda: store.list_incidents())
        [incident] = store.list_incidents()
        assert (incident.title, incident.severity.value, incident.service) == (
            "web 5xx rate above 5%", "SEV1", "web")
        assert incident.labels["alertname"] == "HighErrorRate"
        (release / "RELEASE_HEALTH").write_text("ok")
        until(lambda: "alert.resolved" in [e.kind for e in store.timeline(incident.id)])
        assert store.get_incident(incident.id).status.value == "resolved"
        assert [e.kind for e in store.timeline(incident.id)].count("alert.received") == 1
    finally:
        if prometheus is not None:
            os.killpg(prometheus.pid, signal.SIGTERM)
            prometheus.wait(15)
        os.killpg(intake.pid, signal.SIGTERM)
        intake.wait(30)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
