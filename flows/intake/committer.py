"""Group commit: one writer thread folds the alerts of every request waiting at that moment
into one transaction.

Under a storm, one transaction per request means one lock hand-over (and, on SQLite, a busy
wait) per request. The writer takes whatever has queued while the previous commit ran, commits
it at once, and only then answers each request: every alert is still committed before its
202. A batch that fails for a reason other than a conflict is retried request by request, so one
request's problem is never another's error.

`wake` (the responders' nudge) is sent from the writer thread the moment a commit leaves a
pending execution, not after the outcome has travelled back to the event loop: one thread
hand-over fewer on the way to a page.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from firelane.models import Alert
from firelane.store import Accepted, Store
from firelane.store.alerts import AlertPolicy, ExecutionPlanner

__all__ = ["Committer"]

_STOP = object()


@dataclass
class _Pending:
    alerts: list[Alert]
    future: asyncio.Future[list[Accepted]]
    loop: asyncio.AbstractEventLoop


class Committer:
    """The intake's single writer (start it on the running loop; `close()` drains it)."""

    def __init__(self, store: Store, auto_resolve: bool, policy: AlertPolicy,
                 respond: ExecutionPlanner | None, max_batch: int = 500,
                 wake: Callable[[], None] | None = None) -> None:
        self.store, self.auto_resolve, self.policy = store, auto_resolve, policy
        self.respond, self.max_batch, self.wake = respond, max_batch, wake
        self.queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="firelane-committer",
                                       daemon=True)
        self.commits = 0

    async def accept(self, alerts: list[Alert]) -> list[Accepted]:
        """Commit these alerts (with whatever else is waiting); their outcomes."""
        if not self.thread.is_alive() and self.thread.ident is None:
            self.thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Accepted]] = loop.create_future()
        self.queue.put(_Pending(alerts, future, loop))
        return await future

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self.thread.is_alive():
            self.queue.put(_STOP)
            self.thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is _STOP:
                return
            assert isinstance(first, _Pending)
            group = [first]
            stop = False
            while len(group) < self.max_batch:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                assert isinstance(more, _Pending)
                group.append(more)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Pending]) -> None:
        try:
            results = self.store.accept_batches([p.alerts for p in group], self.auto_resolve,
                                                self.policy, self.respond)
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0], exc)
                return
            for pending in group:
                self._commit([pending])
            return
        self.commits += 1
        if self.wake is not None:
            for result in results:
                for accepted in result:
                    if accepted.execution_id is not None:
                        self.wake()
        for pending, result in zip(group, results, strict=True):
            _settle(pending, result)


def _settle(pending: _Pending, outcome: list[Accepted] | BaseException) -> None:
    def deliver() -> None:
        if pending.future.done():
            return
        if isinstance(outcome, BaseException):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)
    with contextlib.suppress(RuntimeError):
        pending.loop.call_soon_threadsafe(deliver)
