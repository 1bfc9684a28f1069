"""Group commit: concurrent requests share transactions, every alert is committed before its
answer, and one request's failure is nobody else's."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from firelane.models import Alert, Execution, Incident, Severity
from firelane.store import Accepted, Store
from firelane.store.alerts import AlertPolicy
from flows.intake.committer import Committer


def _alert(fp: str, title: str = "queue backlog") -> Alert:
    return Alert(source="generic", fingerprint=fp, title=title, severity=Severity.SEV2,
                 service="queue")


def _respond(alert: Alert, incident: Incident) -> Execution | None:
    if alert.title == "poison":
        raise RuntimeError("the runbook matcher broke on this alert")
    return Execution(incident_id=incident.id, runbook_name="rb", runbook_hash="h" * 64,
                     runbook_source="x", status="pending")


def test_concurrent_requests_share_commits_and_all_land(sq: Store) -> None:
    committer = Committer(sq, False, AlertPolicy(), _respond)

    async def storm() -> list[list[Accepted]]:
        return list(await asyncio.gather(*(committer.accept([_alert(f"fp{i % 10}")])
                                           for i in range(300))))

    results = asyncio.run(storm())
    committer.close()
    assert committer.commits < 300
    flat = [item for batch in results for item in batch]
    assert len(flat) == 300 and sum(a.declared for a in flat) == 10
    assert sum(a.execution_id is not None for a in flat) == 10
    with sq.tx(write=False) as conn:
        assert conn.exec_driver_sql("select count(*) from alerts").scalar() == 300
        assert conn.exec_driver_sql("select count(*) from executions").scalar() == 10


def test_a_failing_request_does_not_fail_its_batch_mates(sq: Store) -> None:
    committer = Committer(sq, False, AlertPolicy(), _respond)

    async def mixed() -> list[object]:
        return await asyncio.gather(*(committer.accept([_alert(f"ok{i}")]) for i in range(20)),
                                    committer.accept([_alert("bad", "poison")]),
                                    return_exceptions=True)

    results = asyncio.run(mixed())
    committer.close()
    assert isinstance(results[-1], RuntimeError)
    assert all(isinstance(r, list) and r[0].declared for r in results[:-1])
    assert [i.title for i in sq.list_incidents()].count("poison") == 0
    assert len(sq.list_incidents()) == 20


def test_the_nudge_leaves_from_the_writer_thread_once_per_new_execution(sq: Store) -> None:
    nudges: list[str] = []
    committer = Committer(sq, False, AlertPolicy(), _respond,
                          wake=lambda: nudges.append(threading.current_thread().name))

    async def alerts() -> None:
        await committer.accept([_alert("a"), _alert("b")])
        await committer.accept([_alert("a")])
        with contextlib.suppress(RuntimeError):
            await committer.accept([_alert("c", "poison")])

    asyncio.run(alerts())
    committer.close()
    assert nudges == ["firelane-committer", "firelane-committer"]
