"""A page whose responder died is found and taken over by any paging responder, once.

Paging steps are claimed with a short lease (`page_lease_seconds`) and marked in the ledger;
`overdue_pages()` and `firelane_pages_overdue` count exactly the paging claims whose lease ran
out; `PageTakeover` (what every paging responder runs once a second) re-runs each with the same
idempotency key. The real-process version (SIGKILL mid page) is tests/test_page_takeover_kill.py.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import integrations  # noqa: F401  (registers the vendor actions)
from firelane.inputs import new_execution
from firelane.loader import load_runbook
from firelane.models import ExecutionStatus, IncidentDraft, Severity, StepStatus, utcnow
from firelane.settings import Settings
from firelane.store import Store, open_store
from firelane.store.tables import step_ledger
from flows.engine import build_context, execute_step
from flows.respond.takeover import PageTakeover
from integrations.sandbox import Sandbox

RUNBOOK = Path(__file__).resolve().parent.parent / "runbooks" / "declare-incident.yaml"


def _execution(store: Store) -> str:
    incident = store.declare_incident(IncidentDraft(title="Checkout down",
                                                    severity=Severity.SEV1, service="web"))
    return store.create_execution(new_execution(load_runbook(RUNBOOK), incident, {},
                                                sandbox=True)).id


def _claim(store: Store, execution_id: str, step_id: str, owner: str, lease: float,
           pages: bool) -> None:
    incident_id = store.get_execution(execution_id).incident_id
    claim = store.claim_step(incident_id, execution_id, step_id, owner, lease, pages=pages)
    assert claim.outcome.value == "claimed"


def test_overdue_pages_are_paging_claims_whose_lease_ran_out(store: Store) -> None:
    execution_id = _execution(store)
    _claim(store, execution_id, "page", "dead-responder", 0.05, pages=True)
    _claim(store, execution_id, "ticket", "dead-responder", 0.05, pages=False)
    _claim(store, _execution(store), "page", "live-responder", 60, pages=True)
    time.sleep(0.1)
    assert store.overdue_pages() == [(execution_id, "page")]
    assert store.health(90, None).pages_overdue == 1
    store.finish_step(execution_id, "page", StepStatus.SUCCEEDED, {"ok": True}, None, [])
    assert store.overdue_pages() == [] and store.health(90, None).pages_overdue == 0


def test_a_finished_execution_has_no_overdue_page(store: Store) -> None:
    execution_id = _execution(store)
    _claim(store, execution_id, "page", "dead-responder", 0.05, pages=True)
    store.set_execution_status(execution_id, ExecutionStatus.FAILED)
    time.sleep(0.1)
    assert store.overdue_pages() == []


@pytest.fixture
def env(sandbox: Sandbox, sqlite_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("FIRELANE_PAGE_LEASE_SECONDS", "0.3")
    return open_store(sqlite_url)


def test_paging_steps_get_the_short_lease_and_the_mark(env: Store, sandbox: Sandbox) -> None:
    sandbox.faults.add(path="/pagerduty/v2/enqueue", kind="latency", latency=0.5)
    sandbox.faults.add(path="/jira/rest/api/2/issue", method="POST", kind="latency",
                       latency=0.5)
    execution_id = _execution(env)
    rc = build_context(env, execution_id, Settings.from_env())
    steps = {s.id: s for s in rc.loaded.runbook.steps}

    async def leases_while_running() -> dict[str, float]:
        tasks = [asyncio.create_task(execute_step(rc, steps[s])) for s in ("page", "ticket")]
        await asyncio.sleep(0.3)
        records = env.step_records(execution_id)
        await asyncio.gather(*tasks)
        return {k: (r.lease_expires_at - r.started_at).total_seconds()
                for k, r in records.items() if r.lease_expires_at is not None}

    leases = asyncio.run(leases_while_running())
    assert leases["page"] < 1.0 and leases["ticket"] > 20, leases
    records = env.step_records(execution_id)
    assert records["page"].pages and not records["ticket"].pages
    assert {r.status for r in records.values()} == {StepStatus.SUCCEEDED}


def test_a_paging_responder_takes_over_a_dead_responders_page_once(
        env: Store, sandbox: Sandbox) -> None:
    execution_id = _execution(env)
    _claim(env, execution_id, "page", "dead-responder", 0.3, pages=True)
    env.note_attempt(execution_id, "page", 1, [])
    takeover = PageTakeover(env, Settings.from_env())

    async def scan_until_done() -> list[int]:
        stop = asyncio.Event()
        started = [await takeover.scan(stop)]
        await asyncio.sleep(0.5)
        started.append(await takeover.scan(stop))
        await takeover.close()
        started.append(await takeover.scan(stop))
        return started

    assert asyncio.run(scan_until_done()) == [0, 1, 0]
    assert takeover.taken == 1
    record = env.step_records(execution_id)["page"]
    assert (record.status, record.claims) == (StepStatus.SUCCEEDED, 2), record
    assert record.owner != "dead-responder"
    pages = list(sandbox.state.dump()["pd_incidents"].values())
    assert len(pages) == 1 and pages[0]["incident_key"] == record.idempotency_key
    kinds = [e.kind for e in env.timeline(env.get_execution(execution_id).incident_id)
             if e.step_id == "page"]
    assert "step.taken_over" in kinds and kinds.count("step.succeeded") == 1


def test_a_page_running_in_this_process_is_not_taken_over_by_it(
        env: Store, sandbox: Sandbox) -> None:
    slow = sandbox.faults.add(path="/pagerduty/v2/enqueue", kind="latency", latency=0.9)
    execution_id = _execution(env)
    rc = build_context(env, execution_id, Settings.from_env())
    page = next(s for s in rc.loaded.runbook.steps if s.id == "page")
    takeover = PageTakeover(env, Settings.from_env())

    async def scenario() -> tuple[int, StepStatus]:
        running = asyncio.create_task(execute_step(rc, page))
        while not slow.hits:
            await asyncio.sleep(0.01)
        with env.tx() as conn:
            conn.execute(update(step_ledger).values(
                lease_expires_at=utcnow() - timedelta(seconds=10)))
        assert env.overdue_pages() == [(execution_id, "page")]
        started = await takeover.scan(asyncio.Event())
        return started, (await running).status

    assert asyncio.run(scenario()) == (0, StepStatus.SUCCEEDED)
    assert env.step_records(execution_id)["page"].claims == 1
