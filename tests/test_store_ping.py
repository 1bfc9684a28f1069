"""PostgreSQL connections are pinged only after idling (`IDLE_PING_SECONDS`), on a real server
restarted under a store: a transaction on a connection used moments ago costs no ping, one
idle past the threshold is pinged and a dead one replaced before the caller sees it, and one
that died within the threshold fails once as a transient error, after which the next
transaction (or `store_call`'s retry) runs on a fresh connection. Part of `make test-faults`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from firelane.store import base, is_transient, open_store, store_call
from tests.pgserver import PostgresServer
from tests.process_stack import pg  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(120)


def _count_pings(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pings: list[float] = []
    dialect = store.engine.dialect
    real = dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        pings.append(time.monotonic())
        return bool(real(dbapi_conn))
    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


def test_busy_connections_are_not_pinged_and_an_idle_one_is(
        pg: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    store = open_store(pg.url, migrate=False)
    pings = _count_pings(store, monkeypatch)
    for _ in range(20):
        assert store.has_pending_executions() is False
    assert pings == []
    monkeypatch.setattr(base, "IDLE_PING_SECONDS", 0.2)
    time.sleep(0.3)
    assert store.has_pending_executions() is False
    assert len(pings) == 1
    store.close()


def test_a_restart_after_the_idle_threshold_is_invisible_to_the_caller(
        pg: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    store = open_store(pg.url, migrate=False)
    monkeypatch.setattr(base, "IDLE_PING_SECONDS", 0.2)
    pings = _count_pings(store, monkeypatch)
    assert store.has_pending_executions() is False
    pg.stop()
    pg.start()
    time.sleep(0.3)
    assert store.has_pending_executions() is False
    assert len(pings) == 1
    store.close()


def test_a_connection_dead_within_the_threshold_fails_once_then_a_fresh_one_answers(
        pg: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    store = open_store(pg.url, migrate=False)
    monkeypatch.setattr(base, "IDLE_PING_SECONDS", 3600.0)
    assert store.has_pending_executions() is False
    pg.stop()
    pg.start()
    with pytest.raises(Exception) as failed:
        store.has_pending_executions()
    assert is_transient(failed.value), repr(failed.value)
    assert store.has_pending_executions() is False
    pg.stop()
    pg.start()
    assert asyncio.run(store_call(store.has_pending_executions)) is False
    store.close()
