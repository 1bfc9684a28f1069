"""What an idle responder costs, and how fast it pages when an alert arrives after a quiet spell.

CPU: two paging responders (`--role urgent`) and one flow responder (`--role flows`) against an
empty store, on SQLite and on PostgreSQL (a throwaway server from Debian's binaries), each
process's CPU seconds read from `/proc` over a fixed window after a settling time, in two modes
in the same run:

- `before`: what every responder did until LISTEN/NOTIFY, a 5 ms poll and no wake-up source
  (`FIRELANE_WAKE_ADDRESS=off`, `FIRELANE_FLOWS_WAKE_ADDRESS=off`, `FIRELANE_LISTEN=false`);
- `after`: the defaults, `LISTEN` on PostgreSQL and the UDP wake-ups, polling every 1 s as a
  fallback.

A `sleep` process measured the same way is the baseline (it should cost ~0).

Page latency: the sandbox, an intake (`--responder external`) and one idle `--role urgent`
responder; N alerts one at a time, 0.5-1.5 s apart (so the responder is idle when each arrives
and the arrivals do not line up with its poll), alert sent → page created at the sandbox. On
PostgreSQL woken by `NOTIFY` (UDP off) vs polling only every 5 ms; on SQLite woken by the UDP
nudge vs polling only.

Refuses to write impossible figures (CPU below 0 or above 100 % per core, a negative latency, a
page missing). The previous run's CPU figures are kept under `previous_run`. Writes
`bench/results/idle.json`.

    python bench/idle.py [--seconds 30] [--alerts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import RESULTS, SANDBOX_ZOOM_LIMIT, free_port, summarize, write_results
from bench.intake import TOKEN, alert
from bench.intake_support import Arrivals, process
from tests.pgserver import postgres_server, stop_process

ROOT = Path(__file__).resolve().parent.parent
ROLES = (("urgent-1", "urgent"), ("urgent-2", "urgent"), ("flows", "flows"))
POLLING_ONLY = {"FIRELANE_WAKE_ADDRESS": "off", "FIRELANE_FLOWS_WAKE_ADDRESS": "off",
                "FIRELANE_LISTEN": "false", "FIRELANE_DEAF_POLL_SECONDS": "0.005"}


def _woken() -> dict[str, str]:
    return {"FIRELANE_WAKE_ADDRESS": f"127.0.0.1:{free_port()}",
            "FIRELANE_FLOWS_WAKE_ADDRESS": f"127.0.0.1:{free_port()}",
            "FIRELANE_LISTEN": "true", "FIRELANE_POLL_SECONDS": "1"}


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


def _env(store_url: str, mode: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "FIRELANE_DATABASE_URL": store_url, "PYTHONPATH": str(ROOT),
            "PREFECT_API_URL": "http://127.0.0.1:9/api", **mode}


def idle_cpu(store_url: str, mode: dict[str, str], window: float, settle: float,
             logs: Path, tag: str) -> dict[str, float]:
    """Percent of a core per idle responder (and the `sleep` baseline) over `window`."""
    env = _env(store_url, mode)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["baseline (sleep)"] = subprocess.Popen(["sleep", str(int(window + settle + 60))])
        for name, role in ROLES:
            log = open(logs / f"{tag}-{name}.log", "w")  # noqa: SIM115
            procs[f"respond {name}"] = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "respond", "--role", role], env=env,
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(settle)
        return _measure(procs, window)
    finally:
        for proc in procs.values():
            with contextlib.suppress(Exception):
                stop_process(proc, grace=10)


async def _pages(intake: str, sandbox: str, ca: str, n: int, tag: str) -> list[float]:
    out = []
    verify = ssl.create_default_context(cafile=ca)
    async with httpx.AsyncClient(verify=verify) as sc, \
            httpx.AsyncClient(base_url=intake) as client:
        arrivals = Arrivals(sc, sandbox)
        await arrivals.poll()
        for i in range(n + 1):
            await asyncio.sleep(random.uniform(0.5, 1.5))
            name = f"{tag} idle alert {i}"
            sent = time.time()
            resp = await client.post("/alerts/alertmanager", content=alert(name, f"{tag}{i}"),
                                     headers={"authorization": f"Bearer {TOKEN}",
                                              "content-type": "application/json"})
            resp.raise_for_status()
            got = await arrivals.wait({"pagerduty.incident": f"] {name}"})
            if "pagerduty.incident" not in got:
                raise RuntimeError(f"{tag}: alert {i} was never paged")
            if i:
                out.append((got["pagerduty.incident"] - sent) * 1000)
    return out


def page_latency(store_url: str, mode: dict[str, str], sandbox: tuple[str, str], n: int,
                 work: Path, tag: str) -> dict[str, float]:
    """Alert → page (ms) at an idle paging responder, the first alert left out (warm-up)."""
    env = {**_env(store_url, mode), "FIRELANE_SANDBOX_URL": sandbox[0],
           "FIRELANE_SANDBOX_CA": sandbox[1], "BENCH_TOKEN": TOKEN,
           "FIRELANE_CATALOG": str(work / "none.yaml")}
    port = free_port()
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(
            [sys.executable, "-m", "flows.cli", "serve", "--port", str(port), "--config",
             str(work / "intake.yaml"), "--sandbox", "--responder", "external"], env,
            "Firelane intake on", work / f"intake-{tag}.log"))
        stack.enter_context(process(
            [sys.executable, "-m", "flows.cli", "respond", "--role", "urgent"], env,
            "Firelane responder", work / f"responder-{tag}.log"))
        time.sleep(3)
        samples = asyncio.run(_pages(f"http://127.0.0.1:{port}", *sandbox, n, tag))
    if any(s < 0 for s in samples):
        raise SystemExit(f"impossible latency in {tag}: {min(samples):.2f} ms; not written")
    return summarize(samples)


def _previous() -> dict[str, Any] | None:
    path = RESULTS / "idle.json"
    if not path.exists():
        return None
    old = json.loads(path.read_text())
    cpu = old.get("cpu") or {k: old[k] for k in ("sqlite", "postgresql") if k in old}
    return {"date": old.get("date"), "cpu": cpu}


def _check_cpu(cpu: dict[str, dict[str, dict[str, float]]]) -> None:
    ceiling = 100 * (os.cpu_count() or 1)
    for backend, modes in cpu.items():
        for mode, procs in modes.items():
            for name, percent in procs.items():
                if not 0 <= percent <= ceiling:
                    raise SystemExit(f"impossible figure {backend}/{mode}/{name}: {percent}%; "
                                     "not written")
                print(f"{backend:<11} {mode:<7} {name:<18} {percent:6.2f} % of a core")


def main() -> int:
    """Measure and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU measuring window")
    parser.add_argument("--settle", type=float, default=8.0, help="start-up time to skip")
    parser.add_argument("--alerts", type=int, default=20, help="alerts per latency mode")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="firelane-idle-"))
    (work / "intake.yaml").write_text(
        "sources:\n  alertmanager: {bearer_token: {env: BENCH_TOKEN}}\n")
    previous = _previous()
    cpu: dict[str, dict[str, dict[str, float]]] = {"sqlite": {}, "postgresql": {}}
    latency: dict[str, dict[str, dict[str, float]]] = {"sqlite": {}, "postgresql": {}}
    modes = {"before": POLLING_ONLY, "after": _woken()}
    with contextlib.ExitStack() as stack:
        line = stack.enter_context(process(
            [sys.executable, "-m", "flows.cli", "sandbox", "--port", str(free_port()),
             "--zoom-daily-limit", SANDBOX_ZOOM_LIMIT],
            {**os.environ, "PYTHONPATH": str(ROOT)}, "export FIRELANE_SANDBOX_URL",
            work / "sandbox.log"))
        url, ca = (part.split("=", 1)[1] for part in line.split()[1:3])
        pg = stack.enter_context(postgres_server())
        for backend, store_url in (("sqlite", f"sqlite:///{work}/idle.db"), ("postgresql", pg)):
            for mode, env in modes.items():
                cpu[backend][mode] = idle_cpu(store_url, env, args.seconds, args.settle, work,
                                              f"{backend}-{mode}")
            woken = "woken by NOTIFY" if backend == "postgresql" else "woken by UDP"
            wake = {**_woken(), "FIRELANE_LISTEN": str(backend == "postgresql").lower()}
            if backend == "postgresql":
                wake["FIRELANE_WAKE_ADDRESS"] = "off"
            for mode, env in ((woken, wake), ("polling only every 5 ms", POLLING_ONLY)):
                latency[backend][mode] = page_latency(store_url, env, (url, ca), args.alerts,
                                                      work, f"{backend}-{mode.split()[0]}")
    _check_cpu(cpu)
    for backend, modes_ in latency.items():
        for mode, fig in modes_.items():
            print(f"{backend:<11} {mode:<24} alert→page p50 {fig['p50']} p95 {fig['p95']} "
                  f"max {fig['max']} ms (n={fig['n']})")
    figures: dict[str, Any] = {
        "window_seconds": args.seconds, "unit": "percent of one core, per process",
        "modes": {"before": "5 ms poll, no wake-up source (the default until LISTEN/NOTIFY)",
                  "after": "defaults: LISTEN on PostgreSQL, UDP wake-ups, 1 s fallback poll"},
        "cpu": cpu, "page_latency_ms": latency,
        "latency_setup": f"{args.alerts} alerts 0.5-1.5 s apart to an idle --role urgent "
                         "responder, alert sent → page at the sandbox; one warm-up alert "
                         "left out",
        "previous_run": previous}
    print(f"wrote {write_results('idle', figures)} (process logs in {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
