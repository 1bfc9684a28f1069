"""Shared benchmark helpers: a local Prefect server, a loopback stand-in, percentiles, the
consistency check every run passes before its JSON is written, and the JSON itself."""

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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.machine import Snapshot, environment, snapshot
from flows.cli.priority import FLOWS_NICE
from tests.pgserver import stop_process

RESULTS = Path(__file__).resolve().parent / "results"
SUMMARY_KEYS = frozenset({"n", "p50", "p95", "p99", "min", "max", "mean"})
_STARTED: Snapshot = snapshot()
SANDBOX_ZOOM_LIMIT = "1000000"
"""`firelane sandbox --zoom-daily-limit` in the benchmarks: they open more incidents in minutes
than Zoom lets one user host in a day (100 meetings); what they measure is latency, and a
production storm of that size needs `spare_hosts` on the Zoom block."""


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prefect_server(database_url: str | None = None) -> Iterator[str]:
    """A Prefect server on a free port with its own PREFECT_HOME; yields the API URL.

    `database_url` (`postgresql+asyncpg://...`) puts it on PostgreSQL; the default is SQLite,
    which stalls about 2 s whenever a write meets "database is locked" (PREFECT.md). It runs at
    the flow runs' CPU priority (`FLOWS_NICE`), as its systemd unit does.
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
    proc = subprocess.Popen(["nice", "-n", str(FLOWS_NICE - os.getpriority(os.PRIO_PROCESS, 0)),
                             sys.executable, "-m", "prefect", "server", "start", "--host",
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


class InconsistentRun(SystemExit):
    """A run whose samples cannot all be true; raised before any JSON is written, so a
    benchmark exits non-zero with every problem listed instead of publishing them."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{what}: not written, the run is not self-consistent:\n  "
                         + "\n  ".join(problems))


def match_probes(what: str, sent: Mapping[str, float],
                 arrived: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Milliseconds from each probe's send to its own arrival, by probe id.

    `sent` maps each probe's unique id to when it was sent; `arrived` is every observed arrival
    that carries a probe id of this measure (the id travels inside what is observed: an alert
    name, a ticket summary, a channel name). Raises `InconsistentRun` unless each probe sent
    arrived exactly once, no earlier than it was sent, and every arrival belongs to a probe
    sent: a latency matched to someone else's arrival is how negative figures were published.
    """
    problems: list[str] = []
    by_probe: dict[str, list[float]] = {}
    for probe, at in arrived:
        if probe in sent:
            by_probe.setdefault(probe, []).append(at)
        else:
            problems.append(f"{what}: unmatched arrival {probe!r}: no probe of that id was sent")
    latencies: dict[str, float] = {}
    for probe, at_send in sent.items():
        got = by_probe.get(probe, [])
        if not got:
            problems.append(f"{what}: probe {probe!r} was sent and never arrived (missing)")
        elif len(got) > 1:
            problems.append(f"{what}: probe {probe!r} arrived {len(got)} times, expected once")
        elif got[0] < at_send:
            problems.append(f"{what}: probe {probe!r} arrived {(at_send - got[0]) * 1000:.2f} "
                            "ms before it was sent (negative latency)")
        else:
            latencies[probe] = (got[0] - at_send) * 1000
    if problems:
        raise InconsistentRun(what, problems)
    return latencies


def figure_problems(figures: Mapping[str, Any], path: str = "") -> list[str]:
    """Every sample summary (a `summarize()` dict) under `figures` that cannot be true: no
    samples, a negative sample, or percentiles out of order; each as `path: problem`."""
    problems: list[str] = []
    if figures.keys() >= SUMMARY_KEYS:
        if not figures["n"]:
            problems.append(f"{path or 'figures'}: no samples")
        elif figures["min"] < 0:
            problems.append(f"{path or 'figures'}: negative sample {figures['min']}")
        elif not (figures["min"] <= figures["p50"] <= figures["p95"] <= figures["p99"]
                  <= figures["max"]):
            problems.append(f"{path or 'figures'}: percentiles out of order")
        return problems
    for key, value in figures.items():
        if isinstance(value, Mapping):
            problems += figure_problems(value, f"{path}.{key}" if path else str(key))
    return problems


def check_figures(name: str, figures: Mapping[str, Any]) -> None:
    """Raise `InconsistentRun` when any figure of benchmark `name` cannot be true."""
    if problems := figure_problems(figures):
        raise InconsistentRun(name, problems)


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write `bench/results/<name>.json` with machine, versions, date and what else ran on the
    machine since this module was imported (the benchmark's start), after `check_figures`:
    an inconsistent run writes nothing."""
    check_figures(name, figures)
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "versions": {p: metadata.version(p) for p in ("prefect", "httpx", "sqlalchemy")},
        "environment": environment(_STARTED, snapshot()),
        "consistency": "checked",
        **figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def peak_memory_mib_by_role(roles: dict[str, str]) -> dict[str, float]:
    """The largest peak resident memory (`VmHWM`, MiB) of any live process of each role in
    `roles` (matched on the command line as `cpu_snapshot` does); roles with no live
    process are left out."""
    out: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        role = next((r for r, needle in roles.items() if needle in cmdline), None)
        peak = next((int(line.split()[1]) for line in status.splitlines()
                     if line.startswith("VmHWM:")), None)
        if role is not None and peak is not None:
            out[role] = max(out.get(role, 0.0), round(peak / 1024, 1))
    return out


CpuSnapshot = dict[int, tuple[str, float]]


def cpu_snapshot(roles: dict[str, str]) -> CpuSnapshot:
    """Each live process's role (the first of `roles` whose value its command line contains,
    else `other`) and CPU seconds so far (user + system, Linux `/proc`), by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    out: CpuSnapshot = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        role = next((r for r, needle in roles.items() if needle in cmdline), "other")
        out[int(entry.name)] = (role, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_used(roles: dict[str, str], before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds each role used between two snapshots, rounded to 0.1, per process alive at
    the second (a process that started between them counts from zero). A process that exited
    in between is not counted: `/proc` has lost its CPU time (so a role can read low, never
    below zero; PostgreSQL's backends come and go with their connections)."""
    used = dict.fromkeys([*roles, "other"], 0.0)
    for pid, (role, seconds) in after.items():
        earlier = before.get(pid)
        used[role] += seconds - (earlier[1] if earlier is not None and earlier[0] == role else 0)
    return {k: round(max(0.0, v), 1) for k, v in used.items()}
