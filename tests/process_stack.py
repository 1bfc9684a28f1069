"""Real Firelane processes on one store for fault tests: an intake (`--responder external`)
and responders, each a `python -m flows.cli` child in its own session with its own log; and
the `pg` fixture, a PostgreSQL of the test's own that it may stop and start (a plugin in
tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.common import free_port
from firelane.store import open_store
from integrations.sandbox import Sandbox
from tests.helpers import storm_alert
from tests.pgserver import PostgresServer, find_pg_bin, restartable_postgres

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "stack-token"


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    """A PostgreSQL of its own (the session's is shared with other tests), migrated."""
    if find_pg_bin() is None:
        if os.environ.get("FIRELANE_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL binaries are missing but FIRELANE_REQUIRE_POSTGRES is set")
        pytest.skip("PostgreSQL is not installed here")
    with restartable_postgres() as server:
        open_store(server.url).close()
        yield server


class Stack:
    """An intake (`--responder external`) and the responders `roles` names on one store
    (`name` → role, e.g. {"responder": "urgent"}); `extra_env` adds or overrides settings."""

    def __init__(self, pg: PostgresServer, sandbox: Sandbox, work: Path,
                 roles: dict[str, str] | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.pg, self.sandbox, self.work = pg, sandbox, work
        self.roles = roles if roles is not None else {"responder": "urgent"}
        self.port = free_port()
        (work / "intake.yaml").write_text(
            "default_runbook: declare-incident\n"
            "sources:\n  alertmanager: {bearer_token: {env: STACK_TOKEN}}\n")
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "FIRELANE_DATABASE_URL": pg.url,
                    "STACK_TOKEN": TOKEN, "FIRELANE_WAKE_ADDRESS": "off",
                    "FIRELANE_LEASE_SECONDS": "5", "FIRELANE_CATALOG": str(work / "none.yaml"),
                    "FIRELANE_RUNBOOKS_DIR": str(ROOT / "runbooks"),
                    "FIRELANE_REPORTS_DIR": str(work / "reports"),
                    "FIRELANE_SANDBOX_CLIENT_TIMEOUT": "10", **(extra_env or {})}
        self.env.pop("FIRELANE_PLUGINS", None)
        self.procs: dict[str, subprocess.Popen[str]] = {}

    @property
    def url(self) -> str:
        """The intake's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, args: list[str], ready: str) -> None:
        """Start `firelane <args>` as `name` and wait for the line `ready` on its stdout."""
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=ROOT,
                                env=self.env, stdout=subprocess.PIPE,
                                stderr=open(self.work / f"{name}.log", "w"),  # noqa: SIM115
                                text=True, start_new_session=True)
        self.procs[name] = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while ready not in proc.stdout.readline():
            assert proc.poll() is None and time.monotonic() < deadline, f"{name} did not start"

    def start_all(self) -> None:
        """The intake, then every responder; returns once the intake answers."""
        self.start("intake", ["serve", "--port", str(self.port), "--config",
                              str(self.work / "intake.yaml"), "--sandbox", "--responder",
                              "external"], "Firelane intake on")
        for name, role in self.roles.items():
            self.start(name, ["respond", "--role", role], "Firelane responder")
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the intake does not answer"
                time.sleep(0.1)

    def kill(self, name: str) -> None:
        """SIGKILL `name` (its whole session) and reap it."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        """SIGTERM every process still running (SIGKILL after 20 s)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def alive(self) -> dict[str, int | None]:
        """Each process's exit code (None: still running)."""
        return {name: proc.poll() for name, proc in self.procs.items()}

    def log(self, name: str) -> str:
        """What `name` wrote to stderr."""
        return (self.work / f"{name}.log").read_text(errors="replace")

    def pages(self) -> list[str]:
        """The dedup keys of the PagerDuty incidents the sandbox holds."""
        return [i["incident_key"] for i in self.sandbox.state.dump()["pd_incidents"].values()]

    def post(self, n: int, prefix: str = "stack") -> httpx.Response:
        """Send alert `n` (its own fingerprint) to the intake."""
        return httpx.post(f"{self.url}/alerts/alertmanager",
                          content=storm_alert(n, 10_000, prefix), timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}",
                                   "Content-Type": "application/json"})
