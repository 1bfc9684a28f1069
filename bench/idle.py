"""What an idle responder costs: CPU per `firelane respond` process with no work to do.

Starts two paging responders (`--role urgent`) and one flow responder (`--role flows`) against
an empty store, on SQLite and on PostgreSQL (a throwaway server from Debian's binaries), lets
them settle, then reads each process's CPU seconds from `/proc` over a fixed window. The
baseline in the same run is a `sleep` process measured the same way (it should cost ~0).
Prints a table and writes `bench/results/idle.json`.

    python bench/idle.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_results
from tests.pgserver import postgres_server, stop_process

ROOT = Path(__file__).resolve().parent.parent
ROLES = (("urgent-1", "urgent"), ("urgent-2", "urgent"), ("flows", "flows"))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(procs: dict[str, subprocess.Popen[bytes]], window: float) -> dict[str, float]:
    before = {name: _cpu_seconds(p.pid) for name, p in procs.items()}
    start = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - start
    for name, proc in procs.items():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} while idle")
    return {name: round(100 * (_cpu_seconds(p.pid) - before[name]) / elapsed, 2)
            for name, p in procs.items()}


def _run(store_url: str, window: float, settle: float, logs: Path) -> dict[str, float]:
    env = {**os.environ, "FIRELANE_DATABASE_URL": store_url, "PYTHONPATH": str(ROOT),
           "PREFECT_API_URL": "http://127.0.0.1:9/api", "FIRELANE_WAKE_ADDRESS": "off"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["baseline (sleep)"] = subprocess.Popen(["sleep", str(int(window + settle + 60))])
        for name, role in ROLES:
            log = open(logs / f"{name}.log", "w")  # noqa: SIM115
            procs[f"respond {name}"] = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "respond", "--role", role], env=env,
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(settle)
        return _measure(procs, window)
    finally:
        for proc in procs.values():
            with contextlib.suppress(Exception):
                stop_process(proc, grace=10)


def main() -> int:
    """Measure and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window")
    parser.add_argument("--settle", type=float, default=8.0, help="start-up time to skip")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="firelane-idle-"))
    figures: dict[str, Any] = {"window_seconds": args.seconds,
                               "unit": "percent of one core, per process"}
    sqlite = logs / "idle.db"
    sqlite.unlink(missing_ok=True)
    figures["sqlite"] = _run(f"sqlite:///{sqlite}", args.seconds, args.settle, logs)
    with postgres_server() as url:
        figures["postgresql"] = _run(url, args.seconds, args.settle, logs)
    for backend in ("sqlite", "postgresql"):
        for name, percent in figures[backend].items():
            if not 0 <= percent <= 100 * (os.cpu_count() or 1):
                raise SystemExit(f"impossible figure {backend}/{name}: {percent}%; not written")
            print(f"{backend:<11} {name:<18} {percent:6.2f} % of a core")
    print(f"wrote {write_results('idle', figures)} (process logs in {logs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
