"""Engine overhead: what Firelane adds per step on top of a bare Prefect task.

Starts a Prefect server on PostgreSQL, then runs, interleaved, `--rounds` times each:

- bare:      an async Prefect flow calling 50 trivial async tasks one after another (Prefect's
             own per-task cost: task run creation, state changes, events);
- firelane:  the `run-runbook` flow over a 50-step runbook of `core.note` steps chained by
             `needs` (each step: ledger claim, templating, the action, ledger record and its
             timeline event, as a Prefect task run).

Per-step cost = wall time / 50; the overhead is firelane per-step minus bare per-step, both from
the same run (target: ≤ 10 ms per step). Writes `bench/results/engine.json`. Usage:
`python bench/engine.py [--rounds N] [--steps N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import prefect_server, summarize, write_results
from tests.pgserver import postgres_server


def runbook(steps: int) -> str:
    """A chain of `steps` core.note steps, each needing the one before."""
    lines = ["version: 1", "name: bench-engine", "steps:"]
    for i in range(steps):
        needs = f", needs: [s{i - 1}]" if i else ""
        lines.append(f'  - {{id: s{i}, uses: core.note, with: {{message: "step {i} of '
                     f'{{{{ incident.title }}}}"}}{needs}}}')
    return "\n".join(lines) + "\n"


async def measure(rounds: int, steps: int) -> dict[str, Any]:
    from prefect import flow, task

    from firelane.inputs import new_execution
    from firelane.loader import parse_runbook
    from firelane.models import IncidentDraft, Severity
    from firelane.settings import Settings
    from firelane.store import open_store
    from flows.runs.run_runbook import run_runbook_result

    store = open_store(Settings.from_env().database_url)
    loaded = parse_runbook(runbook(steps), "bench-engine.yaml")

    @task(name="noop")
    async def noop(i: int) -> int:
        return i

    @flow(name="bench-bare")
    async def bare() -> None:
        for i in range(steps):
            await noop(i)

    async def firelane() -> None:
        incident = store.declare_incident(IncidentDraft(title="engine bench",
                                                        severity=Severity.SEV3, service="web"))
        execution = store.create_execution(new_execution(loaded, incident, {}))
        result = await run_runbook_result(execution.id)
        if result["status"] != "succeeded" or len(result["steps"]) != steps:
            raise SystemExit(f"the runbook did not run all {steps} steps: {result['status']}")

    variants: dict[str, Callable[[], Awaitable[Any]]] = {"bare": bare, "firelane": firelane}
    for fn in variants.values():
        await fn()
    per_step: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            await fn()
            per_step[name].append((time.perf_counter() - t0) * 1000 / steps)
    store.close()
    overhead = [f - b for f, b in zip(per_step["firelane"], per_step["bare"], strict=True)]
    return {"steps": steps, "rounds": rounds,
            "per_step_ms": {n: summarize(s) for n, s in per_step.items()},
            "overhead_per_step_ms": summarize(overhead), "target_overhead_ms": 10.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="firelane-bench-engine-")
    os.environ["FIRELANE_DATABASE_URL"] = f"sqlite:///{work}/firelane.db"
    os.environ["FIRELANE_CATALOG"] = f"{work}/services.yaml"
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(postgres_server())
        os.environ["PREFECT_API_URL"] = stack.enter_context(prefect_server(
            pg.replace("postgresql+psycopg://", "postgresql+asyncpg://")))
        figures = asyncio.run(measure(args.rounds, args.steps))
    bare, fl = figures["per_step_ms"]["bare"], figures["per_step_ms"]["firelane"]
    over = figures["overhead_per_step_ms"]
    print(f"per step, ms ({args.steps} steps, {args.rounds} rounds, interleaved)")
    print(f"  bare Prefect task      p50 {bare['p50']:>7}  max {bare['max']:>7}")
    print(f"  firelane core.note     p50 {fl['p50']:>7}  max {fl['max']:>7}")
    verdict = "met" if over["p50"] <= 10 else "MISSED"
    print(f"  overhead over the bare task: p50 {over['p50']} ms (target ≤ 10 ms: {verdict})")
    print(f"wrote {write_results('engine', figures)}")


if __name__ == "__main__":
    main()
