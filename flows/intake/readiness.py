"""The Prefect API part of the intake's `/readyz`: checked in the background of a request at
most every `every` seconds and within a time bound, so `/readyz` stays fast whatever Prefect
does."""

from __future__ import annotations

import asyncio
import time

__all__ = ["PrefectCheck"]


class PrefectCheck:
    """The Prefect API's last known state, refreshed when older than `every` seconds.

    Example (in a coroutine):
        >>> check = PrefectCheck()
        >>> await check.state(2.0)
        'ok'
    """

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.checked_at: float | None = None
        self.last = "unknown"
        self._lock = asyncio.Lock()

    async def state(self, timeout: float) -> str:
        """`ok`, or why the Prefect API is not usable; at most `timeout` seconds."""
        if self.checked_at is not None and time.monotonic() - self.checked_at < self.every:
            return self.last
        async with self._lock:
            if self.checked_at is None or time.monotonic() - self.checked_at >= self.every:
                self.last = await self._probe(timeout)
                self.checked_at = time.monotonic()
        return self.last

    @staticmethod
    async def _probe(timeout: float) -> str:
        from flows.runs.outage import api_reachable

        try:
            reachable = await asyncio.wait_for(api_reachable(timeout), timeout)
        except TimeoutError:
            return f"the Prefect API did not answer within {timeout:g} s"
        return "ok" if reachable else "the Prefect API is unreachable"
