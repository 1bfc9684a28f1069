"""`firelane respond`: warm processes that run the responses an intake left pending.

Kept apart from the intake so a storm's ingestion and the paging path do not share a CPU and an
interpreter lock: the intake only commits alerts, incidents and pending executions; responders
claim them (polling with a cheap read, claiming with a conditional update), heartbeat what they
run, and take over executions whose responder died.

Roles split the work further, so Prefect's CPU work never sits in front of a page:
- `all` (default): urgent steps at once, then the flow run in this process;
- `urgent`: urgent steps only, then the execution is left `ready` for a flow runner, or handed
  to a Prefect deployment (`--hand-off`);
- `flows`: claims `ready` executions and runs their flow runs here (at a lower CPU priority,
  `--nice`), where the DAG finds the urgent steps recorded and goes on from there; it also runs
  the timeline report and postmortem draft of incidents resolved without one (an alert
  auto-resolved them).

The paging roles also hand the interpreter lock between threads every 1 ms instead of 5 ms: the
event loop that starts pages must not wait behind vendor-client threads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from firelane.models import ExecutionStatus
from firelane.settings import Settings, worker_identity
from firelane.store import Store, open_store
from flows.intake.wake import listen_for_wakeups

__all__ = ["ROLES", "add_respond_command", "respond_forever"]

log = logging.getLogger("firelane.responder")

ROLES = ("all", "urgent", "flows")


def _runner(store: Store, settings: Settings, role: str,
            deployment: str | None) -> Callable[[str], Coroutine[Any, Any, Any]]:
    from flows.fast_path import run_flow_in_thread, run_with_fast_path

    where = "here" if role == "all" else f"deployment:{deployment}" if deployment else "ready"

    async def run(execution_id: str) -> Any:
        if role == "flows":
            return await run_flow_in_thread(execution_id)
        return await run_with_fast_path(store, execution_id, settings, where)
    return run


async def respond_forever(store: Store, settings: Settings, stop: asyncio.Event,
                          poll_seconds: float = 0.005, role: str = "all",
                          deployment: str | None = None, max_running: int = 50) -> int:
    """Claim and run executions in `role` until `stop` is set; returns how many it started."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=32, thread_name_prefix="firelane-io"))
    run = _runner(store, settings, role, deployment)
    wanted = ExecutionStatus.READY if role == "flows" else ExecutionStatus.PENDING
    owner = worker_identity()
    stale_after = settings.lease_seconds * 3
    running: dict[str, asyncio.Task[Any]] = {}
    started = 0

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(stale_after / 3)
            await asyncio.to_thread(store.heartbeat_executions, owner, list(running))

    beat = asyncio.create_task(heartbeat())
    last_stale_check = 0.0
    loop = asyncio.get_running_loop()
    nudged = asyncio.Event()
    listener = await listen_for_wakeups(
        settings.wake_address if wanted is ExecutionStatus.PENDING else None, nudged)
    stopping = asyncio.create_task(stop.wait())
    reports = asyncio.create_task(report_resolved(store, stop)) if role == "flows" else None
    try:
        while not stop.is_set():
            check_stale = wanted is ExecutionStatus.PENDING and \
                loop.time() - last_stale_check > 1.0
            nudged.clear()
            if len(running) >= max_running or (not check_stale and not await asyncio.to_thread(
                    store.has_pending_executions, wanted)):
                woken = asyncio.create_task(nudged.wait())
                await asyncio.wait([stopping, woken], timeout=poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                continue
            if check_stale:
                last_stale_check = loop.time()
            execution = await asyncio.to_thread(store.claim_execution, owner, stale_after,
                                                wanted)
            if execution is None:
                continue
            task = asyncio.create_task(run(execution.id))
            running[execution.id] = task
            task.add_done_callback(_forget(running, execution.id))
            started += 1
        if running:
            await asyncio.wait(list(running.values()), timeout=30)
    finally:
        beat.cancel()
        stopping.cancel()
        if reports is not None:
            reports.cancel()
        if listener is not None:
            listener.close()
    return started


async def report_resolved(store: Store, stop: asyncio.Event, every: float = 5.0) -> int:
    """Run the timeline report (and postmortem draft) of every incident resolved without one
    (an alert auto-resolved it), once per resolution across all flow runners."""
    from datetime import timedelta

    from firelane.models import utcnow
    from flows.fast_path import run_in_flow_thread
    from flows.report_flow import report_once

    done = 0
    while not stop.is_set():
        for incident in await asyncio.to_thread(store.resolved_without_report,
                                                utcnow() - timedelta(days=1)):
            try:
                if await run_in_flow_thread(report_once, store, incident.id):
                    done += 1
            except Exception as exc:
                log.error("report of INC-%s failed: %s", incident.number, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return done


def _forget(running: dict[str, asyncio.Task[Any]], key: str) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        running.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("response %s failed: %s", key, task.exception())
    return done


def cmd_respond(args: argparse.Namespace, settings: Settings) -> int:
    if args.hand_off and args.role != "urgent":
        raise SystemExit("--hand-off goes with --role urgent")
    if args.role == "flows" and args.nice:
        os.nice(args.nice)
    else:
        sys.setswitchinterval(0.001)
    store = open_store(settings.database_url)
    flows = {"all": "flow runs in this process",
             "urgent": f"flow runs handed to deployment {args.hand_off}" if args.hand_off
             else "flow runs left to `firelane respond --role flows`",
             "flows": f"flow runs of ready executions (nice +{args.nice})"}[args.role]
    print(f"Firelane responder ({args.role}) · store {store.safe_url} · polling every "
          f"{args.poll_ms:g} ms · {flows}", flush=True)

    async def main() -> int:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        return await respond_forever(store, settings, stop, args.poll_ms / 1000, args.role,
                                     args.hand_off, args.max_running or
                                     {"all": 50, "urgent": 500, "flows": 4}[args.role])

    started = asyncio.run(main())
    print(f"responder stopped after starting {started} response(s)")
    return 0


def cmd_serve_flows(args: argparse.Namespace, settings: Settings) -> int:
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    from flows.runbook_flow import run_runbook

    print(f"Firelane flow runner · serving run-runbook/{args.name} (up to {args.limit} at once)"
          f" · store {open_store(settings.database_url).safe_url}", flush=True)
    run_runbook.serve(name=args.name, limit=args.limit)
    return 0


def add_respond_command(sub: Any) -> None:
    """Register `firelane respond` and `firelane serve-flows`."""
    cmd = sub.add_parser("respond", help="run responses an intake (--responder external) "
                         "left pending")
    cmd.add_argument("--role", choices=ROLES, default="all",
                     help="all: urgent steps and flow runs; urgent: pages and war rooms only; "
                          "flows: flow runs of executions an urgent responder made ready")
    cmd.add_argument("--poll-ms", type=float, default=5.0, help="idle poll interval")
    cmd.add_argument("--max-running", type=int, default=None,
                     help="executions this process runs at once (default: all 50, urgent "
                          "500 (its war-room steps share 8 slots, pages none), flows 4, so a "
                          "burst of flow runs does not crowd out paging)")
    cmd.add_argument("--nice", type=int, default=5,
                     help="CPU priority offset for --role flows (paging goes first)")
    cmd.add_argument("--hand-off", metavar="DEPLOYMENT",
                     help="with --role urgent: hand each flow run to this deployment (e.g. "
                          "run-runbook/respond-to-incident from prefect.yaml, run by "
                          "`firelane worker`; or run-runbook/firelane served by `firelane "
                          "serve-flows`)")
    cmd.set_defaults(fn=cmd_respond)
    flows = sub.add_parser("serve-flows", help="serve the run-runbook deployment that "
                           "`firelane respond --hand-off` hands flow runs to (a process per "
                           "flow run)")
    flows.add_argument("--name", default="firelane", help="deployment name")
    flows.add_argument("--limit", type=int, default=20, help="flow runs at once")
    flows.set_defaults(fn=cmd_serve_flows)
