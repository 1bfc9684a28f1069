"""Step leases under starvation: a step still running is never repeated by a second worker.

Two ways a lease used to run out under a step that was still running: its renewal queued behind
vendor calls in the shared thread pool, or its event loop was held up (CPU starvation). Either
let a second worker in the same process take the step over and call the vendor again. And one
way with no lease involved: the fast path and the flow run share one context (one owner), so
the flow reaching a step the fast path was still running got its claim and ran it again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from firelane.models import utcnow
from firelane.store import StepRecord, Store
from flows.engine import execute_step
from tests.helpers import prepare, step_events
from tests.plugin_actions import calls


def test_a_starved_loop_does_not_let_a_second_worker_repeat_the_step(
        sq: Store, effects_db: Path) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: ticket, uses: test.effect, with: {name: ticket, after_seconds: 0.2}}
""", lease_seconds=0.4)
    other = replace(rc, owner="second-worker", records={})
    step = rc.loaded.runbook.steps[0]

    async def first() -> str:
        running = asyncio.create_task(execute_step(rc, step))
        while not calls():
            await asyncio.sleep(0.01)
        second.start()
        time.sleep(2.0)
        return (await running).status.value

    results: dict[str, str] = {}

    def run_second() -> None:
        results["second"] = asyncio.run(execute_step(other, step)).status.value

    second = threading.Thread(target=run_second)
    results["first"] = asyncio.run(first())
    second.join(30)
    assert results == {"first": "succeeded", "second": "succeeded"}
    assert len(calls()) == 1, "the second worker called the vendor again"
    record = sq.step_records(rc.execution.id)["ticket"]
    assert record.claims == 1 and record.owner == rc.owner
    assert "step.taken_over" not in step_events(sq.timeline(rc.incident.id), "ticket")


def test_renewals_do_not_queue_behind_a_saturated_thread_pool(
        sq: Store, effects_db: Path) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: ticket, uses: test.effect, with: {name: ticket, after_seconds: 3}}
""", lease_seconds=1.0)
    step = rc.loaded.runbook.steps[0]
    expired: list[float] = []
    sampled = threading.Event()

    def sample(started: float) -> None:
        while time.monotonic() - started < 2.5:
            lease = sq.step_records(rc.execution.id)["ticket"].lease_expires_at
            if lease is not None and lease < utcnow() - timedelta(seconds=0.05):
                expired.append(round(time.monotonic() - started, 2))
            time.sleep(0.05)
        sampled.set()

    async def scenario() -> str:
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(max_workers=4)
        loop.set_default_executor(pool)
        running = asyncio.create_task(execute_step(rc, step))
        while not calls():
            await asyncio.sleep(0.01)
        busy = [loop.run_in_executor(None, time.sleep, 3.0) for _ in range(8)]
        threading.Thread(target=sample, args=(time.monotonic(),), daemon=True).start()
        await asyncio.gather(*busy)
        return (await running).status.value

    assert asyncio.run(scenario()) == "succeeded"
    assert sampled.wait(10)
    assert expired == [], f"the lease ran out while the step ran, at {expired} s"


def test_the_same_context_running_a_step_twice_calls_the_vendor_once(
        sq: Store, effects_db: Path) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: ticket, uses: test.effect, with: {name: ticket, after_seconds: 0.5}}
""")
    step = rc.loaded.runbook.steps[0]

    async def fast_path_then_flow() -> list[StepRecord]:
        fast = asyncio.create_task(execute_step(rc, step))
        while not calls():
            await asyncio.sleep(0.01)
        return list(await asyncio.gather(fast, execute_step(rc, step)))

    first, second = asyncio.run(fast_path_then_flow())
    assert len(calls()) == 1, "the flow run called the vendor again"
    assert first.status.value == second.status.value == "succeeded"
    assert first.outputs == second.outputs
    assert sq.step_records(rc.execution.id)["ticket"].attempts == 1
