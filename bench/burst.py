"""50 incidents at once, each running the full `web-5xx-rollback` runbook, against one alone.

Starts PostgreSQL (the Prefect server's database and the incident store), a Prefect server, the
sandbox (`firelane sandbox`) and a health stand-in (503 to each service's first six probes,
then 200)
as separate processes. Every incident gets its own catalog service, so each sees the same story:
the diagnose probe finds the 5xx, the rollback runs in dry-run (no approval, no guardrail, no
release switch), the verify probe sees health come back, the page is resolved, the ticket moved.

Each incident is declared in the store and run through `run_with_fast_path`, the call a
`firelane respond` process makes for each new incident (urgent steps at once, the `run-runbook`
flow beside them, all in this process). Measured, in one run:

- alone: one incident at a time (`--alone` rounds; the median is the baseline);
- burst: `--incidents` declared at the same moment; total wall time until the last finishes.

Target: burst total ≤ 3x alone. It also reports the process's CPU seconds per incident, since
the runbook's own waits (probe intervals) are most of its wall time. Checks that nothing was
lost or duplicated: every execution succeeded with the expected step outcomes, and the sandbox
holds exactly one ticket, one page (resolved), one channel with two messages and one meeting
per incident, and Prefect exactly one `run-runbook` flow run per incident.

Writes `bench/results/burst.json`. Usage: `python bench/burst.py [--incidents 50]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import (  # noqa: E402
    SANDBOX_ZOOM_LIMIT,
    cpu_snapshot,
    cpu_used,
    free_port,
    prefect_server,
    summarize,
    write_results,
)
from bench.intake_support import process  # noqa: E402
from tests.pgserver import create_database, postgres_server  # noqa: E402

EXPECTED = {"ticket": "succeeded", "page": "succeeded", "channel": "succeeded",
            "bridge": "succeeded", "first_update": "succeeded", "diagnose": "failed",
            "announce": "succeeded", "rollback": "succeeded", "verify": "succeeded",
            "resolve_page": "succeeded", "close_ticket": "succeeded",
            "resolve_incident": "succeeded", "resolved_update": "succeeded",
            "outcome": "succeeded"}
BAD_PROBES = 6
ROLES = {"this process (responder)": "bench/burst.py", "Prefect server": "prefect server",
         "PostgreSQL": "postgres", "sandbox": "flows.cli sandbox",
         "health stand-in": "health_standin"}


def catalog(count: int, health: str, release_dir: Path) -> str:
    """`count` services bench-0.., each with its own health URL, sharing one release layout."""
    lines = ["services:"]
    for i in range(count):
        lines += [f"  bench-{i}:", "    jira_project: OPS", f"    health_url: {health}/bench-{i}",
                  f"    release_dir: {release_dir}"]
    return "\n".join(lines) + "\n"


def release_layout(root: Path) -> Path:
    """A Capistrano-style directory with a previous and a current release."""
    for name in ("r1-good", "r2-bad"):
        (root / "releases" / name).mkdir(parents=True)
    (root / "current").symlink_to(root / "releases" / "r2-bad")
    return root


class Bench:
    """Declares incidents, runs them as a responder would, and checks what they left."""

    def __init__(self, sandbox: tuple[str, str]) -> None:
        import integrations  # noqa: F401  (registers the actions the runbook uses)
        from firelane.loader import load_runbook
        from firelane.settings import Settings
        from firelane.store import open_store

        self.settings = Settings.from_env()
        self.store = open_store(self.settings.database_url)
        self.loaded = load_runbook(ROOT / "runbooks" / "web-5xx-rollback.yaml")
        self.sandbox = sandbox
        self.next_service = 0

    def declare(self, n: int, for_responder: bool = False) -> list[tuple[str, str]]:
        """`n` incidents, each on a fresh service, with a dry-run sandbox execution (pending
        for a responder process to claim, with `for_responder`)."""
        from firelane.inputs import new_execution
        from firelane.models import IncidentDraft, Severity

        out = []
        for _ in range(n):
            service = f"bench-{self.next_service}"
            self.next_service += 1
            incident = self.store.declare_incident(IncidentDraft(
                title=f"{service} answers 5xx", severity=Severity.SEV1, service=service))
            execution = self.store.create_execution(new_execution(
                self.loaded, incident, {}, dry_run=True, sandbox=True,
                for_responder=for_responder))
            out.append((incident.id, execution.id))
        return out

    async def run(self, pairs: list[tuple[str, str]]) -> tuple[float, list[float], float]:
        """Run every execution at once: (wall seconds, per-incident seconds, CPU seconds)."""
        from flows.respond.fast_path import run_with_fast_path

        async def one(execution_id: str) -> float:
            t = time.perf_counter()
            await run_with_fast_path(self.store, execution_id, self.settings)
            return time.perf_counter() - t

        cpu, t0 = time.process_time(), time.perf_counter()
        each = await asyncio.gather(*(one(e) for _, e in pairs))
        return time.perf_counter() - t0, list(each), time.process_time() - cpu

    def check(self, pairs: list[tuple[str, str]], state: dict[str, Any],
              flow_runs: Counter[str]) -> list[str]:
        """Every way the runs could have lost or duplicated something, as messages."""
        problems = []
        for incident_id, execution_id in pairs:
            incident = self.store.get_incident(incident_id)
            status = self.store.get_execution(execution_id).status.value
            records = {k: v.status.value for k, v in
                       self.store.step_records(execution_id).items()}
            name = f"INC-{incident.number}"
            if status != "succeeded" or records != EXPECTED:
                problems.append(f"{name}: execution {status}, steps {records}")
            title = incident.title
            tickets = [i for i in state["jira_issues"].values()
                       if i["fields"]["summary"].endswith(title)]
            pages = [p for p in state["pd_incidents"].values() if p["title"].endswith(title)]
            channels = [c for c in state["slack_channels"].values()
                        if c["name"] == f"inc-{incident.number}-{incident.service}"]
            meetings = [m for m in state["zoom_meetings"] if title in m["topic"]]
            messages = [m for m in state["slack_messages"]
                        if channels and m["channel"] == channels[0]["id"]]
            counts = (len(tickets), len(pages), len(channels), len(meetings), len(messages))
            if counts != (1, 1, 1, 1, 2):
                problems.append(f"{name}: tickets, pages, channels, meetings, messages = "
                                f"{counts}, expected (1, 1, 1, 1, 2)")
            elif pages[0]["status"] != "resolved":
                problems.append(f"{name}: page {pages[0]['status']}, expected resolved")
            if flow_runs[incident_id] != 1:
                problems.append(f"{name}: {flow_runs[incident_id]} run-runbook flow runs")
        return problems

    async def sandbox_state(self) -> dict[str, Any]:
        async with httpx.AsyncClient(
                verify=ssl.create_default_context(cafile=self.sandbox[1])) as client:
            return dict((await client.get(f"{self.sandbox[0]}/_admin/state")).json())


async def flow_runs_per_incident(runbook: str = "web-5xx-rollback") -> Counter[str]:
    """`run-runbook` flow runs of `runbook` (named `INC-n · <runbook>`; the stakeholder
    updates' deliveries are flow runs of their own) by their `incident:<id>` tag, from the
    Prefect API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    counts: Counter[str] = Counter()
    async with get_client() as client:
        offset = 0
        while True:
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["run-runbook"])),
                limit=200, offset=offset)
            for run in runs:
                if f" · {runbook}" not in run.name:
                    continue
                for tag in run.tags:
                    if tag.startswith("incident:"):
                        counts[tag.removeprefix("incident:")] += 1
            if len(runs) < 200:
                return counts
            offset += 200


async def measure(args: argparse.Namespace, sandbox: tuple[str, str]) -> dict[str, Any]:
    bench = Bench(sandbox)
    await bench.run(bench.declare(1))
    alone: list[float] = []
    alone_cpu: list[float] = []
    alone_pairs: list[tuple[str, str]] = []
    for _ in range(args.alone):
        pairs = bench.declare(1)
        wall, _, cpu = await bench.run(pairs)
        alone.append(wall)
        alone_cpu.append(cpu)
        alone_pairs += pairs
    burst_pairs = bench.declare(args.incidents)
    before = cpu_snapshot(ROLES)
    wall, each, cpu = await bench.run(burst_pairs)
    used = cpu_used(ROLES, before, cpu_snapshot(ROLES))
    state = await bench.sandbox_state()
    problems = bench.check(alone_pairs + burst_pairs, state, await flow_runs_per_incident())
    baseline = statistics.median(alone)
    return {
        "alone_seconds": summarize([a * 1000 for a in alone]),
        "burst_total_seconds": round(wall, 2),
        "burst_per_incident_ms": summarize([e * 1000 for e in each]),
        "alone_median_seconds": round(baseline, 2),
        "ratio_burst_to_alone": round(wall / baseline, 2),
        "cpu_seconds_per_incident": {"alone": round(statistics.median(alone_cpu), 3),
                                     "burst": round(cpu / args.incidents, 3)},
        "burst_cpu_seconds_by_process": used,
        "incidents_checked": len(alone_pairs) + len(burst_pairs),
        "problems": problems,
    }


def start_stack(stack: contextlib.ExitStack, work: Path,
                services: int) -> tuple[dict[str, str], str, str]:
    """PostgreSQL (the Prefect server's database and the incident store), a Prefect server,
    the sandbox and the health stand-in, with a catalog of `services` services; returns the
    environment the Firelane side runs in, the sandbox's URL and its CA file."""
    pg = stack.enter_context(postgres_server())
    api = stack.enter_context(prefect_server(
        create_database(pg, "bench_prefect").replace("+psycopg", "+asyncpg")))
    health_port = free_port()
    (work / "services.yaml").write_text(catalog(
        services, f"http://127.0.0.1:{health_port}", release_layout(work / "web")))
    env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(ROOT),
           "FIRELANE_DATABASE_URL": pg, "PREFECT_LOGGING_LEVEL": "WARNING",
           "FIRELANE_CATALOG": str(work / "services.yaml"),
           "FIRELANE_RUNBOOKS_DIR": str(ROOT / "runbooks"),
           "FIRELANE_REPORTS_DIR": str(work / "reports")}
    env.pop("FIRELANE_PLUGINS", None)
    line = stack.enter_context(process(
        [sys.executable, "-m", "flows.cli", "sandbox", "--port", str(free_port()),
         "--zoom-daily-limit", SANDBOX_ZOOM_LIMIT], env,
        "export FIRELANE_SANDBOX_URL", work / "sandbox.log"))
    sandbox_url, ca = (part.split("=", 1)[1] for part in line.split()[1:3])
    env.update(FIRELANE_SANDBOX_URL=sandbox_url, FIRELANE_SANDBOX_CA=ca)
    stack.enter_context(process(
        [sys.executable, "bench/health_standin.py", str(health_port), str(BAD_PROBES)],
        env, "health stand-in", work / "health.log"))
    return env, sandbox_url, ca


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--alone", type=int, default=3, help="rounds of one incident alone")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="firelane-bench-concurrent-"))
    with contextlib.ExitStack() as stack:
        env, sandbox_url, ca = start_stack(stack, work, 1 + args.alone + args.incidents)
        os.environ.clear()
        os.environ.update(env)
        figures = asyncio.run(measure(args, (sandbox_url, ca)))
    print(f"one incident alone: {figures['alone_median_seconds']} s (median of {args.alone})")
    print(f"{args.incidents} at once: {figures['burst_total_seconds']} s in all, "
          f"{figures['ratio_burst_to_alone']}x alone (target ≤ 3x); per incident p50 "
          f"{figures['burst_per_incident_ms']['p50']} p99 "
          f"{figures['burst_per_incident_ms']['p99']} ms")
    cpu = figures["cpu_seconds_per_incident"]
    print(f"CPU per incident: alone {cpu['alone']} s, in the burst {cpu['burst']} s")
    print(f"CPU seconds during the burst ({figures['burst_total_seconds']} s wall, "
          f"{os.cpu_count()} cores): " + ", ".join(
              f"{k} {v}" for k, v in figures["burst_cpu_seconds_by_process"].items()))
    print(f"checked {figures['incidents_checked']} incidents: "
          + ("nothing lost or duplicated" if not figures["problems"]
             else f"{len(figures['problems'])} problems"))
    for problem in figures["problems"]:
        print(f"  {problem}")
    print(f"wrote {write_results('burst', {'params': vars(args), **figures})}")
    if figures["problems"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
