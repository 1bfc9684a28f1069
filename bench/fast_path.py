"""Alert → first outbound request: which path should the intake use for urgent steps?

Starts a Prefect server and a loopback HTTP stand-in (the "pager"), then measures, for the same
one-request page, the time from "alert accepted" to the request arriving at the stand-in:

- floor:       a bare httpx POST (no Prefect, no store);
- task:        a standalone async Prefect task that POSTs (no flow);
- flow:        the incident and execution written to the store, then the `run-runbook` flow
               called in this warm process, its first step the page;
- fast_path:   the same store writes, then the page step run at once through `execute_step()`
               while the `run-runbook` flow starts beside it and reuses the ledger's record.

For the two runbook paths it also checks that every run paged exactly once. Writes
`bench/results/fast_path.json`. Usage: `python bench/fast_path.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from pydantic import BaseModel

from bench.common import StandIn, prefect_server, summarize, write_results
from firelane.registry import ActionContext, action
from tests.pgserver import postgres_server

RUNBOOK = """version: 1
name: bench-page
steps:
  - {id: page, uses: bench.post, with: {url: "{{ inputs.url }}", marker: "{{ inputs.marker }}"}}
  - {id: ticket, uses: core.note, with: {message: "ticket for {{ incident.title }}"}}
  - {id: announce, uses: core.note, needs: [page, ticket], with: {message: paged}}
inputs:
  url: {type: string, required: true}
  marker: {type: string, required: true}
"""


class PostInputs(BaseModel):
    """`bench.post` inputs."""

    url: str
    marker: str


class PostOutputs(BaseModel):
    """`bench.post` outputs."""

    status: int


_CLIENT: list[httpx.AsyncClient] = []


def client() -> httpx.AsyncClient:
    """One pooled client for every path, as a warm intake would hold."""
    if not _CLIENT:
        _CLIENT.append(httpx.AsyncClient())
    return _CLIENT[0]


@action("bench.post")
async def post(inputs: PostInputs, ctx: ActionContext) -> PostOutputs:
    """POST a page to the stand-in with the idempotency key as dedup_key (like Events v2)."""
    resp = await client().post(inputs.url, json={"marker": inputs.marker,
                                                 "dedup_key": ctx.idempotency_key})
    return PostOutputs(status=resp.status_code)


async def measure(runs: int, stand_in: StandIn) -> dict[str, Any]:
    from prefect import flow, task

    from firelane.inputs import new_execution
    from firelane.loader import parse_runbook
    from firelane.models import IncidentDraft, Severity
    from firelane.settings import Settings
    from firelane.store import open_store
    from flows.respond.fast_path import run_with_fast_path
    from flows.runs.run_runbook import run_runbook

    settings = Settings.from_env()
    store = open_store(settings.database_url)
    loaded = parse_runbook(RUNBOOK, "bench-page.yaml")

    @task(name="page-task")
    async def page_task(url: str, marker: str) -> int:
        return (await client().post(url, json={"marker": marker})).status_code

    @flow(name="page-flow")
    async def page_flow(url: str, marker: str) -> int:
        return await page_task(url, marker)

    def declare(marker: str) -> str:
        incident = store.declare_incident(IncidentDraft(title=f"bench {marker}",
                                                        severity=Severity.SEV1, service="web"))
        execution = new_execution(loaded, incident, {"url": stand_in.url, "marker": marker})
        return store.create_execution(execution).id

    async def floor(marker: str) -> None:
        await client().post(stand_in.url, json={"marker": marker})

    async def standalone_task(marker: str) -> None:
        await page_task(stand_in.url, marker)

    async def plain_flow(marker: str) -> None:
        await page_flow(stand_in.url, marker)

    async def runbook_flow(marker: str) -> None:
        await run_runbook(declare(marker))

    async def fast_path(marker: str) -> None:
        await run_with_fast_path(store, declare(marker), settings)

    variants = {"floor": floor, "task": standalone_task, "plain_flow": plain_flow,
                "runbook_flow": runbook_flow, "fast_path": fast_path}
    for name, fn in variants.items():  # warm up each path once
        await fn(f"warm-{name}")
    samples: dict[str, list[float]] = {name: [] for name in variants}
    totals: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(runs):
        for name, fn in variants.items():  # interleaved so drift hits every path alike
            marker = f"{name}-{i}"
            t0 = time.perf_counter()
            await fn(marker)
            t1 = time.perf_counter()
            arrivals = stand_in.arrivals.get(marker, [])
            if len(arrivals) != 1:
                raise SystemExit(f"{name} run {i}: {len(arrivals)} pages, expected exactly 1")
            samples[name].append((arrivals[0] - t0) * 1000)
            totals[name].append((t1 - t0) * 1000)
    store.close()
    return {"first_request_ms": {n: summarize(s) for n, s in samples.items()},
            "call_total_ms": {n: summarize(s) for n, s in totals.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--prefect-db", choices=["postgresql", "sqlite"], default="postgresql",
                        help="the Prefect server's database (SQLite stalls ~2 s on locks)")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="firelane-bench-")
    os.environ["FIRELANE_DATABASE_URL"] = f"sqlite:///{workdir}/firelane.db"
    os.environ.setdefault("FIRELANE_CATALOG", f"{workdir}/services.yaml")
    with contextlib.ExitStack() as stack:
        db_url = None
        if args.prefect_db == "postgresql":
            pg = stack.enter_context(postgres_server())
            db_url = pg.replace("postgresql+psycopg://", "postgresql+asyncpg://")
        api_url = stack.enter_context(prefect_server(db_url))
        os.environ["PREFECT_API_URL"] = api_url
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        stand_in = StandIn()
        try:
            figures = asyncio.run(measure(args.runs, stand_in))
        finally:
            stand_in.close()
    first = figures["first_request_ms"]
    print(f"alert → first request at the stand-in, ms ({args.runs} runs each, interleaved)")
    print(f"{'path':<14}{'p50':>9}{'p95':>9}{'p99':>9}{'min':>9}{'max':>9}   total p50")
    for name, s in first.items():
        total = figures["call_total_ms"][name]["p50"]
        print(f"{name:<14}{s['p50']:>9}{s['p95']:>9}{s['p99']:>9}{s['min']:>9}{s['max']:>9}"
              f"   {total:>9}")
    ratio = first["runbook_flow"]["p50"] / max(first["fast_path"]["p50"], 1e-9)
    figures["fast_path_speedup_over_runbook_flow_p50"] = round(ratio, 1)
    figures["runs"] = args.runs
    figures["prefect_database"] = args.prefect_db
    figures["incident_store"] = "sqlite"
    print(f"fast path reaches the pager {ratio:.1f}x sooner than the flow (p50); "
          "every run paged exactly once")
    suffix = "" if args.prefect_db == "postgresql" else "_prefect_sqlite"
    print(f"wrote {write_results('fast_path' + suffix, figures)}")


if __name__ == "__main__":
    main()
