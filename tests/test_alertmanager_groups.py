"""One Alertmanager notification group is one incident (its `groupKey`), unless the intake's
`group_by` says otherwise.

Before: a real Alertmanager (Debian's 0.25, the receiver of docs/how-to/connect-monitoring.md
with `credentials_file`) delivering one group of two firing alerts (`HighErrorRate` on `web-1`
and `web-2`) made two incidents, two pages and two war rooms; a storm across 50 instances
would have opened 50."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from firelane.store import Store, open_store
from flows.intake.config import IntakeConfig
from integrations.alerts.prometheus import parse_alertmanager
from integrations.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
if ALERTMANAGER is None and os.environ.get("FIRELANE_REQUIRE_ALERTMANAGER"):
    raise RuntimeError("FIRELANE_REQUIRE_ALERTMANAGER is set but Alertmanager is missing "
                       "(Debian's prometheus-alertmanager; make system-deps installs it)")
needs_alertmanager = pytest.mark.skipif(ALERTMANAGER is None, reason="Alertmanager is not "
                                        "installed (apt-get install prometheus-alertmanager)")


def _group(*instances: str, key: str = '{}:{alertname="HighErrorRate"}') -> bytes:
    return json.dumps({"version": "4", "groupKey": key, "status": "firing",
                       "receiver": "firelane", "groupLabels": {"alertname": "HighErrorRate"},
                       "commonLabels": {"alertname": "HighErrorRate", "service": "web",
                                        "severity": "critical"},
                       "alerts": [{"status": "firing", "labels": {
                           "alertname": "HighErrorRate", "service": "web",
                           "severity": "critical", "instance": i},
                           "annotations": {"summary": f"5xx above 5% on {i}"},
                           "fingerprint": f"fp-{i}"} for i in instances]}).encode()


def _accept(store: Store, body: bytes, config: IntakeConfig) -> list[str | None]:
    alerts = parse_alertmanager(json.loads(body))
    return [a.incident_id for a in store.accept_alerts(alerts, policy=config.policy())]


def test_a_notification_group_is_one_incident_by_default(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    first = _accept(store, _group("web-1", "web-2"), IntakeConfig())
    later = _accept(store, _group("web-3"), IntakeConfig())
    other = _accept(store, _group("db-1", key='{}:{alertname="Other"}'), IntakeConfig())
    assert len(set(first)) == 1 and later == first[:1]
    assert other != first[:1] and len(store.list_incidents()) == 2
    [incident, _] = sorted(store.list_incidents(), key=lambda i: i.number)
    assert incident.title == "HighErrorRate: 2 alerts (web-1, web-2)"
    grouped = [e for e in store.timeline(incident.id) if e.kind == "alert.grouped"]
    assert len(grouped) == 2
    assert grouped[0].details["group_key"] == 'sender:alertmanager:{}:{alertname="HighErrorRate"}'


def test_group_by_chooses_otherwise(tmp_path: Path) -> None:
    def incidents(group_by: list[str]) -> int:
        store = open_store(f"sqlite:///{tmp_path / ('-'.join(group_by) + 'x.db')}")
        return len(set(_accept(store, _group("web-1", "web-2"), IntakeConfig(group_by=group_by))))

    assert (incidents([]), incidents(["instance"]), incidents(["service"])) == (2, 2, 1)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    """Start Debian's Alertmanager with the documented receiver, pointed at an intake port;
    yields a function taking that port and returning Alertmanager's URL."""
    assert ALERTMANAGER is not None
    procs: list[subprocess.Popen[bytes]] = []

    def start(intake_port: int) -> str:
        from bench.common import free_port

        (tmp_path / "firelane-token").write_text("am-group-token\n")
        config = tmp_path / "alertmanager.yml"
        config.write_text(f"""
route:
  receiver: firelane
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: firelane
    webhook_configs:
      - url: http://127.0.0.1:{intake_port}/alerts/alertmanager
        send_resolved: true
        max_alerts: 1000
        http_config:
          authorization: {{type: Bearer, credentials_file: {tmp_path / 'firelane-token'}}}
""")
        port = free_port()
        log = open(tmp_path / "alertmanager.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [str(ALERTMANAGER), f"--config.file={config}", f"--storage.path={tmp_path}/am",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "alertmanager.log").read_text()
            time.sleep(0.1)

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def _fire(url: str, *instances: str) -> None:
    answer = httpx.post(f"{url}/api/v2/alerts", json=[
        {"labels": {"alertname": "HighErrorRate", "service": "web", "severity": "critical",
                    "instance": i}, "annotations": {"summary": f"5xx above 5% on {i}"}}
        for i in instances], timeout=5)
    assert answer.status_code == 200, answer.text


@needs_alertmanager
@pytest.mark.usefixtures("prefect_api")
def test_a_real_alertmanager_group_is_one_incident_one_page_one_war_room(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path,
        alertmanager: Callable[[int], str]) -> None:
    from bench.common import free_port

    config = tmp_path / "intake.yaml"
    config.write_text(f"sources:\n  alertmanager: {{bearer_token: {{file: "
                      f"{tmp_path / 'firelane-token'}}}}}\n")
    (tmp_path / "firelane-token").write_text("am-group-token\n")
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    shutil.copy(ROOT / "runbooks" / "declare-incident.yaml", runbooks)
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FIRELANE_WAKE_ADDRESS": "off",
           "FIRELANE_RUNBOOKS_DIR": str(runbooks)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--port",
                                 str(port), "--config", str(config), "--sandbox"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    store = open_store(firelane_env)

    def until(check: Callable[[], bool], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.1)

    try:
        until(lambda: _healthy(port))
        am = alertmanager(port)
        _fire(am, "web-1", "web-2")
        until(lambda: _alerts(store) == 2)
        [incident] = store.list_incidents()
        assert incident.title == "HighErrorRate: 2 alerts (web-1, web-2)"
        until(lambda: store.list_executions(incident.id)[0].status == "succeeded", 90)
        _fire(am, *(f"web-{n}" for n in range(3, 51)))
        until(lambda: _alerts(store) == 50)
        assert [i.id for i in store.list_incidents()] == [incident.id]
        assert len(store.list_executions(incident.id)) == 1
        state = sandbox.state.dump()
        assert (len(state["pd_incidents"]), len(state["slack_channels"]),
                len(state["jira_issues"])) == (1, 1, 1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _alerts(store: Store) -> int:
    """Distinct alerts stored (Alertmanager sends a group's every alert in each notification;
    the repeats are stored and counted as duplicates)."""
    return len({a.fingerprint for i in store.list_incidents() for a in store.alerts_of(i.id)})
