"""A real PostgreSQL stopped and restarted under real `firelane serve` and `firelane respond`
processes: nothing dies, nothing is lost, nothing is paged twice.

The classifier is checked against the exceptions a stopped server really raises, not against
hand-built ones. Part of `make test-faults`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from firelane.store import is_transient, open_store, store_call
from firelane.store.tables import executions
from integrations.sandbox import Sandbox
from tests.pgserver import PostgresServer
from tests.process_stack import ROOT, Stack

OUTAGE_SECONDS = 10.0

pytestmark = pytest.mark.timeout(120)


def _capture(fn: Any) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("no error raised")


def test_transient_errors_are_the_ones_a_stopped_server_raises(
        pg: PostgresServer, tmp_path: Path) -> None:
    store = open_store(pg.url, migrate=False)
    held = store.engine.connect()
    held.execute(text("SELECT 1"))
    pg.stop()
    refused = _capture(store.has_pending_executions)
    shut_down = _capture(lambda: held.execute(text("SELECT 1")))
    held.close()
    pg.start()
    programming = _capture(lambda: store.engine.connect().execute(text("SELECT * FROM nope")))
    assert isinstance(refused, OperationalError) and "refused" in str(refused)
    assert isinstance(shut_down, OperationalError) and shut_down.connection_invalidated
    assert isinstance(programming, ProgrammingError)
    assert is_transient(refused) and is_transient(shut_down)
    assert not is_transient(programming)

    db = tmp_path / "locked.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite:///{db}", connect_args={"timeout": 0})
    locked = _capture(lambda: engine.connect().execute(text("SELECT * FROM t")))
    holder.rollback()
    missing = _capture(lambda: engine.connect().execute(text("SELECT * FROM nope")))
    engine.dispose()
    assert isinstance(locked, OperationalError) and "locked" in str(locked)
    assert isinstance(missing, OperationalError) and "no such table" in str(missing)
    assert is_transient(locked) and not is_transient(missing)
    store.close()


def test_ride_out_retries_an_outage_once_logged_and_raises_a_bug_at_once(
        pg: PostgresServer, caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(pg.url, migrate=False)
    calls = 0

    def broken() -> None:
        nonlocal calls
        calls += 1
        with store.tx() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(ProgrammingError):
        asyncio.run(store_call(broken))
    assert calls == 1, "a programming error was retried"

    pg.stop()
    restarter = threading.Timer(3.0, pg.start)
    restarter.start()
    caplog.set_level(logging.INFO, logger="firelane.store")
    started = time.monotonic()
    assert asyncio.run(store_call(store.has_pending_executions)) is False
    restarter.join()
    waited = time.monotonic() - started
    lines = [r for r in caplog.records if r.name == "firelane.store"]
    assert [r.levelname for r in lines] == ["WARNING", "INFO"], [r.message for r in lines]
    assert lines[0].message.startswith("store unreachable: ") and "retrying" in lines[0].message
    assert "reachable again after" in lines[1].message
    assert waited < 3.0 + 2.0 + 2.0, f"answered {waited:.1f} s after a 3 s outage"
    store.close()


@pytest.fixture
def stack(pg: PostgresServer, sandbox: Sandbox, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(pg, sandbox, tmp_path)
    try:
        s.start_all()
        yield s
    finally:
        s.stop_all()


def _wait_for(what: str, check: Any, seconds: float = 30) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"{what} not within {seconds:g} s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_an_idle_responder_outlives_a_database_restart_and_pages_once(stack: Stack) -> None:
    stack.pg.stop()
    time.sleep(OUTAGE_SECONDS)
    assert stack.alive() == {"intake": None, "responder": None}, stack.log("responder")[-3000:]
    assert httpx.get(f"{stack.url}/healthz", timeout=5).status_code == 200
    stack.pg.start()
    back = time.monotonic()
    response = stack.post(1)
    assert response.status_code == 202, response.text
    to_page = _wait_for("the page", lambda: len(stack.pages()) >= 1)
    time.sleep(2)
    assert len(stack.pages()) == 1, stack.pages()
    assert stack.alive() == {"intake": None, "responder": None}
    warnings = stack.log("responder").count("store unreachable")
    assert warnings == 1, stack.log("responder")[-3000:]
    print(f"\nidle responder: {OUTAGE_SECONDS:g} s outage survived; alert sent at the return, "
          f"paged {to_page:.2f} s after the alert ({time.monotonic() - back:.1f} s after the "
          "database returned, incl. the 2 s check)")


def test_alerts_during_an_outage_get_503_then_every_accepted_one_pages_once(
        stack: Stack) -> None:
    answers: dict[int, list[int]] = {}
    ready_during: list[int] = []
    stop_sending = threading.Event()

    def send() -> None:
        n = 0
        while not stop_sending.is_set():
            n += 1
            while True:
                try:
                    code = stack.post(n).status_code
                except httpx.TransportError:
                    code = 0
                answers.setdefault(n, []).append(code)
                if code == 202 or stop_sending.is_set():
                    break
                time.sleep(0.2)
            time.sleep(0.1)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        time.sleep(2)
        stack.pg.stop()
        stopped = time.monotonic()
        time.sleep(3)
        ready_during.append(httpx.get(f"{stack.url}/readyz", timeout=5).status_code)
        health = httpx.get(f"{stack.url}/healthz", timeout=5).status_code
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        down = httpx.get(f"{stack.url}/readyz", timeout=5)
        ready_during.append(down.status_code)
        paged_before = len(stack.pages())
        stack.pg.start()
        back = time.monotonic()
        to_ready = _wait_for("readiness", lambda: httpx.get(
            f"{stack.url}/readyz", timeout=5).status_code == 200)
        _wait_for("a page after the outage", lambda: len(stack.pages()) > paged_before)
        to_first_page = time.monotonic() - back
        time.sleep(2)
    finally:
        stop_sending.set()
        sender.join(timeout=30)
    assert health == 200
    assert ready_during == [503, 503] and down.json()["down"] == "store", down.text
    codes = [c for tried in answers.values() for c in tried]
    assert set(codes) <= {202, 503}, sorted(set(codes))
    assert codes.count(503) >= 5, "no alert was refused during the outage"
    accepted = [n for n, tried in answers.items() if tried[-1] == 202]
    assert len(accepted) >= 10
    store = open_store(stack.pg.url, migrate=False)

    def statuses() -> list[str]:
        with store.tx(write=False) as conn:
            return [r.status for r in conn.execute(select(executions.c.status))]

    _wait_for("every execution's urgent steps", lambda: statuses() == ["ready"] * len(accepted))
    time.sleep(1)
    state = stack.sandbox.state.dump()
    pages = stack.pages()
    assert len(pages) == len(set(pages)) == len(answers) == len(accepted), \
        (len(pages), len(set(pages)), len(answers), len(accepted))
    assert len(state["jira_issues"]) == len(state["slack_channels"]) == len(accepted)
    assert len(store.list_incidents(limit=10_000)) == len(accepted), "a refused alert was stored"
    store.close()
    assert stack.alive() == {"intake": None, "responder": None}, stack.log("responder")[-3000:]
    print(f"\nalerts during a {OUTAGE_SECONDS:g} s outage: {len(accepted)} accepted, "
          f"{codes.count(503)} answers 503; /readyz 200 {to_ready:.2f} s and the first page "
          f"{to_first_page:.2f} s after the database returned; each page once")


def test_a_page_in_flight_when_the_database_stops_is_recorded_once_when_it_returns(
        stack: Stack) -> None:
    slow = stack.sandbox.faults.add(path="/pagerduty/v2/enqueue", kind="latency", latency=4)
    assert stack.post(1).status_code == 202
    _wait_for("the page request", lambda: slow.hits >= 1)
    stack.pg.stop()
    _wait_for("the page", lambda: len(stack.pages()) == 1, seconds=10)
    time.sleep(4)
    stack.pg.start()
    back = time.monotonic()
    store = open_store(stack.pg.url, migrate=False)
    [incident] = store.list_incidents()
    [execution] = store.list_executions(incident.id)
    _wait_for("the execution", lambda: store.get_execution(execution.id).status == "ready")
    settled = time.monotonic() - back
    page = store.step_records(execution.id)["page"]
    kinds = [e.kind for e in store.timeline(incident.id) if e.step_id == "page"]
    store.close()
    assert len(stack.pages()) == 1
    assert (page.status, page.claims, page.attempts) == ("succeeded", 1, 1), page
    assert kinds.count("step.succeeded") == 1 and "step.taken_over" not in kinds, kinds
    assert stack.alive() == {"intake": None, "responder": None}, stack.log("responder")[-3000:]
    print(f"\npage in flight across the outage: recorded once, execution ready {settled:.2f} s "
          "after the database returned")


@pytest.fixture
def full_stack(pg: PostgresServer, sandbox: Sandbox, tmp_path: Path,
               prefect_api: str) -> Iterator[Stack]:
    """The intake, a paging responder and a flow responder (its flow runs on a real Prefect
    API), all on the restartable PostgreSQL."""
    s = Stack(pg, sandbox, tmp_path, {"responder": "urgent", "flows": "flows"},
              {"PREFECT_API_URL": prefect_api})
    try:
        s.start_all()
        yield s
    finally:
        s.stop_all()


class _Sender:
    """Alerts one after another, each retried until it gets a 202 (as Alertmanager does)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.answers: dict[int, list[int]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send)

    def _send(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            while True:
                try:
                    code = self.stack.post(n, "failover").status_code
                except httpx.TransportError:
                    code = 0
                self.answers.setdefault(n, []).append(code)
                if code == 202 or self.stop.is_set():
                    break
                time.sleep(0.2)
            time.sleep(0.1)

    def accepted(self) -> list[int]:
        return [n for n, tried in self.answers.items() if tried[-1] == 202]


def _settled(stack: Stack, accepted: int) -> dict[str, int]:
    """Wait until every execution finished its runbook; the vendor effects per kind."""
    store = open_store(stack.pg.url, migrate=False)

    def statuses() -> list[str]:
        with store.tx(write=False) as conn:
            return [r.status for r in conn.execute(select(executions.c.status))]

    try:
        _wait_for("every runbook", lambda: statuses() == ["succeeded"] * accepted, 90)
        incidents = len(store.list_incidents(limit=10_000))
    finally:
        store.close()
    state = stack.sandbox.state.dump()
    pages = stack.pages()
    assert len(pages) == len(set(pages)), "a page twice"
    return {"incidents": incidents, "pages": len(pages), "tickets": len(state["jira_issues"]),
            "channels": len(state["slack_channels"]), "bridges": len(state["zoom_meetings"])}


def test_a_failover_to_a_promoted_standby_at_the_same_address_loses_nothing(
        full_stack: Stack) -> None:
    stack = full_stack
    stack.pg.start_standby()
    sender = _Sender(stack)
    sender.thread.start()
    ready: list[int] = []
    try:
        time.sleep(2)
        def watch() -> None:
            for _ in range(40):
                ready.append(httpx.get(f"{stack.url}/readyz", timeout=5).status_code)
                time.sleep(0.3)

        watcher = threading.Thread(target=watch)
        watcher.start()
        stack.pg.failover(read_only_seconds=4)
        promoted = time.monotonic()
        _wait_for("readiness", lambda: httpx.get(f"{stack.url}/readyz",
                                                 timeout=5).status_code == 200)
        to_ready = time.monotonic() - promoted
        time.sleep(3)
    finally:
        sender.stop.set()
        sender.thread.join(timeout=30)
    watcher.join(timeout=30)
    codes = [c for tried in sender.answers.values() for c in tried]
    assert set(codes) <= {202, 503}, sorted(set(codes))
    assert 503 in ready, "readiness never said the store was away during the failover"
    accepted = sender.accepted()
    effects = _settled(stack, len(accepted))
    assert effects == dict.fromkeys(effects, len(accepted)), effects
    assert stack.alive() == {"intake": None, "responder": None, "flows": None}, \
        stack.log("responder")[-3000:]
    print(f"\nfailover to a promoted standby (4 s read-only at the same address): "
          f"{len(accepted)} alerts accepted, {codes.count(503)} answers 503, /readyz 200 "
          f"{to_ready:.2f} s after the promotion; every runbook done once")


def test_an_outage_longer_than_three_leases_under_a_page_in_flight_loses_nothing(
        full_stack: Stack) -> None:
    stack = full_stack
    slow = stack.sandbox.faults.add(path="/pagerduty/v2/enqueue", kind="latency", latency=3)
    assert stack.post(1, "long").status_code == 202
    _wait_for("the page request", lambda: slow.hits >= 1)
    stack.pg.stop()
    time.sleep(4 * 5 + 2)
    assert set(stack.alive().values()) == {None}, stack.log("responder")[-3000:]
    stack.pg.start()
    assert stack.post(2, "long").status_code == 202
    effects = _settled(stack, 2)
    assert effects == dict.fromkeys(effects, 2), effects
    assert set(stack.alive().values()) == {None}, stack.log("responder")[-3000:]
    print("\nstore down 22 s (over 4 leases) under a page in flight: every process alive, "
          "both incidents' runbooks done once")


def test_the_reminder_flow_waits_out_an_outage_and_reminds_once(
        pg: PostgresServer, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    from firelane.inputs import new_execution
    from firelane.loader import load_runbook
    from firelane.models import ActionItem, IncidentDraft, Severity
    from firelane.timeparse import parse_time
    from flows.runs.action_items import remind_action_items

    monkeypatch.setenv("FIRELANE_DATABASE_URL", pg.url)
    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "none.yaml"))
    store = open_store(pg.url, migrate=False)
    incident = store.declare_incident(IncidentDraft(title="Queue backlog",
                                                    severity=Severity.SEV2, service="web"))
    runbook = load_runbook(ROOT / "runbooks" / "declare-incident.yaml")
    store.create_execution(new_execution(runbook, incident, {}, sandbox=True))
    item = store.add_action_item(ActionItem(incident_id=incident.id, title="Alert on depth",
                                            owner="bob@example.com",
                                            due=parse_time("2026-12-10T09:00Z")))
    store.close()
    pg.stop()
    result: dict[str, Any] = {}

    def run() -> None:
        result.update(asyncio.run(remind_action_items.fn(
            reaction=None, digest_weekday=None, now="2026-12-09T09:00Z")))

    runner = threading.Thread(target=run)
    runner.start()
    time.sleep(3)
    assert runner.is_alive(), f"the reminder pass ended during the outage: {result}"
    pg.start()
    runner.join(timeout=60)
    assert result["reminded"] == [item.id] and not result["failed"], result
    dms = [m for m in sandbox.state.dump()["slack_messages"] if m["channel"] == "DU0BOB"]
    assert len(dms) == 1 and "is due 2026-12-10" in dms[0]["text"], dms
