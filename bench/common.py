"""Shared benchmark helpers: a local Prefect server, a loopback stand-in, percentiles, JSON."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.pgserver import stop_process

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prefect_server(database_url: str | None = None) -> Iterator[str]:
    """A Prefect server on a free port with its own PREFECT_HOME; yields the API URL.

    `database_url` (`postgresql+asyncpg://...`) puts it on PostgreSQL; the default is SQLite,
    which stalls about 2 s whenever a write meets "database is locked" (PREFECT.md).
    """
    port = free_port()
    home = tempfile.mkdtemp(prefix="firelane-bench-prefect-")
    env = {**os.environ, "PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    url = f"http://127.0.0.1:{port}/api"
    log = open(os.path.join(home, "server.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Prefect server did not start; see {log.name}") from None
                time.sleep(0.3)
        yield url
    finally:
        stop_process(proc)
        log.close()


class StandIn:
    """A loopback HTTP server that records when each request arrives (perf_counter)."""

    def __init__(self) -> None:
        arrivals: dict[str, list[float]] = {}
        self.arrivals = arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.perf_counter()
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                arrivals.setdefault(str(body.get("marker")), []).append(at)
                payload = b'{"status": "success", "dedup_key": "k"}'
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v2/enqueue"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def summarize(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/min/max/mean in milliseconds."""
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {"n": len(ordered), "p50": round(pct(50), 2), "p95": round(pct(95), 2),
            "p99": round(pct(99), 2), "min": round(ordered[0], 2),
            "max": round(ordered[-1], 2), "mean": round(statistics.fmean(ordered), 2)}


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write `bench/results/<name>.json` with machine, versions and date."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "versions": {p: metadata.version(p) for p in ("prefect", "httpx", "sqlalchemy")},
        **figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def cpu_seconds_by_role(roles: dict[str, str]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by every live process whose command line
    contains one of `roles`' values, summed per role (Linux `/proc`); the rest as `other`."""
    tick = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys([*roles, "other"], 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        role = next((r for r, needle in roles.items() if needle in cmdline), "other")
        out[role] += seconds
    return out
