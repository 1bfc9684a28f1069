"""Paging work gets its own threads and goes first for the store's write lock."""

from __future__ import annotations

import _thread
import asyncio
import signal
import threading
import time

import pytest

from firelane.lanes import PriorityLock, in_paging_lane, paging_lane, run_blocking


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
