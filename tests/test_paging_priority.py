"""The paging path's priority: responders claim a backlog of executions in one write, in the
paging lane, on the paging lane's own connections (a storm's incidents cannot queue a new
incident's claim behind theirs one transaction at a time), and the urgent responder runs at a
higher CPU priority than flow runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from firelane.lanes import paging_lane, run_blocking
from firelane.models import Execution, ExecutionStatus, IncidentDraft, Severity
from firelane.store import Store
from flows.respond.responder import _claim

ROOT = Path(__file__).resolve().parent.parent


def backlog(store: Store, n: int) -> list[str]:
    """`n` pending executions, oldest first."""
    ids = []
    for i in range(n):
        incident = store.declare_incident(IncidentDraft(title=f"storm {i}", severity=Severity.SEV2,
                                                        service="web"))
        ids.append(store.create_execution(Execution(
            incident_id=incident.id, runbook_name="rb", runbook_hash="h" * 64,
            runbook_source="x", status=ExecutionStatus.PENDING)).id)
    return ids


def test_a_batch_claims_the_oldest_once_and_marks_them_running(store: Store) -> None:
    ids = backlog(store, 5)
    first = store.claim_executions("r1", 30, limit=3)
    assert [e.id for e in first] == ids[:3]
    assert {store.get_execution(i).status for i in ids[:3]} == {ExecutionStatus.RUNNING}
    rest = store.claim_executions("r2", 30, limit=10)
    assert [e.id for e in rest] == ids[3:]
    assert store.claim_executions("r3", 30, limit=10) == []


def test_a_paging_claim_reads_each_response_state_in_the_same_transaction(
        store: Store) -> None:
    ids = backlog(store, 3)
    first = store.get_execution(ids[0])
    store.claim_step(first.incident_id, ids[0], "page", "dead", 30.0)
    transactions: list[bool] = []
    real_tx = store.tx

    def counted(write: bool = True) -> Any:
        transactions.append(write)
        return real_tx(write)

    store.tx = counted  # type: ignore[method-assign]
    states = store.claim_runs("urgent-1", 30, limit=2)
    store.tx = real_tx  # type: ignore[method-assign]
    assert transactions == [True]
    assert [e.id for e, _, _ in states] == ids[:2]
    assert {e.status for e, _, _ in states} == {ExecutionStatus.RUNNING}
    assert [i.id for _, i, _ in states] == [store.get_execution(i).incident_id for i in ids[:2]]
    assert [sorted(records) for _, _, records in states] == [["page"], []]
    assert states[0][2]["page"].owner == "dead"
    assert [e.id for e, _, _ in store.claim_runs("urgent-2", 30)] == ids[2:]
    assert store.claim_runs("urgent-3", 30) == []


def test_concurrent_batch_claimers_take_each_execution_once(store: Store) -> None:
    ids = backlog(store, 24)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda n: store.claim_executions(f"r{n}", 30, limit=4), range(8)))
    while more := store.claim_executions("late", 30, limit=4):
        got.append(more)
    claimed = [e.id for batch in got for e in batch]
    assert sorted(claimed) == sorted(ids)
    assert len(claimed) == len(set(claimed))


def test_a_paging_responder_claims_in_the_paging_lane_on_its_own_connections(
        store: Store) -> None:
    ids = backlog(store, 3)
    threads: list[str] = []
    real = store.claim_runs

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args)

    store.claim_runs = recording  # type: ignore[method-assign,assignment]
    claimed = asyncio.run(_claim(store, "urgent-1", 30, ExecutionStatus.PENDING, 50,
                                 asyncio.Event()))
    assert [e.id for e, _ in claimed] == ids
    assert all(state is not None and state[0] is e for e, state in claimed)
    assert threads and threads[0].startswith("firelane-page")

    async def engines() -> tuple[Any, Any]:
        plain = await run_blocking(store._engine_for_lane)
        with paging_lane():
            paged = await run_blocking(store._engine_for_lane)
        return plain, paged

    plain, paged = asyncio.run(engines())
    assert plain is store.engine and paged is not store.engine
    assert paged.url == store.engine.url


PRIORITY_CHILD = """
import os, sys
sys.path.insert(0, sys.argv[1])
from flows.cli import _parser
from flows.cli.respond import _set_priority
from flows.cli.serve import intake_priority
from flows.cli.priority import set_priority
if sys.argv[3] == "unprivileged":
    os.setgid(65534)
    os.setuid(65534)
role = sys.argv[2]
if role.startswith("serve"):
    said = set_priority(intake_priority(_parser().parse_args(role.split())))
else:
    said = _set_priority(role, None)
print(os.getpriority(os.PRIO_PROCESS, 0), said, sep="|")
"""


def _priority_of(role: str, who: str) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-c", PRIORITY_CHILD, str(ROOT), role, who],
                          capture_output=True, text=True, timeout=60, check=True)
    now, said = done.stdout.strip().split("|")
    return int(now), said, done.stderr


@pytest.mark.skipif(os.geteuid() != 0 or os.getpriority(os.PRIO_PROCESS, 0) != 0,
                    reason="raising a CPU priority needs root (CAP_SYS_NICE) and a process "
                           "started at nice 0")
def test_paging_runs_above_flow_runs_and_says_so_when_it_cannot() -> None:
    assert _priority_of("urgent", "root")[:2] == (-5, "CPU priority -5")
    assert _priority_of("flows", "root")[:2] == (5, "CPU priority +5")
    now, said, warning = _priority_of("urgent", "unprivileged")
    assert now == 0 and said == "CPU priority +0 (wanted -5)"
    assert "cannot set CPU priority -5 (needs CAP_SYS_NICE" in warning
    assert _priority_of("flows", "unprivileged")[:2] == (5, "CPU priority +5")


@pytest.mark.skipif(os.geteuid() != 0 or os.getpriority(os.PRIO_PROCESS, 0) != 0,
                    reason="raising a CPU priority needs root (CAP_SYS_NICE) and a process "
                           "started at nice 0")
def test_an_intake_that_only_takes_alerts_in_runs_at_the_paging_priority() -> None:
    assert _priority_of("serve --responder external", "root")[:2] == (-5, "CPU priority -5")
    assert _priority_of("serve --no-respond", "root")[:2] == (-5, "CPU priority -5")
    assert _priority_of("serve", "root")[:2] == (0, "CPU priority +0")
    assert _priority_of("serve --responder external --nice 3", "root")[:2] == \
        (3, "CPU priority +3")
    now, said, warning = _priority_of("serve --responder external", "unprivileged")
    assert now == 0 and said == "CPU priority +0 (wanted -5)"
    assert "cannot set CPU priority -5" in warning
