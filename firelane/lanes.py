"""Two lanes for blocking work, so a page never queues behind a war room.

A responder runs many steps at once, and each step's store writes and vendor calls run in
threads. In one shared pool a page waits behind every ticket and channel queued before it, and
on the store's write lock behind every writer. Work done inside `paging_lane()` (the engine
enters it for actions registered with `pages=True`) runs on its own threads (`run_blocking`)
and goes first for the store's write lock (`PriorityLock`).

A thread holding SQLite's write lock runs at the paging priority while it holds it
(`at_paging_priority`, the priority ceiling): a flow run at nice +5 preempted by busier processes
while every other writer waits for it would otherwise delay the intake's commits and the pages.

Lease renewals get a third lane (`run_lease_call`): they are tiny store writes, and queued behind
a busy shared pool they would arrive after the lease ran out and let another worker repeat a step
that is still running.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["PAGING_NICE", "PriorityLock", "at_paging_priority", "in_paging_lane", "paging_lane",
           "run_blocking", "run_lease_call"]

T = TypeVar("T")

_PAGING: contextvars.ContextVar[bool] = contextvars.ContextVar("firelane_paging", default=False)
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="firelane-page")
_LEASE_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="firelane-lease")


PAGING_NICE = -5
"""The CPU priority (nice value) of paging work: the urgent responder's, and a store writer's
while it holds the write lock."""

_CEILING = {"allowed": sys.platform == "linux"}


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


@contextmanager
def at_paging_priority() -> Iterator[None]:
    """Run the calling thread at `PAGING_NICE` inside, then at its own priority again (on
    Linux a nice value is per thread). Lowering a nice value needs CAP_SYS_NICE or an
    RLIMIT_NICE that allows it (systemd's `LimitNICE=-5`); without either, the first refusal
    turns this off for the process and the thread keeps its priority."""
    if not _CEILING["allowed"]:
        yield
        return
    thread = threading.get_native_id()
    own = os.getpriority(os.PRIO_PROCESS, thread)
    if own <= PAGING_NICE:
        yield
        return
    try:
        os.setpriority(os.PRIO_PROCESS, thread, PAGING_NICE)
    except PermissionError:
        _CEILING["allowed"] = False
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, thread, own)


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
    """A mutex where threads in the paging lane are served before the others, each group in
    arrival order.

    A release hands the lock straight to one waiter (paging first) and wakes only that thread.
    Waking every waiter to let them race for it (a condition's `notify_all`) cost a responder
    with dozens of flow runs waiting about a seventh of its interpreter time under a storm, and
    the woken threads took the interpreter lock from the thread holding the store's write lock,
    which then held it longer."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._urgent: deque[threading.Lock] = deque()
        self._plain: deque[threading.Lock] = deque()

    def __enter__(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            (self._urgent if _PAGING.get() else self._plain).append(turn)
        try:
            turn.acquire()
        except BaseException:
            with self._mutex:
                queued = turn in self._urgent or turn in self._plain
                if queued:
                    (self._urgent if turn in self._urgent else self._plain).remove(turn)
            if not queued:
                self._release()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._release()

    def _release(self) -> None:
        """Hand the lock to the next waiter (it is then held on its behalf), or free it."""
        with self._mutex:
            queue = self._urgent or self._plain
            if queue:
                queue.popleft().release()
            else:
                self._held = False
