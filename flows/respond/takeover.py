"""Pages whose responder died: any paging responder takes them over within seconds.

A paging step is claimed with a short lease (`page_lease_seconds`, renewed every third of it).
When the responder holding it dies or stalls, the lease runs out and the step shows in
`store.overdue_pages()`; every paging responder looks once a second and runs each such step
through `execute_step()`, which takes the claim over and calls the vendor again with the same
idempotency key (PagerDuty's `dedup_key`), so the page goes out once. The rest of the execution
stays with whoever runs it (a flow responder, a Prefect flow run, the execution's own takeover
when its heartbeat goes stale): they find the page recorded.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from firelane.settings import Settings
from firelane.store import Store, store_call
from flows.engine import build_context, execute_step, running_here

__all__ = ["PageTakeover"]

log = logging.getLogger("firelane.responder")


class PageTakeover:
    """Finds overdue pages and runs each once in this process (not twice at a time)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.running: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self.taken = 0

    async def scan(self, stop: asyncio.Event) -> int:
        """Start a takeover for every overdue page not already being taken over here;
        returns how many started."""
        overdue = await store_call(self.store.overdue_pages, stop=stop)
        started = 0
        for key in overdue:
            if key in self.running or running_here(*key):
                continue
            task = asyncio.create_task(self._take(*key))
            self.running[key] = task
            task.add_done_callback(self._forget(key))
            started += 1
        return started

    def _forget(self, key: tuple[str, str]) -> Any:
        def done(_task: asyncio.Task[Any]) -> None:
            self.running.pop(key, None)
        return done

    async def _take(self, execution_id: str, step_id: str) -> None:
        rc = await asyncio.to_thread(build_context, self.store, execution_id, self.settings)
        step = next((s for s in rc.loaded.runbook.all_steps() if s.id == step_id), None)
        if step is None:
            log.error("overdue page %s of execution %s is not in its runbook snapshot",
                      step_id, execution_id)
            return
        log.warning("taking over page %s of INC-%s (execution %s): its responder's lease ran "
                    "out", step_id, rc.incident.number, execution_id)
        try:
            record = await execute_step(rc, step)
        except Exception as exc:
            log.error("takeover of page %s (execution %s) failed: %s", step_id, execution_id,
                      exc)
            return
        self.taken += 1
        log.info("page %s of INC-%s %s after takeover", step_id, rc.incident.number,
                 record.status.value)

    async def close(self) -> None:
        """Wait (briefly) for takeovers in flight on an orderly stop."""
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=30)
