"""The storms `bench/intake.py` sends: alerts from many connections, one per request or in
Alertmanager-sized groups, optionally with probes timed to their pages during the storm."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.common import summarize
from bench.intake_probes import TOKEN, alert_group, pages, sequential
from bench.intake_support import Arrivals, count_storm, where_time_goes
from bench.rawhttp import RawClient

__all__ = ["grouped_storms", "storm"]


async def storm(intake: str, arrivals: Arrivals | None, total: int, fingerprints: int, clients: int,
                probes: int, path: str = "/alerts/alertmanager",
                label: str = "", store_url: str | None = None, group: int = 1,
                prefix: str = "storm") -> dict[str, Any]:
    """`total` alerts from `clients` connections (spread over the intakes when `intake` lists
    several URLs, comma-separated; probes go to one), `group` per request (an Alertmanager
    notification's alerts), over `fingerprints` fingerprints named `<prefix><n>`; with
    `probes`, that many new alerts sent one at a time 0.5 s into the storm, their ids unique to
    this run and `label` (and, given `store_url`, where their pages' time went, from the
    store's timestamps)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    per_client = total // clients // group

    intakes = [url.removeprefix("http://").split(":") for url in intake.split(",")]

    async def client_loop(c: int) -> None:
        host, port = intakes[c % len(intakes)]
        async with RawClient(host, int(port)) as client:
            for i in range(per_client):
                first = (c * per_client + i) * group
                t0 = time.perf_counter()
                if path == "/healthz":
                    status, _ = await client.request("GET", path)
                else:
                    named = [(f"storm {prefix}{n % fingerprints}", f"{prefix}{n % fingerprints}")
                             for n in range(first, first + group)]
                    status, _ = await client.request("POST", path, alert_group(named), {
                        "authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

    under: list[float] = []
    prefixes: list[str] = []

    async def probe() -> None:
        await asyncio.sleep(0.5)
        assert arrivals is not None
        sent = await sequential(intake, arrivals, probes, f"understorm-{label}")
        prefixes.append(sent.prefix)
        under.extend(await pages(arrivals, sent, f"page under storm ({label})"))

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(client_loop(c)) for c in range(clients)]
    probe_task = asyncio.create_task(probe()) if probes else None
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    if probe_task is not None:
        await probe_task
    breakdown = where_time_goes(store_url, f"{prefixes[0]}%") \
        if store_url and prefixes else None
    return {"alerts_sent": per_client * clients * group, "alerts_per_request": group,
            "requests": per_client * clients, "seconds": round(elapsed, 2),
            "per_second": round(per_client * clients * group / elapsed, 1),
            "statuses": statuses,
            "latency_ms": summarize(latencies), "page_under_storm_ms": summarize(under)
            if probes else None, "page_under_storm_breakdown_ms": breakdown}


async def grouped_storms(intake: str, arrivals: Arrivals | None, args: argparse.Namespace,
                         store_url: str) -> list[dict[str, Any]]:
    """The storm again in Alertmanager-sized groups (`--groups`), `--grouped-alerts` alerts
    each, over fingerprints new to each storm (so each declares its own incidents, whose
    responses run beside it when responders run)."""
    out = []
    for group in args.groups:
        prefix = f"g{group}x"
        stormed = await storm(intake, arrivals, args.grouped_alerts, args.fingerprints,
                              args.clients, 0, group=group, prefix=prefix)
        out.append({**stormed, **count_storm(store_url, prefix)})
    return out
