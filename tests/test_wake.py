"""Idle responders on PostgreSQL wake on `NOTIFY`, not on their poll, and keep listening
through a database restart.

Every responder here polls every 30 s (with or without a wake-up source), has no UDP wake-up,
and (paging roles) has its once-a-second stale check pushed to a minute away: a response that
moves on well before then was woken by the notification. Real PostgreSQL, the sandbox's
vendors, real responders.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from firelane.settings import Settings
from firelane.store import Store, open_store
from flows.respond import responder
from flows.respond.responder import respond_forever
from integrations.sandbox import Sandbox
from tests.helpers import leave_pending, wait_until
from tests.pgserver import PostgresServer, create_database

ROOT = Path(__file__).resolve().parent.parent
FALLBACK_POLL = 30.0

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def long_polls(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Responders that only a notification can wake before `FALLBACK_POLL` seconds."""
    monkeypatch.setenv("FIRELANE_POLL_SECONDS", str(FALLBACK_POLL))
    monkeypatch.setenv("FIRELANE_DEAF_POLL_SECONDS", str(FALLBACK_POLL))
    monkeypatch.setenv("FIRELANE_WAKE_ADDRESS", "off")
    monkeypatch.setenv("FIRELANE_FLOWS_WAKE_ADDRESS", "off")
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(ROOT / "runbooks"))
    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("FIRELANE_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setattr(responder, "TICK_SECONDS", 60.0)


def _status(store: Store, execution_id: str) -> str:
    return store.get_execution(execution_id).status.value


@pytest.mark.usefixtures("long_polls", "prefect_api")
def test_notify_wakes_an_idle_paging_responder_and_mark_ready_wakes_a_flow_responder(
        pg_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    url = create_database(pg_url, f"wake_{os.urandom(4).hex()}")
    monkeypatch.setenv("FIRELANE_DATABASE_URL", url)
    store = open_store(url)
    settings = Settings.from_env()

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        urgent = asyncio.create_task(respond_forever(store, settings, stop, role="urgent"))
        flows = asyncio.create_task(respond_forever(store, settings, stop, role="flows"))
        await asyncio.sleep(1.0)
        execution_id = await asyncio.to_thread(leave_pending, store)
        problems = []
        if not await wait_until(lambda: bool(sandbox.state.dump()["pd_incidents"]),
                            FALLBACK_POLL - 5):
            problems.append("the paging responder never woke")
        if not await wait_until(lambda: _status(store, execution_id) == "succeeded",
                            FALLBACK_POLL - 5):
            problems.append(f"the flow responder never woke ({_status(store, execution_id)})")
        stop.set()
        started = (await urgent, await flows)
        if started != (1, 1):
            problems.append(f"started {started} (urgent, flows)")
        return problems

    assert asyncio.run(scenario()) == []
    assert len(sandbox.state.dump()["pd_incidents"]) == 1
    store.close()


def _listening(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'")).scalar())
    finally:
        engine.dispose()


@pytest.mark.usefixtures("long_polls")
def test_a_database_restart_does_not_leave_the_listener_deaf(
        pg: PostgresServer, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("FIRELANE_DATABASE_URL", pg.url)
    caplog.set_level(logging.INFO, logger="firelane.store")
    store = open_store(pg.url, migrate=False)
    settings = Settings.from_env()

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        worker = asyncio.create_task(respond_forever(store, settings, stop, role="urgent"))
        problems = []
        if not await wait_until(lambda: _listening(pg.url), 20):
            problems.append("never listened")
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(3.0)
        await asyncio.to_thread(pg.start)
        if not await wait_until(lambda: any("listening for work again" in r.message
                                        for r in caplog.records), 20):
            problems.append("did not listen again after the restart")
        await asyncio.sleep(0.5)
        execution_id = await asyncio.to_thread(leave_pending, store)
        if not await wait_until(lambda: _status(store, execution_id) == "ready", FALLBACK_POLL - 5):
            problems.append(f"not woken after the restart ({_status(store, execution_id)})")
        stop.set()
        await worker
        return problems

    assert asyncio.run(scenario()) == []
    deaf = [r for r in caplog.records if r.message.startswith("not listening for work")]
    assert len(deaf) == 1, [r.message for r in caplog.records]
    assert len(sandbox.state.dump()["pd_incidents"]) == 1
    store.close()
