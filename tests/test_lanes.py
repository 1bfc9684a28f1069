"""Paging work gets its own threads and goes first for the store's write lock."""

from __future__ import annotations

import asyncio
import threading
import time

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
