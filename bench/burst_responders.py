"""50 incidents at once through responder processes: one `respond --role urgent` and N
`respond --role flows`, against one incident alone through the same processes; optionally
beside a storm of alerts on an intake, so the machine is busy too.

`bench/burst.py` runs the executions in its own process (the call a responder makes). This one
declares them pending, as an intake does, wakes the responders (UDP nudge; `LISTEN` on
PostgreSQL) and times until the store says every execution finished, for each count of flow
processes in `--flows` (default 1 and 2), each on fresh processes. The same checks as
`bench/burst.py` (`Bench.check`: one ticket, page, channel with two messages, meeting and flow
run per incident, every step's outcome) run on every incident, and a problem aborts the run
before anything is written.

Writes `bench/results/burst_responders.json` (`burst_responders_storm.json` with `--storm`).
Usage:
`python bench/burst_responders.py [--incidents 50] [--flows 1,2] [--storm]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.burst import Bench, flow_runs_per_incident, start_stack  # noqa: E402
from bench.common import (  # noqa: E402
    cpu_snapshot,
    cpu_used,
    free_port,
    peak_memory_mib_by_role,
    summarize,
    write_results,
)
from bench.intake_support import process  # noqa: E402

ROLES = {"urgent responder": "--role urgent", "flows responders": "--role flows",
         "intake": "flows.cli serve", "load generator": "bench/burst_responders.py --load",
         "Prefect server": "prefect server", "PostgreSQL": "postgres",
         "sandbox": "flows.cli sandbox", "health stand-in": "health_standin"}
FINISHED = {"succeeded", "failed", "rejected", "blocked", "interrupted"}


async def until_finished(bench: Bench, pairs: list[tuple[str, str]],
                         timeout: float = 600) -> float:
    """Seconds from now until every execution of `pairs` has finished (store's view)."""
    t0 = time.perf_counter()
    waiting = {e for _, e in pairs}
    while waiting:
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"{len(waiting)} executions not finished after {timeout:g} s")
        await asyncio.sleep(0.05)
        waiting = {e for e in waiting
                   if bench.store.get_execution(e).status.value not in FINISHED}
    return time.perf_counter() - t0


async def one_count(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """Alone rounds, then the burst, through the responders now running."""
    from flows.respond.wake import Waker

    waker = Waker(bench.settings.wake_address)
    alone: list[float] = []
    pairs_alone: list[tuple[str, str]] = []
    for _ in range(args.alone + 1):
        t0 = time.perf_counter()
        pairs = bench.declare(1, for_responder=True)
        waker.wake()
        await until_finished(bench, pairs)
        alone.append(time.perf_counter() - t0)
        pairs_alone += pairs
    alone = alone[1:]
    before = cpu_snapshot(ROLES)
    t0 = time.perf_counter()
    burst = bench.declare(args.incidents, for_responder=True)
    waker.wake()
    await until_finished(bench, burst)
    wall = time.perf_counter() - t0
    after = cpu_snapshot(ROLES)
    peaks = peak_memory_mib_by_role({k: ROLES[k] for k in ("urgent responder",
                                                           "flows responders")})
    used = {k: v for k, v in cpu_used(ROLES, before, after).items() if k in ROLES}
    baseline = statistics.median(alone)
    return {"alone_seconds": summarize([a * 1000 for a in alone]),
            "alone_median_seconds": round(baseline, 2), "burst_total_seconds": round(wall, 2),
            "ratio_burst_to_alone": round(wall / baseline, 2),
            "burst_cpu_seconds_by_process": used, "peak_memory_mib_by_process": peaks,
            "pairs": pairs_alone + burst}


async def load(port: int, seconds: float) -> None:
    """A storm on the intake for `seconds`: 20 connections, one alert per request."""
    from bench.intake_probes import TOKEN, alert
    from bench.rawhttp import RawClient

    deadline = time.monotonic() + seconds

    async def client(c: int) -> None:
        async with RawClient("127.0.0.1", port) as http:
            n = 0
            while time.monotonic() < deadline:
                fp = f"busy{(c * 7919 + n) % 100}"
                await http.request("POST", "/alerts/alertmanager", alert(f"storm {fp}", fp),
                                   {"authorization": f"Bearer {TOKEN}",
                                    "content-type": "application/json"})
                n += 1

    await asyncio.gather(*(client(c) for c in range(20)))


@contextlib.contextmanager
def responders(env: dict[str, str], work: Path, flows: int) -> Any:
    """One urgent responder and `flows` flow responders, stopped on exit."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(
            [sys.executable, "-m", "flows.cli", "respond", "--role", "urgent"], env,
            "Firelane responder", work / f"urgent-{flows}.log"))
        for i in range(flows):
            stack.enter_context(process(
                [sys.executable, "-m", "flows.cli", "respond", "--role", "flows"], env,
                "Firelane responder", work / f"flows-{flows}-{i}.log"))
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--alone", type=int, default=3, help="rounds of one incident alone")
    parser.add_argument("--flows", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1, 2], help="counts of `respond --role flows` processes")
    parser.add_argument("--storm", action="store_true",
                        help="run a storm on an intake (--no-respond) the whole time")
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        asyncio.run(load(args.load, 3600))
        return
    work = Path(tempfile.mkdtemp(prefix="firelane-bench-responders-"))
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        env, sandbox_url, ca = start_stack(
            stack, work, (args.alone + 1 + args.incidents) * len(args.flows))
        env["BENCH_TOKEN"] = "bench-token"
        (work / "intake.yaml").write_text(
            "sources:\n  alertmanager: {bearer_token: {env: BENCH_TOKEN}}\n")
        if args.storm:
            port = free_port()
            stack.enter_context(process(
                [sys.executable, "-m", "flows.cli", "serve", "--port", str(port), "--config",
                 str(work / "intake.yaml"), "--no-respond"],
                {**env, "FIRELANE_DATABASE_URL": f"sqlite:///{work}/storm.db"},
                "Firelane intake on", work / "intake.log"))
            stack.enter_context(process(
                [sys.executable, "bench/burst_responders.py", "--load", str(port)], env, "",
                work / "load.log"))
        os.environ.clear()
        os.environ.update(env)
        bench = Bench((sandbox_url, ca))
        for flows in args.flows:
            with responders(env, work, flows):
                time.sleep(2)
                figures = asyncio.run(one_count(bench, args))
            runs.append({"flows_processes": flows, **figures})
        state = asyncio.run(bench.sandbox_state())
        problems = bench.check([p for r in runs for p in r.pop("pairs")], state,
                               asyncio.run(flow_runs_per_incident()))
    for r in runs:
        print(f"{r['flows_processes']} flows process(es): one alone "
              f"{r['alone_median_seconds']} s (median of {args.alone}); {args.incidents} at "
              f"once {r['burst_total_seconds']} s, {r['ratio_burst_to_alone']}x alone "
              f"(target ≤ 3x); CPU s by process: " + ", ".join(
                  f"{k} {v}" for k, v in r["burst_cpu_seconds_by_process"].items())
              + "; peak memory MiB (largest process of each role): " + ", ".join(
                  f"{k} {v}" for k, v in r["peak_memory_mib_by_process"].items()))
    if problems:
        for problem in problems:
            print(f"  {problem}")
        raise SystemExit(f"{len(problems)} problems: nothing written")
    print(f"checked {sum(1 + args.alone + args.incidents for _ in runs)} incidents: nothing "
          "lost or duplicated")
    name = "burst_responders_storm" if args.storm else "burst_responders"
    print(f"wrote {write_results(name, {'params': vars(args), 'runs': runs})}")


if __name__ == "__main__":
    main()
