"""A real Alertmanager for tests (Debian's `prometheus-alertmanager`, 0.25): one process with
a receiver that notifies no one, in its own directory, on a free port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port
from firelane.models import Incident, Severity
from firelane.registry import ActionContext

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
if ALERTMANAGER is None and os.environ.get("FIRELANE_REQUIRE_ALERTMANAGER"):
    raise RuntimeError("FIRELANE_REQUIRE_ALERTMANAGER is set but Alertmanager is missing "
                       "(Debian's prometheus-alertmanager; make system-deps installs it)")
needs_alertmanager = pytest.mark.skipif(ALERTMANAGER is None, reason="Alertmanager is not "
                                        "installed (apt-get install prometheus-alertmanager)")

BASIC_USER = "firelane"
BASIC_PASSWORD = "prom-basic-pw"
BASIC_HASH = "$2b$10$A.UR5M.rFvCHklcFjwJk4eob/6RZybLDxVupmCZsh7hnX87iCAPpW"


class AlertmanagerProcess:
    """One `alertmanager` process, without clustering, routing everything to a receiver with
    no integrations; `basic_auth` guards its API with the test user."""

    def __init__(self, root: Path, basic_auth: bool = False) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = root / "alertmanager.yml"
        config.write_text("route: {receiver: nobody}\nreceivers: [{name: nobody}]\n")
        argv = [str(ALERTMANAGER), f"--config.file={config}",
                f"--storage.path={root / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=", "--log.level=warn"]
        if basic_auth:
            web = root / "web.yml"
            web.write_text(json.dumps({"basic_auth_users": {BASIC_USER: BASIC_HASH}}))
            argv.append(f"--web.config.file={web}")
        self.auth = (BASIC_USER, BASIC_PASSWORD) if basic_auth else None
        self.log_path = root / "alertmanager.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", auth=self.auth, timeout=1).status_code \
                        == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("alertmanager did not become ready within 30 s")

    def silences(self) -> list[dict[str, Any]]:
        """Every silence, as Alertmanager's API returns them."""
        answer = httpx.get(f"{self.url}/api/v2/silences", auth=self.auth, timeout=5)
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()
        return result

    def silence(self, silence_id: str) -> dict[str, Any]:
        """One silence, read straight from Alertmanager."""
        answer = httpx.get(f"{self.url}/api/v2/silence/{silence_id}", auth=self.auth,
                           timeout=5)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def stop(self) -> None:
        """Terminate the process (and wait for it), then close its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def make_ctx(connection: str, step: str = "quiet", key: str = "firelane-am-test",
             labels: dict[str, str] | None = None) -> ActionContext:
    """A context whose runbook names `credentials: {alertmanager: <connection>}`, for an
    incident opened by a `HighErrorRate` alert on `checkout`."""
    incident = Incident(id="c" * 32, number=12, title="Checkout 5xx above 1%",
                        severity=Severity.SEV2, service="checkout",
                        labels={"alertname": "HighErrorRate", "service": "checkout",
                                "severity": "critical"} if labels is None else labels)
    return ActionContext(incident=incident, execution_id="a" * 32, step_id=step,
                         idempotency_key=key, credentials={"alertmanager": connection})
