"""Page takeover time: from SIGKILL of the responder holding a page to the page at PagerDuty.

Real processes on a real PostgreSQL (a throwaway server from Debian's binaries): the sandbox
(in this process), an intake (`--responder external`) and two `respond --role urgent`. Each
round posts an alert with a fingerprint of its own, holds its page request at the sandbox (a
latency fault on `/pagerduty/v2/enqueue`: the request of a dead client is never applied),
SIGKILLs the responder holding the page (the ledger's owner `host:pid:uuid`), and times the
kill → the page at the sandbox, matched by its dedup key (the ledger's idempotency key of that
execution's `page` step). The killed responder is restarted before the next round.

The baseline, in the same run: the same kill with the page lease equal to the general step
lease (`FIRELANE_PAGE_LEASE_SECONDS` = `FIRELANE_LEASE_SECONDS`), which is what a page waited
before paging steps had a short lease of their own. Both configurations run with the default
step lease (30 s). Prints a table and writes `bench/results/takeover.json`.

    python bench/takeover.py [--rounds 5] [--page-lease 5] [--baseline-rounds 2]
                             [--step-lease 30] [--hang 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_results
from firelane.store import Store, open_store
from integrations.sandbox import Sandbox
from tests.pgserver import restartable_postgres
from tests.process_stack import Stack

URGENT = {"urgent-1": "urgent", "urgent-2": "urgent"}
CLOCK_SLACK = 0.001  # the sandbox stamps a page to the millisecond
T = TypeVar("T")


def _wait_for(what: str, check: Callable[[], T | None], seconds: float) -> T:
    deadline = time.monotonic() + seconds
    while (found := check()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {seconds:g} s")
        time.sleep(0.01)
    return found


def _pages(sandbox: Sandbox, key: str) -> list[datetime]:
    """When each PagerDuty incident with dedup key `key` was opened at the sandbox."""
    with sandbox.state.lock:
        found = [i["created_at"] for i in sandbox.state.pd_incidents.values()
                 if i["incident_key"] == key]
    return [datetime.fromisoformat(at) for at in found]


def _round(stack: Stack, store: Store, sandbox: Sandbox, prefix: str, n: int,
           hang: float, page_lease: float, seen: set[str]) -> dict[str, Any]:
    slow = sandbox.faults.add(path="/pagerduty/v2/enqueue", kind="latency", latency=hang)
    if stack.post(n, prefix).status_code != 202:
        raise RuntimeError(f"round {n}: the intake refused the alert")
    _wait_for("the page request", lambda: True if slow.hits >= 1 else None, 30)
    held_from = time.monotonic()
    [incident] = _wait_for("the round's incident", lambda: [
        i for i in store.list_incidents() if i.id not in seen] or None, 10)
    seen.add(incident.id)
    [execution] = store.list_executions(incident.id)
    page = store.step_records(execution.id)["page"]
    if page.owner is None:
        raise RuntimeError(f"round {n}: the page step has no owner while its request hangs")
    pid = int(page.owner.split(":")[1])
    [dead] = [name for name, proc in stack.procs.items() if proc.pid == pid]
    killed_at = datetime.now(UTC)
    stack.kill(dead)
    expires = store.step_records(execution.id)["page"].lease_expires_at
    if expires is None:
        raise RuntimeError(f"round {n}: the page step lost its lease before the kill")
    lease_left = (expires - killed_at).total_seconds()
    key = page.idempotency_key
    [paged_at] = _wait_for("the page", lambda: _pages(sandbox, key) or None, page_lease + 60)
    took = (paged_at - killed_at).total_seconds()
    log = stack.work / f"{dead}.log"
    log.rename(log.with_name(f"{dead}.killed-in-round-{n}.log"))
    stack.start(dead, ["respond", "--role", "urgent"], "Firelane responder")
    time.sleep(max(0.0, held_from + hang + 1.0 - time.monotonic()))  # the held request ends
    after = store.step_records(execution.id)["page"]
    owner = int(after.owner.split(":")[1]) if after.owner else None
    return {"round": n, "killed": dead, "kill_to_page_seconds": round(took, 3),
            "lease_left_at_kill_seconds": round(lease_left, 3),
            "after_lease_ran_out_seconds": round(took - lease_left, 3),
            "pages_at_sandbox": len(_pages(sandbox, key)), "dedup_key": key,
            "page_status": after.status.value, "page_claims": after.claims,
            "sent_by": next((nm for nm, p in stack.procs.items() if p.pid == owner), None)}


def _configuration(name: str, rounds: int, page_lease: float, step_lease: float,
                   hang: float, run_id: str, logs: Path) -> dict[str, Any]:
    work = logs / name
    work.mkdir()
    with Sandbox() as sandbox, restartable_postgres() as pg:
        open_store(pg.url).close()
        stack = Stack(pg, sandbox, work, dict(URGENT), {
            "FIRELANE_SANDBOX_URL": sandbox.url, "FIRELANE_SANDBOX_CA": sandbox.ca_file,
            "PREFECT_API_URL": "http://127.0.0.1:9/api",
            "FIRELANE_LEASE_SECONDS": f"{step_lease:g}",
            "FIRELANE_PAGE_LEASE_SECONDS": f"{page_lease:g}"})
        store = open_store(pg.url, migrate=False)
        seen: set[str] = set()
        try:
            stack.start_all()
            per_round = [_round(stack, store, sandbox, f"bench-{run_id}-{name}", n, hang,
                                page_lease, seen) for n in range(1, rounds + 1)]
        finally:
            store.close()
            stack.stop_all()
    took = [r["kill_to_page_seconds"] for r in per_round]
    after = [r["after_lease_ran_out_seconds"] for r in per_round]
    return {"page_lease_seconds": page_lease, "step_lease_seconds": step_lease,
            "rounds": rounds,
            "kill_to_page_seconds": {"min": min(took), "p50": round(statistics.median(took), 3),
                                     "max": max(took)},
            "after_lease_ran_out_seconds": {"min": min(after),
                                            "p50": round(statistics.median(after), 3),
                                            "max": max(after)},
            "pages_per_round": [r["pages_at_sandbox"] for r in per_round],
            "per_round": per_round}


def _impossible(name: str, figures: dict[str, Any]) -> list[str]:
    problems = []
    for r in figures["per_round"]:
        where = f"{name} round {r['round']}"
        if r["pages_at_sandbox"] != 1:
            problems.append(f"{where}: {r['pages_at_sandbox']} pages at the sandbox, not 1")
        if r["kill_to_page_seconds"] < 0:
            problems.append(f"{where}: paged {r['kill_to_page_seconds']} s before the kill")
        if not 0 <= r["lease_left_at_kill_seconds"] <= figures["page_lease_seconds"]:
            problems.append(f"{where}: {r['lease_left_at_kill_seconds']} s of lease left, "
                            f"outside 0..{figures['page_lease_seconds']:g}")
        if r["after_lease_ran_out_seconds"] < -CLOCK_SLACK:
            problems.append(f"{where}: taken over {-r['after_lease_ran_out_seconds']} s "
                            "before the lease ran out")
        if (r["page_status"], r["page_claims"]) != ("succeeded", 2) or r["sent_by"] is None:
            problems.append(f"{where}: page {r['page_status']} after {r['page_claims']} "
                            f"claims, sent by {r['sent_by']}")
    return problems


def main() -> int:
    """Measure and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds with the page lease")
    parser.add_argument("--page-lease", type=float, default=5.0,
                        help="FIRELANE_PAGE_LEASE_SECONDS (the default is 5)")
    parser.add_argument("--baseline-rounds", type=int, default=2,
                        help="rounds with the page lease equal to the step lease")
    parser.add_argument("--step-lease", type=float, default=30.0,
                        help="FIRELANE_LEASE_SECONDS (the default is 30)")
    parser.add_argument("--hang", type=float, default=6.0,
                        help="seconds the sandbox holds the killed responder's page request")
    args = parser.parse_args()
    run_id = uuid.uuid4().hex[:8]
    logs = Path(tempfile.mkdtemp(prefix="firelane-takeover-"))
    configurations = {
        "page_lease": _configuration("page_lease", args.rounds, args.page_lease,
                                     args.step_lease, args.hang, run_id, logs),
        "baseline_step_lease": _configuration("baseline_step_lease", args.baseline_rounds,
                                              args.step_lease, args.step_lease, args.hang,
                                              run_id, logs)}
    print(f"{'configuration':<20} {'page lease':>10} {'rounds':>6} {'min':>7} {'p50':>7} "
          f"{'max':>7}  pages per round")
    for name, f in configurations.items():
        s = f["kill_to_page_seconds"]
        print(f"{name:<20} {f['page_lease_seconds']:>8g} s {f['rounds']:>6} {s['min']:>6.2f}s "
              f"{s['p50']:>6.2f}s {s['max']:>6.2f}s  {f['pages_per_round']}")
    problems = [p for name, f in configurations.items() for p in _impossible(name, f)]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"not written (process logs in {logs})", file=sys.stderr)
        return 1
    base = configurations["baseline_step_lease"]["kill_to_page_seconds"]["p50"]
    short = configurations["page_lease"]["kill_to_page_seconds"]["p50"]
    figures = {"run_id": run_id, "hang_seconds": args.hang,
               "unit": "seconds from SIGKILL of the responder holding the page to the page "
                       "opened at the sandbox (its dedup key = the page step's idempotency key)",
               "p50": "median of the rounds",
               "configurations": configurations,
               "baseline_over_page_lease_p50": round(base / short, 1)}
    print(f"baseline p50 / page-lease p50: {figures['baseline_over_page_lease_p50']}x")
    print(f"wrote {write_results('takeover', figures)} (process logs in {logs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
