"""The incident store: incidents, alerts, executions, the step ledger, approvals, timeline.

SQLite by default (one file, WAL), PostgreSQL when `FIRELANE_DATABASE_URL` says so. The schema is
created and upgraded by Alembic migrations (`Store.migrate()`).
"""

import threading

from firelane.store.alerts import Accepted
from firelane.store.events import LIFECYCLE_KINDS, EventOps
from firelane.store.guardrails import Pause
from firelane.store.health import Health
from firelane.store.ledger import Claim, ClaimOutcome, RunState, StepRecord, idempotency_key
from firelane.store.notify import WORK_CHANNEL, listen_for_work
from firelane.store.outage import (
    is_transient,
    note_reachable,
    note_unreachable,
    outage_seconds,
    ping,
    ride_out,
    store_call,
)
from firelane.store.processes import LiveProcess
from firelane.store.tables import metadata
from firelane.store.tokens import SCOPES, ApiToken


class Store(EventOps):
    """The whole store. `Store(url).migrate()` makes it ready to use."""


def open_store(url: str, migrate: bool = True) -> Store:
    """A store for `url`, migrated to the newest schema unless told otherwise."""
    store = Store(url)
    if migrate:
        store.migrate()
    return store


_SHARED: dict[str, Store] = {}
_SHARED_LOCK = threading.Lock()


def shared_store(url: str) -> Store:
    """This process's one store for `url` (not migrated here; never close it).

    Flow runs started in a busy responder share its connection pool instead of opening a
    database engine and new connections per run.
    """
    with _SHARED_LOCK:
        store = _SHARED.get(url)
        if store is None:
            store = _SHARED[url] = Store(url)
        return store


__all__ = [
    "LIFECYCLE_KINDS",
    "SCOPES",
    "WORK_CHANNEL",
    "Accepted",
    "ApiToken",
    "Claim",
    "ClaimOutcome",
    "Health",
    "LiveProcess",
    "Pause",
    "RunState",
    "StepRecord",
    "Store",
    "idempotency_key",
    "is_transient",
    "listen_for_work",
    "metadata",
    "note_reachable",
    "note_unreachable",
    "open_store",
    "outage_seconds",
    "ping",
    "ride_out",
    "shared_store",
    "store_call",
]
