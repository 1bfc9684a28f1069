"""Liveness: every long-running Firelane process records a heartbeat in the store, per role, so
the intake's `/metrics` shows live processes per role (`firelane_processes_live`) and Prometheus
can page when no paging responder is alive.

Roles (`PROCESS_ROLES`): `intake` (`firelane serve`), `inline` (an intake that runs responses
in its own process, `--responder inline`: it also counts as a paging process), `all`, `urgent`
and `flows` (`firelane respond --role ...`) and `worker` (`firelane worker`). The paging roles,
the ones that send pages, are `PAGING_ROLES`.

A heartbeat rides out a store outage and never stops its process: a transient store error waits
for the store (`ride_out`), any other error is logged and the next beat tries again. An orderly
stop deletes the process's rows, so it stops counting at once; a killed process counts until
its last heartbeat is older than `FIRELANE_LIVENESS_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence

from firelane.errors import StoreUnavailable
from firelane.models import utcnow
from firelane.settings import Settings, worker_identity
from firelane.store import Store, store_call

__all__ = ["PAGING_ROLES", "PROCESS_ROLES", "Liveness", "liveness_in_thread"]

PROCESS_ROLES = ("intake", "inline", "all", "urgent", "flows", "worker")
PAGING_ROLES = ("all", "urgent", "inline")
PRUNE_EVERY = 3600.0
GOODBYE_SECONDS = 2.0

log = logging.getLogger("firelane.liveness")


class Liveness:
    """The heartbeat of one process, in one or more roles.

    Args:
        store: where the heartbeat is recorded.
        settings: `liveness_seconds` sets the window (a beat every third of it).
        roles: the process's roles; the first is recorded under `identity`, each further one
            under `identity/role`.
        identity: the process's id (default: a fresh `worker_identity()`); a responder passes
            its lease owner, so a ledger owner can be matched with its heartbeat.

    Example (in a coroutine):
        >>> alive = Liveness(store, settings, ["urgent"]).start()
        >>> ...
        >>> await alive.stop()
    """

    def __init__(self, store: Store, settings: Settings, roles: Sequence[str],
                 identity: str | None = None) -> None:
        unknown = [r for r in roles if r not in PROCESS_ROLES]
        if unknown or not roles:
            raise ValueError(f"roles must be some of {', '.join(PROCESS_ROLES)}: {roles!r}")
        self.store, self.window = store, settings.liveness_seconds
        self.identity = identity or worker_identity()
        self.rows = [(self.identity if i == 0 else f"{self.identity}/{role}", role)
                     for i, role in enumerate(roles)]
        self.host, self.pid, self.started_at = socket.gethostname(), os.getpid(), utcnow()
        self.beats = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Liveness:
        """Start beating in a task of the running event loop; returns self."""
        self._task = asyncio.create_task(self.run(), name="firelane-liveness")
        return self

    def request_stop(self) -> None:
        """Ask the heartbeat to stop (from the loop's thread; `stop()` also waits for it)."""
        self._stop.set()

    async def stop(self) -> None:
        """Stop beating and say goodbye (delete this process's rows, waiting at most
        `GOODBYE_SECONDS` for the store)."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """Beat every third of the window until `stop()`, then say goodbye."""
        last_prune = -PRUNE_EVERY
        try:
            while not self._stop.is_set():
                try:
                    await self._beat()
                    if time.monotonic() - last_prune >= PRUNE_EVERY:
                        last_prune = time.monotonic()
                        await store_call(self.store.prune_processes, stop=self._stop)
                except StoreUnavailable:
                    break
                except Exception as exc:
                    log.error("liveness heartbeat failed (%s: %s); trying again",
                              type(exc).__name__, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.window / 3)
        finally:
            await self._goodbye()

    async def _beat(self) -> None:
        for process_id, role in self.rows:
            await store_call(self.store.beat_process, process_id, role, self.host, self.pid,
                             self.started_at, stop=self._stop)
        self.beats += 1

    async def _goodbye(self) -> None:
        for process_id, _ in self.rows:
            try:
                await store_call(self.store.forget_process, process_id,
                                 give_up_after=GOODBYE_SECONDS)
            except Exception as exc:
                log.warning("could not remove liveness row %s (%s: %s); it ages out",
                            process_id, type(exc).__name__, exc)


@contextlib.contextmanager
def liveness_in_thread(store: Store, settings: Settings, roles: Sequence[str]) -> Iterator[None]:
    """Beat in a thread of its own while the block runs (for processes without an event loop
    of Firelane's, such as `firelane worker`), and say goodbye when it ends."""
    ready = threading.Event()
    holder: dict[str, tuple[asyncio.AbstractEventLoop, Liveness]] = {}

    async def main() -> None:
        alive = Liveness(store, settings, roles)
        holder["alive"] = (asyncio.get_running_loop(), alive)
        ready.set()
        await alive.run()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="firelane-liveness",
                              daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield
    finally:
        if "alive" in holder:
            loop, alive = holder["alive"]
            loop.call_soon_threadsafe(alive.request_stop)
        thread.join(GOODBYE_SECONDS + 3)
