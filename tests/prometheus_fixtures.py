"""A real Prometheus for tests: a process scraping a tiny exporter whose values the test sets,
plus small local servers that answer slowly or record what they were sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port
from firelane.models import Incident, Severity
from firelane.registry import ActionContext

PROMETHEUS = shutil.which("prometheus")
if PROMETHEUS is None and os.environ.get("FIRELANE_REQUIRE_PROMETHEUS"):
    raise RuntimeError("FIRELANE_REQUIRE_PROMETHEUS is set but prometheus is missing (Debian's "
                       "prometheus package; make system-deps installs it)")
needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed "
                                      "(make system-deps installs Debian's prometheus package)")

BASIC_USER = "firelane"
BASIC_PASSWORD = "prom-basic-pw"
BASIC_HASH = "$2b$10$A.UR5M.rFvCHklcFjwJk4eob/6RZybLDxVupmCZsh7hnX87iCAPpW"


class Exporter:
    """`/metrics` serving `firelane_test_ratio{service=...}` with values the test sets."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with exporter.lock:
                    lines = [f'firelane_test_ratio{{service="{k}"}} {v!r}'
                             for k, v in sorted(exporter.values.items())]
                body = ("# TYPE firelane_test_ratio gauge\n" + "\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, **values: float) -> None:
        """Replace every series' value."""
        with self.lock:
            self.values = dict(values)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PrometheusProcess:
    """One `prometheus` process scraping `targets` every second, in its own directory."""

    def __init__(self, root: Path, targets: list[str], basic_auth: bool = False) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = root / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "app", "static_configs": [{"targets": targets}]}],
        }))
        argv = [str(PROMETHEUS), f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={root / 'data'}", "--log.level=warn"]
        if basic_auth:
            web = root / "web.yml"
            web.write_text(json.dumps({"basic_auth_users": {BASIC_USER: BASIC_HASH}}))
            argv.append(f"--web.config.file={web}")
        self.auth = (BASIC_USER, BASIC_PASSWORD) if basic_auth else None
        self.log = (root / "prometheus.log").open("w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/-/ready", auth=self.auth, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("prometheus did not become ready within 60 s")

    def wait_for(self, promql: str, expect: float, timeout: float = 30) -> None:
        """Block until every series of `promql` reads `expect` (a scrape has landed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = httpx.post(f"{self.url}/api/v1/query", data={"query": promql},
                              auth=self.auth, timeout=5).json()
            result = body["data"]["result"]
            if result and all(float(s["value"][1]) == expect for s in result):
                return
            time.sleep(0.2)
        raise AssertionError(f"{promql} never read {expect}")

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


class LocalServer:
    """A server answering `/api/v1/query` with a canned Prometheus answer, recording every
    request's headers and form; `delay` makes it answer late (a slow Prometheus)."""

    def __init__(self, delay: float = 0.0, status: int = 200,
                 body: dict[str, Any] | None = None) -> None:
        self.requests: list[tuple[dict[str, str], str]] = []
        self.release = threading.Event()
        server = self
        answer = json.dumps(body or {"status": "success", "data": {
            "resultType": "scalar", "result": [1700000000.0, "1"]}}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = self.rfile.read(length).decode()
                server.requests.append((dict(self.headers.items()), form))
                if delay:
                    server.release.wait(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def local_server(**kwargs: Any) -> Iterator[LocalServer]:
    """A `LocalServer`, shut down (its slow answers released) on exit."""
    server = LocalServer(**kwargs)
    try:
        yield server
    finally:
        server.close()


def make_ctx(connection: str) -> ActionContext:
    """A context whose runbook names `credentials: {prometheus: <connection>}`."""
    incident = Incident(id="b" * 32, number=9, title="Checkout 5xx above 1%",
                        severity=Severity.SEV2, service="checkout")
    return ActionContext(incident=incident, execution_id="f" * 32, step_id="verify",
                         idempotency_key="firelane-prometheus-test",
                         credentials={"prometheus": connection})
