"""Two lanes for blocking work, so a page never queues behind a war room.

A responder runs many steps at once, and each step's store writes and vendor calls run in
threads. In one shared pool a page waits behind every ticket and channel queued before it, and
on the store's write lock behind every writer. Work done inside `paging_lane()` (the engine
enters it for actions registered with `pages=True`) runs on its own threads (`run_blocking`)
and goes first for the store's write lock (`PriorityLock`).

Lease renewals get a third lane (`run_lease_call`): they are tiny store writes, and queued behind
a busy shared pool they would arrive after the lease ran out and let another worker repeat a step
that is still running.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["PriorityLock", "in_paging_lane", "paging_lane", "run_blocking", "run_lease_call"]

T = TypeVar("T")

_PAGING: contextvars.ContextVar[bool] = contextvars.ContextVar("firelane_paging", default=False)
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="firelane-page")
_LEASE_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="firelane-lease")


def in_paging_lane() -> bool:
    """Is the current task or thread doing paging work?"""
    return _PAGING.get()


@contextmanager
def paging_lane() -> Iterator[None]:
    """Everything inside (in this task) is paging work."""
    token = _PAGING.set(True)
    try:
        yield
    finally:
        _PAGING.reset(token)


async def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call in a thread: the paging pool inside the paging lane (with the lane
    still set in that thread), the default executor otherwise."""
    if not _PAGING.get():
        return await asyncio.to_thread(fn, *args, **kwargs)
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, call)


async def run_lease_call(fn: Callable[..., T], *args: Any) -> T:
    """Run a lease renewal on the lease lane's own threads, never behind vendor calls."""
    return await asyncio.get_running_loop().run_in_executor(
        _LEASE_POOL, functools.partial(fn, *args))


class PriorityLock:
    """A mutex where threads in the paging lane are served before the others."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._urgent_waiting = 0

    def __enter__(self) -> None:
        urgent = _PAGING.get()
        with self._cond:
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._held or (not urgent and self._urgent_waiting):
                    self._cond.wait()
            finally:
                if urgent:
                    self._urgent_waiting -= 1
            self._held = True

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()
