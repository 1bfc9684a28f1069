"""The intake SIGKILLed in the middle of a 10,000-alert storm, then restarted on the same port.

Senders retry what was not answered (as Alertmanager does). Every alert that got a 202 must be in
the store and belong to an incident, each fingerprint must make one incident, and each
incident's response (the `declare-incident` runbook, run by the intake's inline responder and
resumed by the restarted intake) must run exactly once: one ticket, page, channel and meeting
each in the sandbox. The intake is killed twice: early, with responses in flight, and late, with
alert batches being committed. Part of `make test-faults` (marker `storm`: plain `pytest`
leaves it out).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port, prefect_server
from bench.intake_support import process
from tests.helpers import storm_alert
from tests.pgserver import create_database

ROOT = Path(__file__).resolve().parent.parent
ALERTS = int(os.environ.get("FIRELANE_CRASH_ALERTS", "10000"))
FINGERPRINTS = 100
CLIENTS = 20
KILLS = (ALERTS * 4 // 100, ALERTS * 60 // 100)
TOKEN = "crash-" + secrets.token_hex(8)

pytestmark = [pytest.mark.storm, pytest.mark.timeout(900)]


def _alert(n: int) -> bytes:
    return storm_alert(n, FINGERPRINTS, "crash")


class Intake:
    """`firelane serve` as a process that can be SIGKILLed and started again."""

    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.env, self.work, self.port = env, work, free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = open(self.work / f"intake-{self.starts}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--port", str(self.port), "--config",
             str(self.work / "intake.yaml"), "--sandbox"], env=self.env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        while "Firelane intake on" not in self.proc.stdout.readline():
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                f"the intake did not start; see {log.name}"

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def crash_stack(pg_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    (tmp_path / "intake.yaml").write_text(
        "default_runbook: declare-incident\n"
        "sources:\n  alertmanager: {bearer_token: {env: CRASH_TOKEN}}\n")
    prefect_db = create_database(pg_url, "crash_prefect").replace("+psycopg", "+asyncpg")
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(prefect_server(prefect_db))
        env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(ROOT),
               "FIRELANE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
               "CRASH_TOKEN": TOKEN, "PREFECT_LOGGING_LEVEL": "WARNING",
               "FIRELANE_CATALOG": str(tmp_path / "none.yaml"),
               "FIRELANE_REPORTS_DIR": str(tmp_path / "reports"),
               "FIRELANE_WAKE_ADDRESS": "off", "FIRELANE_RETRY_BASE_SECONDS": "0.05",
               "FIRELANE_LEASE_SECONDS": "5"}
        env.pop("FIRELANE_PLUGINS", None)
        line = stack.enter_context(process([sys.executable, "-m", "flows.cli", "sandbox"], env,
                                           "export FIRELANE_SANDBOX_URL",
                                           tmp_path / "sandbox.log"))
        sandbox_url, ca = (part.split("=", 1)[1] for part in line.split()[1:3])
        env.update(FIRELANE_SANDBOX_URL=sandbox_url, FIRELANE_SANDBOX_CA=ca)
        intake = Intake(env, tmp_path)
        stack.callback(intake.stop)
        intake.start()
        yield {"intake": intake, "sandbox": sandbox_url, "ca": ca,
               "store_url": env["FIRELANE_DATABASE_URL"]}


async def _storm(intake: Intake) -> tuple[set[str], int, list[float]]:
    """Send every alert until it gets a 202; SIGKILL and restart the intake part-way."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(ALERTS):
        queue.put_nowait(n)
    accepted: set[str] = set()
    unanswered = 0
    down: list[float] = []

    async def client() -> None:
        nonlocal unanswered
        async with httpx.AsyncClient(timeout=30) as http:
            while not queue.empty():
                n = queue.get_nowait()
                while True:
                    try:
                        r = await http.post(f"{intake.url}/alerts/alertmanager",
                                            content=_alert(n), headers={
                                                "Authorization": f"Bearer {TOKEN}",
                                                "Content-Type": "application/json"})
                    except httpx.HTTPError:
                        unanswered += 1
                        await asyncio.sleep(0.2)
                        continue
                    if r.status_code == 202:
                        accepted.update(a["id"] for a in r.json()["alerts"])
                        break
                    assert r.status_code == 503, (r.status_code, r.text)
                    await asyncio.sleep(0.2)

    async def killer() -> None:
        for after in KILLS:
            while len(accepted) < after:
                await asyncio.sleep(0.01)
            intake.kill()
            t0 = time.monotonic()
            await asyncio.sleep(1)
            await asyncio.to_thread(intake.start)
            down.append(time.monotonic() - t0)

    await asyncio.gather(killer(), *(client() for _ in range(CLIENTS)))
    assert len(down) == len(KILLS)
    return accepted, unanswered, down


def test_intake_sigkilled_mid_storm_loses_nothing_and_responds_once(
        crash_stack: dict[str, Any]) -> None:
    from sqlalchemy import select

    from firelane.store import open_store
    from firelane.store.tables import alerts, executions, incidents

    started = time.monotonic()
    accepted, unanswered, down = asyncio.run(_storm(crash_stack["intake"]))
    assert len(accepted) == ALERTS
    store = open_store(crash_stack["store_url"], migrate=False)

    def unsettled() -> int:
        with store.tx(write=False) as conn:
            rows = conn.execute(select(executions.c.status)).all()
        return sum(r.status not in ("succeeded", "failed") for r in rows)

    deadline = time.monotonic() + 600
    while unsettled() and time.monotonic() < deadline:
        time.sleep(1)
    with store.tx(write=False) as conn:
        stored = dict(conn.execute(select(alerts.c.id, alerts.c.incident_id)).all())
        titles = Counter(r.title for r in conn.execute(select(incidents.c.title)).all())
        runs = conn.execute(select(executions.c.incident_id, executions.c.status)).all()
    store.close()
    missing = accepted - stored.keys()
    assert not missing, f"{len(missing)} alerts answered 202 are not in the store"
    assert all(stored[a] for a in accepted), "an accepted alert belongs to no incident"
    assert len(titles) == FINGERPRINTS and set(titles.values()) == {1}, titles
    assert Counter(r.incident_id for r in runs).most_common(1)[0][1] == 1
    assert Counter(r.status for r in runs) == Counter({"succeeded": FINGERPRINTS}), runs
    state = httpx.get(f"{crash_stack['sandbox']}/_admin/state", timeout=30,
                      verify=ssl.create_default_context(cafile=crash_stack["ca"])).json()
    keys = [i["incident_key"] for i in state["pd_incidents"].values()]
    assert len(keys) == len(set(keys)) == FINGERPRINTS, "a page twice or lost"
    assert len(state["jira_issues"]) == FINGERPRINTS, "a ticket twice or lost"
    assert len(state["slack_channels"]) == FINGERPRINTS, "a war room twice or lost"
    assert len(state["zoom_meetings"]) == FINGERPRINTS, "a bridge twice or lost"
    print(f"\nintake crash: {ALERTS} alerts, SIGKILL after {' and '.join(map(str, KILLS))} "
          f"accepted, back in {' and '.join(f'{d:.1f}' for d in down)} s; {unanswered} "
          "requests unanswered and retried; all stored, "
          f"{FINGERPRINTS} incidents, every response once, in {time.monotonic() - started:.0f} s")
