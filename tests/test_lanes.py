"""Paging work gets its own threads and goes first for the store's write lock, which is held at
the paging priority."""

from __future__ import annotations

import _thread
import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from firelane.lanes import (
    PAGING_NICE,
    PriorityLock,
    at_paging_priority,
    in_paging_lane,
    paging_lane,
    run_blocking,
)
from firelane.store import open_store


def test_paging_work_runs_on_its_own_threads_with_the_lane_set() -> None:
    def where() -> tuple[str, bool]:
        return threading.current_thread().name, in_paging_lane()

    async def both() -> tuple[tuple[str, bool], tuple[str, bool]]:
        plain = await run_blocking(where)
        with paging_lane():
            paged = await run_blocking(where)
        return plain, paged

    plain, paged = asyncio.run(both())
    assert not plain[1] and not plain[0].startswith("firelane-page")
    assert paged[1] and paged[0].startswith("firelane-page")


def test_priority_lock_serves_paging_waiters_first() -> None:
    lock = PriorityLock()
    order: list[str] = []

    def waiter(name: str, urgent: bool) -> None:
        def take() -> None:
            with lock:
                order.append(name)
        if urgent:
            with paging_lane():
                take()
        else:
            take()

    with lock:
        threads = [threading.Thread(target=waiter, args=(f"plain{i}", False)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        page = threading.Thread(target=waiter, args=("page", True))
        page.start()
        time.sleep(0.05)
        assert order == []
    for t in [*threads, page]:
        t.join(5)
    assert order[0] == "page" and sorted(order[1:]) == ["plain0", "plain1", "plain2"]


def test_priority_lock_serves_each_lane_in_arrival_order_and_excludes() -> None:
    lock = PriorityLock()
    order: list[str] = []
    inside = 0
    overlaps = 0

    def waiter(name: str, urgent: bool) -> None:
        def take() -> None:
            nonlocal inside, overlaps
            with lock:
                inside += 1
                overlaps += inside > 1
                order.append(name)
                time.sleep(0.001)
                inside -= 1
        if urgent:
            with paging_lane():
                take()
        else:
            take()

    threads = []
    with lock:
        for i in range(6):
            urgent = i % 2 == 1
            name = f"{'page' if urgent else 'plain'}{i}"
            t = threading.Thread(target=waiter, args=(name, urgent))
            t.start()
            threads.append(t)
            time.sleep(0.02)
    for t in threads:
        t.join(5)
    assert order == ["page1", "page3", "page5", "plain0", "plain2", "plain4"]
    assert overlaps == 0


@pytest.mark.parametrize("when", ["queued", "handed over"])
def test_an_interrupted_waiter_leaves_the_lock_to_the_others(when: str) -> None:
    """A SIGINT wakes a waiting main thread in the queue; `interrupt_main` only raises once
    the thread runs again, that is after the lock was handed to it. Either way the next waiter
    gets the lock."""
    lock = PriorityLock()
    got: list[str] = []
    release = threading.Event()

    def holder() -> None:
        with lock:
            release.wait(5)

    def later() -> None:
        with lock:
            got.append("later")

    first = threading.Thread(target=holder)
    first.start()
    time.sleep(0.05)
    if when == "queued":
        main = threading.main_thread().ident
        assert main is not None
        threading.Timer(0.05, signal.pthread_kill, (main, signal.SIGINT)).start()
    else:
        threading.Timer(0.05, _thread.interrupt_main).start()
        threading.Timer(0.15, release.set).start()
    second = threading.Thread(target=later)
    threading.Timer(0.1, second.start).start()
    try:
        with lock:
            got.append("main")
    except KeyboardInterrupt:
        got.append("interrupted")
    time.sleep(0.1)
    release.set()
    first.join(5)
    second.join(5)
    assert got == ["interrupted", "later"]
    with lock:
        got.append("free again")
    assert got[-1] == "free again"


def _can_raise_priority() -> bool:
    """Whether this process may lower a thread's nice value (root, CAP_SYS_NICE or
    RLIMIT_NICE), tried on a scratch thread."""
    allowed: list[bool] = []

    def probe() -> None:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, 3)
        try:
            os.setpriority(os.PRIO_PROCESS, tid, PAGING_NICE)
            allowed.append(True)
        except PermissionError:
            allowed.append(False)
    t = threading.Thread(target=probe)
    t.start()
    t.join(5)
    return allowed[0]


def _in_niced_thread(fn: Callable[[], int]) -> tuple[int, int]:
    """Run `fn` in a thread at nice +5; what it returned, and the thread's nice after."""
    out: list[int] = []

    def body() -> None:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, 5)
        out.append(fn())
        out.append(os.getpriority(os.PRIO_PROCESS, tid))
    t = threading.Thread(target=body)
    t.start()
    t.join(10)
    return out[0], out[1]


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_a_niced_thread_runs_at_paging_priority_inside_the_ceiling_and_returns() -> None:
    def inside() -> int:
        with at_paging_priority():
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    during, after = _in_niced_thread(inside)
    assert during == (PAGING_NICE if _can_raise_priority() else 5)
    assert after == 5


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_a_write_transaction_holds_sqlites_lock_at_paging_priority(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/ceiling.db")
    store.migrate()

    def write() -> int:
        with store.tx() as conn:
            conn.exec_driver_sql("SELECT 1")
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def read() -> int:
        with store.tx(write=False) as conn:
            conn.exec_driver_sql("SELECT 1")
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    try:
        assert _in_niced_thread(write) == ((PAGING_NICE if _can_raise_priority() else 5), 5)
        assert _in_niced_thread(read) == (5, 5), "readers take no lock and keep their priority"
    finally:
        store.close()
