"""Riding out a store outage: which database errors are transient, and one retry helper.

A PostgreSQL restart or failover (including the moments its address answers read-only), a
dropped connection, or SQLite's "database is locked" says
nothing about the operation itself: the same call succeeds once the store answers again. Every
long-running loop and every ledger write goes through `ride_out`, which retries such errors with
a capped backoff (0.1 s doubling to 2 s) and lets every other error (a bug, a schema error, a
constraint) through at once. The process logs one warning when the store stops answering and
one line when it is back, with how long it was gone, however many loops were waiting.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import exc as sa

from firelane.errors import StoreUnavailable
from firelane.store.base import StoreBase

__all__ = ["FIRST_DELAY", "MAX_DELAY", "is_transient", "note_reachable", "note_unreachable",
           "outage_seconds", "ping", "ride_out", "sleep_unless", "store_call"]

T = TypeVar("T")
FIRST_DELAY = 0.1
MAX_DELAY = 2.0

log = logging.getLogger("firelane.store")

_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03", "53300", "08000", "08001", "08003",
                                "08004", "08006", "08007"})
_READ_ONLY = "25006"
_RETRY_TRANSACTION = frozenset({"40001", "40P01"})


def is_transient(exc: BaseException) -> bool:
    """Is `exc` the store being away (retry the same call later) rather than a fault of the
    call? Connection refused or reset, the server closing the connection or shutting down, a
    connection SQLAlchemy invalidated, a full pool, SQLite's "database is locked", a write
    refused by a read-only server (a standby during a failover, before its promotion), a
    transaction PostgreSQL rolled back as a deadlock victim or a serialization failure; raised
    directly or as the cause of a `StoreError`. Programming, schema and integrity errors are
    not."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 4:
        if isinstance(current, StoreUnavailable):
            return True
        if isinstance(current, sa.DBAPIError):
            return _transient_dbapi(current)
        if isinstance(current, sa.TimeoutError | ConnectionError):
            return True
        current, seen = current.__cause__, seen + 1
    return False


def _transient_dbapi(exc: sa.DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if str(getattr(orig, "sqlstate", "")) in _RETRY_TRANSACTION | {_READ_ONLY}:
        return True
    if not isinstance(exc, sa.OperationalError | sa.InterfaceError):
        return False
    if isinstance(orig, sqlite3.Error):
        return "database is locked" in str(orig) or "database is busy" in str(orig)
    state = getattr(orig, "sqlstate", None)
    if state is None:
        return True
    return str(state) in _CONNECTION_STATES


class _Outage:
    """When this process last found the store unreachable (one store per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.warning("store unreachable: %s; retrying", _first_line(exc))

    def recovered(self) -> None:
        if self.since is None:
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            log.info("store reachable again after %.1f s", time.monotonic() - since)


_OUTAGE = _Outage()


def note_unreachable(exc: BaseException) -> None:
    """Record a transient failure met outside `ride_out` (logs once per outage)."""
    _OUTAGE.failed(exc)


def note_reachable() -> None:
    """Record that the store answered (logs once, when an outage ends)."""
    _OUTAGE.recovered()


def outage_seconds() -> float | None:
    """How long this process has found the store unreachable; None when it answers."""
    since = _OUTAGE.since
    return None if since is None else time.monotonic() - since


def ping(store: StoreBase) -> None:
    """Run a trivial query; raises what the store raises when it does not answer, and
    `StoreUnavailable` when a PostgreSQL store is a standby (it answers but refuses writes:
    a failover not finished yet)."""
    with store.tx(write=False) as conn:
        if conn.dialect.name == "postgresql":
            if conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar():
                raise StoreUnavailable("the incident store is a read-only standby (a "
                                       "failover in progress); writes wait for a primary")
        else:
            conn.exec_driver_sql("SELECT 1")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


async def ride_out(call: Callable[[], Awaitable[T]], give_up_after: float | None = None,
                   stop: asyncio.Event | None = None) -> T:
    """Await `call()` until it succeeds, retrying transient store errors with a capped backoff.

    Raises at once whatever is not transient. Raises `StoreUnavailable` (from the last error)
    when the store has not answered for `give_up_after` seconds, or when `stop` is set while
    waiting; without either it waits for as long as the outage lasts.

    Example (in a coroutine):
        `waiting = await ride_out(lambda: asyncio.to_thread(store.has_pending_executions))`
    """
    delay = FIRST_DELAY
    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            _OUTAGE.failed(exc)
            if (deadline is not None and time.monotonic() + delay > deadline) or \
                    (stop is not None and stop.is_set()):
                raise StoreUnavailable(f"the incident store is unreachable: "
                                       f"{_first_line(exc)}") from exc
            if stop is None:
                await asyncio.sleep(delay)
            else:
                await sleep_unless(stop, delay)
            delay = min(MAX_DELAY, delay * 2)
            continue
        _OUTAGE.recovered()
        return result


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less when `stop` is set meanwhile."""
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([waiter], timeout=seconds)
    finally:
        waiter.cancel()


async def store_call(fn: Callable[..., T], *args: Any, give_up_after: float | None = None,
                     stop: asyncio.Event | None = None) -> T:
    """`ride_out` for one blocking store method, run in a worker thread."""
    return await ride_out(lambda: asyncio.to_thread(fn, *args), give_up_after, stop)
