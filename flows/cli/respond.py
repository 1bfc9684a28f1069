"""`firelane respond` (a responder process) and `firelane serve-flows`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from firelane.lanes import PAGING_NICE
from firelane.settings import Settings
from firelane.store import open_store
from flows.cli.priority import FLOWS_NICE, set_priority
from flows.respond.run_mode import ROLES

__all__ = ["add_respond_command"]


def cmd_respond(args: argparse.Namespace, settings: Settings) -> int:
    from flows.respond.responder import respond_forever

    if args.hand_off and args.role != "urgent":
        raise SystemExit("--hand-off goes with --role urgent")
    priority = _set_priority(args.role, args.nice)
    if args.role != "flows":
        sys.setswitchinterval(0.001)
    store = open_store(settings.database_url)
    flows = {"all": "flow runs in this process",
             "urgent": f"flow runs handed to deployment {args.hand_off}" if args.hand_off
             else "flow runs left to `firelane respond --role flows`",
             "flows": "flow runs of ready executions"}[args.role]
    poll = f"{settings.poll_seconds:g} s when woken by NOTIFY or UDP, " \
        f"{settings.deaf_poll_seconds * 1000:g} ms otherwise" if args.poll_ms is None \
        else f"{args.poll_ms:g} ms"
    print(f"Firelane responder ({args.role}) · store {store.safe_url} · polling every {poll} · "
          f"{flows} · {priority}", flush=True)

    async def main() -> int:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        poll = None if args.poll_ms is None else args.poll_ms / 1000
        return await respond_forever(store, settings, stop, poll, args.role,
                                     args.hand_off, args.max_running or
                                     {"all": 50, "urgent": 500, "flows": 48}[args.role])

    started = asyncio.run(main())
    print(f"responder stopped after starting {started} response(s)")
    return 0


PRIORITY = {"all": 0, "urgent": PAGING_NICE, "flows": FLOWS_NICE}


def _set_priority(role: str, nice: int | None) -> str:
    """Give this process its role's CPU priority (`--nice` overrides): paging (`urgent`) above
    everything else on the machine, flow runs below it."""
    wanted = PRIORITY[role] if nice is None else nice
    if wanted == 0 and nice is None:
        return f"CPU priority {os.getpriority(os.PRIO_PROCESS, 0):+d}"
    return set_priority(wanted)


def cmd_serve_flows(args: argparse.Namespace, settings: Settings) -> int:
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    priority = set_priority(FLOWS_NICE)
    from flows.runs.run_runbook import run_runbook

    print(f"Firelane flow runner · serving run-runbook/{args.name} (up to {args.limit} at once)"
          f" · store {open_store(settings.database_url).safe_url} · {priority}", flush=True)
    run_runbook.serve(name=args.name, limit=args.limit)
    return 0


def add_respond_command(sub: Any) -> None:
    """Register `firelane respond` and `firelane serve-flows`."""
    cmd = sub.add_parser("respond", help="run responses an intake (--responder external) "
                         "left pending")
    cmd.add_argument("--role", choices=ROLES, default="all",
                     help="all: urgent steps and flow runs; urgent: pages and war rooms only; "
                          "flows: flow runs of executions an urgent responder made ready")
    cmd.add_argument("--poll-ms", type=float, default=None,
                     help="idle poll interval, whatever wakes the responder (default: "
                          "FIRELANE_POLL_SECONDS with a wake-up source, "
                          "FIRELANE_DEAF_POLL_SECONDS without)")
    cmd.add_argument("--max-running", type=int, default=None,
                     help="executions this process runs at once (default: all 50, urgent "
                          "500 (its war-room steps share 8 slots, pages none), flows 48 (a flow "
                          "run mostly waits: on probes, on approvals; its CPU runs at +5, "
                          "below paging))")
    cmd.add_argument("--nice", type=int, default=None,
                     help="CPU priority (nice value) of this process; default -5 for urgent "
                          "(needs CAP_SYS_NICE, else a warning and 0), +5 for flows, 0 for "
                          "all: paging goes first, flow runs last")
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
