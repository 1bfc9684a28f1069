"""`firelane deployments` (print, write or check `prefect.yaml`) and `firelane worker`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from firelane.settings import Settings
from firelane.store import open_store
from flows.runs.deployments import POOL, render_prefect_yaml, worker_command

__all__ = ["add_deployment_commands"]


def cmd_deployments(args: argparse.Namespace, settings: Settings) -> int:
    text = render_prefect_yaml(settings)
    path = Path(args.output)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date with {settings.runbooks_dir}/: run `firelane "
                  f"deployments --write`", file=sys.stderr)
            return 1
        print(f"{path} is current ({text.count('- name:')} deployments)")
        return 0
    if args.write:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({text.count('- name:')} deployments); register them with "
              "`prefect deploy --all`")
        return 0
    sys.stdout.write(text)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    if not os.environ.get("PREFECT_API_URL"):
        print("PREFECT_API_URL is not set: point it at your Prefect server (a worker without "
              "one would start a throwaway server)", file=sys.stderr)
        return 2
    _register_block_types()
    argv, env = worker_command(args.pool, args.limit, settings)
    print(f"Firelane worker · pool {args.pool} (created if missing, type process) · up to "
          f"{args.limit} flow runs · polling every {env['PREFECT_WORKER_QUERY_SECONDS']} s · "
          f"API {env['PREFECT_API_URL']}", flush=True)
    from flows.respond.liveness import liveness_in_thread

    store = open_store(settings.database_url, migrate=False)
    with liveness_in_thread(store, settings, ["worker"]):
        return _supervise(argv, env)


def _register_block_types() -> None:
    """Register Firelane's block types, so the Prefect UI can create the credentials blocks
    error messages point people to; a Prefect API that refuses now leaves the worker to start
    (and wait for it) anyway."""
    import httpx

    from integrations.block_types import register_block_types

    try:
        names = asyncio.run(register_block_types())
    except httpx.HTTPError as exc:
        print(f"could not register Firelane's block types ({type(exc).__name__}: {exc}); "
              "run `firelane doctor --fix` once the Prefect API answers", file=sys.stderr)
        return
    print(f"registered {len(names)} Firelane block types with Prefect", flush=True)


def _supervise(argv: list[str], env: dict[str, str]) -> int:
    """Run the Prefect worker as a child while this process records the worker's heartbeat.
    SIGTERM is passed on (the unit's `KillMode=mixed` sends it here only); SIGINT is left to
    the child, which gets it from the terminal too. Exit 0 when the child stopped because it
    was asked to, 128 + signal when a signal nobody sent here killed it, its own code
    otherwise."""
    child = subprocess.Popen(argv, env=env)
    asked: list[int] = []

    def forward(signum: int, _: Any) -> None:
        asked.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = child.wait()
    if asked and code in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
        return 0
    return 128 - code if code < 0 else code


def add_deployment_commands(sub: Any) -> None:
    """Register `firelane deployments` and `firelane worker`."""
    dep = sub.add_parser("deployments", help="print, write or check prefect.yaml (generated "
                         "from the runbooks)")
    dep.add_argument("--output", default="prefect.yaml", help="file for --write/--check")
    mode = dep.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write it")
    mode.add_argument("--check", action="store_true", help="exit 1 unless it is current")
    dep.set_defaults(fn=cmd_deployments)
    work = sub.add_parser("worker", help="run a Prefect process worker for the Firelane pool "
                          "(low-latency polling); it registers no deployments")
    work.add_argument("--pool", default=POOL, help="work pool name")
    work.add_argument("--limit", type=int, default=20, help="flow runs at once")
    work.set_defaults(fn=cmd_worker)
