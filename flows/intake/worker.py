"""`firelane respond`: a warm process that runs responses the intake left pending.

Kept apart from the intake so a storm's ingestion and the paging path do not share a CPU and an
interpreter lock: the intake only commits alerts, incidents and pending executions; this process
claims them (polling with a cheap read, claiming with a conditional update), runs their urgent
steps at once and the flow run beside them, heartbeats what it runs, and takes over executions
whose responder died.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from firelane.settings import Settings, worker_identity
from firelane.store import Store, open_store

__all__ = ["add_respond_command", "respond_forever"]

log = logging.getLogger("firelane.responder")


async def respond_forever(store: Store, settings: Settings, stop: asyncio.Event,
                          poll_seconds: float = 0.005) -> int:
    """Claim and run executions until `stop` is set; returns how many were started."""
    from flows.fast_path import run_with_fast_path

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
    try:
        while not stop.is_set():
            check_stale = loop.time() - last_stale_check > 1.0
            if not check_stale and not await asyncio.to_thread(store.has_pending_executions):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_seconds)
                continue
            if check_stale:
                last_stale_check = loop.time()
            execution = await asyncio.to_thread(store.claim_execution, owner, stale_after)
            if execution is None:
                continue
            task = asyncio.create_task(run_with_fast_path(store, execution.id, settings))
            running[execution.id] = task
            task.add_done_callback(_forget(running, execution.id))
            started += 1
        if running:
            await asyncio.wait(list(running.values()), timeout=30)
    finally:
        beat.cancel()
    return started


def _forget(running: dict[str, asyncio.Task[Any]], key: str) -> Any:
    def done(_: asyncio.Task[Any]) -> None:
        running.pop(key, None)
    return done


def cmd_respond(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings.database_url)
    print(f"Firelane responder · store {store.safe_url} · polling every "
          f"{args.poll_ms:g} ms", flush=True)

    async def main() -> int:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        return await respond_forever(store, settings, stop, args.poll_ms / 1000)

    started = asyncio.run(main())
    print(f"responder stopped after starting {started} response(s)")
    return 0


def add_respond_command(sub: Any) -> None:
    """Register `firelane respond`."""
    cmd = sub.add_parser("respond", help="run responses an intake (--responder external) "
                         "left pending")
    cmd.add_argument("--poll-ms", type=float, default=5.0, help="idle poll interval")
    cmd.set_defaults(fn=cmd_respond)
