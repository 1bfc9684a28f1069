"""Work notifications on PostgreSQL: `NOTIFY` when an execution becomes claimable, `LISTEN`
in the responders that claim it.

The transaction that leaves an execution `pending` (the intake's commit, `create_execution`) or
`ready` (`mark_ready`) also runs `pg_notify('firelane_work', 'pending'|'ready')`; PostgreSQL
delivers it at commit, to every listening session, and not at all on rollback. A notification
carries nothing but the status: the store stays the only source of work, so a lost or duplicated
one costs a fallback poll or one extra cheap read.

`listen_for_work` holds one autocommit connection of its own (not from the pool) and waits on
its socket through the event loop: no thread, no polling. When the connection drops (a restart,
a failover) it reconnects with a capped backoff, logs once when it goes deaf and once when it
hears again, and then sets the event once, for whatever was committed while it was deaf.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import psycopg
from sqlalchemy import Connection, text

from firelane.store.base import StoreBase
from firelane.store.outage import FIRST_DELAY, MAX_DELAY, sleep_unless

__all__ = ["WORK_CHANNEL", "listen_for_work", "notify_work"]

WORK_CHANNEL = "firelane_work"
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}

log = logging.getLogger("firelane.store")


def notify_work(conn: Connection, status: str) -> None:
    """Tell listening responders, at this transaction's commit, that an execution is now in
    `status` (`pending` or `ready`). Nothing on SQLite."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, :status)"),
                     {"channel": WORK_CHANNEL, "status": status})


def _connect_args(store: StoreBase) -> dict[str, Any]:
    _, params = store.engine.dialect.create_connect_args(store.engine.url)
    return {k: v for k, v in params.items() if k != "context"} | KEEPALIVES


async def listen_for_work(store: StoreBase, status: str, event: asyncio.Event,
                          stop: asyncio.Event) -> None:
    """Set `event` whenever an execution becomes `status` in `store` (PostgreSQL only), until
    `stop` is set; survives database restarts (see the module docstring).

    Example (in a responder's loop): `asyncio.create_task(listen_for_work(store, "pending",
    nudged, stop))`."""
    args = _connect_args(store)
    deaf_since: float | None = None
    delay = FIRST_DELAY
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(autocommit=True, **args) as conn:
                await conn.execute(f"LISTEN {WORK_CHANNEL}")
                if deaf_since is not None:
                    log.info("listening for work again after %.1f s",
                             time.monotonic() - deaf_since)
                    event.set()
                deaf_since, delay = None, FIRST_DELAY
                async for note in conn.notifies():
                    if note.payload == status:
                        event.set()
            raise psycopg.OperationalError("the listening connection closed")
        except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
            if deaf_since is None:
                deaf_since = time.monotonic()
                log.warning("not listening for work (%s); polling until the store is back",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
            await sleep_unless(stop, delay)
            delay = min(MAX_DELAY, delay * 2)
