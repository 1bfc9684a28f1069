"""The intake benchmark's plumbing: starting its processes, following the sandbox's record of
side effects, and reading the store's own timestamps afterwards."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import free_port, summarize
from tests.pgserver import stop_process

__all__ = ["Arrivals", "count_storm", "memory", "process", "start_firelane", "where_time_goes"]

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[str]:
    """Start a CLI process and yield the first stdout line containing `ready`."""
    out = open(log, "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=out, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while ready not in line:
            line = proc.stdout.readline()
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(cmd[1:4])} did not start; see {log}")
        threading.Thread(target=lambda: [out.write(x) for x in proc.stdout],  # type: ignore[union-attr]
                         daemon=True).start()
        yield line
    finally:
        stop_process(proc)  # type: ignore[arg-type]
        out.close()


class Arrivals:
    """Follows the sandbox's record of when each side effect happened."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client, self.url, self.next = client, url, 0
        self.seen: list[dict[str, Any]] = []

    async def poll(self) -> None:
        got = (await self.client.get(f"{self.url}/_admin/arrivals",
                                     params={"since": self.next})).json()
        self.seen += got["arrivals"]
        self.next = got["next"]

    async def wait(self, match: dict[str, str], timeout: float = 30) -> dict[str, float]:
        """Arrival times of each kind whose key ends with the given suffix."""
        deadline = time.monotonic() + timeout
        while True:
            found = {kind: a["at"] for kind, suffix in match.items() for a in self.seen
                     if a["kind"] == kind and a["key"].endswith(suffix)}
            if len(found) == len(match) or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.003)
            await self.poll()

    def probes(self, kind: str, prefix: str) -> list[tuple[str, float]]:
        """(probe id, when) of every arrival of `kind` seen so far whose key ends with a probe
        id `<prefix><number>` (the whole key, or after a space or a `]`)."""
        pattern = re.compile(rf"(?:^|[\s\]])({re.escape(prefix)}\d+)$")
        return [(m.group(1), float(a["at"])) for a in self.seen
                if a["kind"] == kind and (m := pattern.search(a["key"]))]


def count_storm(store_url: str, prefix: str = "storm") -> dict[str, int]:
    """Alerts stored and incidents created by the storm whose fingerprints start with
    `prefix` (each storm of a run has its own)."""
    from sqlalchemy import func, select

    from firelane.store import open_store
    from firelane.store.tables import alerts, incidents

    store = open_store(store_url, migrate=False)
    with store.tx(write=False) as conn:
        stored = conn.execute(select(func.count()).select_from(alerts).where(
            alerts.c.fingerprint.like(f"alertmanager:{prefix}%"))).scalar() or 0
        made = conn.execute(select(func.count()).select_from(incidents).where(
            incidents.c.title.like(f"storm {prefix}%"))).scalar() or 0
    return {"alerts_stored": int(stored), "incidents_created": int(made)}


def where_time_goes(store_url: str, title_like: str) -> dict[str, Any]:
    """Per alert, from the store's own timestamps: alert received → response recorded (parse,
    group commit), recorded → page step claimed (responder poll and claim, run set-up), and
    the page step itself (ledger writes and the PagerDuty call)."""
    from sqlalchemy import select

    from firelane.store import open_store
    from firelane.store.base import aware
    from firelane.store.tables import alerts, executions, incidents, step_ledger

    store = open_store(store_url, migrate=False)
    query = (select(alerts.c.received_at, executions.c.created_at, step_ledger.c.started_at,
                    step_ledger.c.finished_at)
             .join(incidents, incidents.c.id == alerts.c.incident_id)
             .join(executions, executions.c.incident_id == incidents.c.id)
             .join(step_ledger, (step_ledger.c.execution_id == executions.c.id)
                   & (step_ledger.c.step_id == "page"))
             .where(incidents.c.title.like(title_like)))
    parts: dict[str, list[float]] = {"received_to_recorded": [], "recorded_to_claimed": [],
                                     "page_step": []}
    deadline = time.monotonic() + 30
    while True:
        with store.tx(write=False) as conn:
            rows = [tuple(aware(x) for x in row) for row in conn.execute(query)]
        unfinished = sum(1 for row in rows if not all(row))
        if not unfinished:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{unfinished} of {len(rows)} probes ({title_like}) have no finished "
                             "page step 30 s after their page arrived; nothing written")
        time.sleep(0.5)
    for r, c, st, f in rows:
        assert r and c and st and f
        parts["received_to_recorded"].append((c - r).total_seconds() * 1000)
        parts["recorded_to_claimed"].append((st - c).total_seconds() * 1000)
        parts["page_step"].append((f - st).total_seconds() * 1000)
    store.close()
    return {k: summarize(v) for k, v in parts.items() if v}


def start_firelane(stack: contextlib.ExitStack, args: argparse.Namespace, env: dict[str, str],
                   work: Path, tag: str) -> int:
    """The intake and its responders as `args` says; returns the intake's port."""
    port = free_port()
    stack.enter_context(process(
        [sys.executable, "-m", "flows.cli", "serve", "--port", str(port), "--config",
         str(work / "intake.yaml"), "--sandbox", "--responder", args.responder], env,
        "Firelane intake on", work / f"intake{tag}.log"))
    if args.responder == "external":
        role = [] if args.flows == "in-process" else ["--role", "urgent"]
        if args.flows == "hand-off":
            role += ["--hand-off", "run-runbook/firelane"]
            stack.enter_context(process(
                [sys.executable, "-m", "flows.cli", "serve-flows"], env,
                "Firelane flow runner", work / f"flows{tag}.log"))
        elif args.flows == "split":
            stack.enter_context(process(
                [sys.executable, "-m", "flows.cli", "respond", "--role", "flows"], env,
                "Firelane responder", work / f"flows{tag}.log"))
        stack.enter_context(process(
            [sys.executable, "-m", "flows.cli", "respond", *role], env,
            "Firelane responder", work / f"responder{tag}.log"))
    return port


async def memory(intake: str) -> dict[str, float]:
    """The intake's resident and peak resident memory in MiB, from its `/metrics`."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{intake}/metrics")).text
    found = {sample.name: sample.value for family in text_string_to_metric_families(text)
             for sample in family.samples if sample.name.startswith("firelane_process_")}
    return {"rss_mib": round(found["firelane_process_resident_memory_bytes"] / 2**20, 1),
            "peak_rss_mib": round(
                found["firelane_process_peak_resident_memory_bytes"] / 2**20, 1)}
