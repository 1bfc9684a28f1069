"""The incident store on SQLite and PostgreSQL: lifecycle, ledger leases, approvals, schema."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event

from firelane.errors import InvalidTransition, NotFound
from firelane.models import (
    ActionItem,
    Approval,
    Execution,
    IncidentDraft,
    IncidentStatus,
    Role,
    Severity,
    StepStatus,
    utcnow,
)
from firelane.store import ClaimOutcome, Store, metadata


def declare(store: Store, title: str = "db down") -> str:
    return store.declare_incident(IncidentDraft(title=title, severity=Severity.SEV2,
                                                service="web")).id


def execution(store: Store, incident_id: str) -> str:
    return store.create_execution(Execution(incident_id=incident_id, runbook_name="rb",
                                            runbook_hash="h" * 64, runbook_source="x")).id


def test_migrations_match_the_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    store.migrate()


def test_numbers_are_unique_under_concurrent_declares(store: Store) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda n: declare(store, f"t{n}"), range(24)))
    numbers = sorted(store.get_incident(i).number for i in ids)
    assert numbers == list(range(1, 25))


def test_lifecycle_is_enforced_and_on_the_timeline(store: Store) -> None:
    inc = declare(store)
    store.set_status(inc, IncidentStatus.ACKNOWLEDGED, "alice")
    store.assign_role("INC-1", Role.COMMANDER, "alice", "bob")
    store.change_severity("1", Severity.SEV1, "alice")
    store.set_link(inc, "ticket", "https://jira/OPS-1")
    with pytest.raises(InvalidTransition):
        store.set_status(inc, IncidentStatus.CLOSED)
    got = store.get_incident(inc)
    assert (got.status, got.commander, got.severity) == ("acknowledged", "alice", "SEV1")
    assert got.links == {"ticket": "https://jira/OPS-1"}
    kinds = [e.kind for e in store.timeline(inc)]
    assert kinds == ["incident.declared", "incident.status", "incident.role",
                     "incident.severity", "incident.link"]
    with pytest.raises(NotFound, match="INC-99"):
        store.get_incident("INC-99")


def test_claim_done_held_and_takeover(store: Store) -> None:
    inc = declare(store)
    ex = execution(store, inc)
    first = store.claim_step(inc, ex, "page", "w1", lease_seconds=0.5)
    assert first.outcome is ClaimOutcome.CLAIMED and first.record.claims == 1
    assert store.claim_step(inc, ex, "page", "w1", 0.5).outcome is ClaimOutcome.CLAIMED
    assert store.claim_step(inc, ex, "page", "w2", 0.5).outcome is ClaimOutcome.HELD
    assert store.renew_lease(ex, "page", "w1", 0.5)
    time.sleep(0.6)
    taken = store.claim_step(inc, ex, "page", "w2", 5)
    assert taken.outcome is ClaimOutcome.TAKEN_OVER and taken.record.claims == 2
    assert taken.record.idempotency_key == first.record.idempotency_key
    assert not store.renew_lease(ex, "page", "w1", 5)
    rec = store.finish_step(ex, "page", StepStatus.SUCCEEDED, {"dedup_key": "k"}, None, [])
    assert rec.status is StepStatus.SUCCEEDED and rec.outputs == {"dedup_key": "k"}
    again = store.finish_step(ex, "page", StepStatus.FAILED, None, "late duplicate", [])
    assert again.status is StepStatus.SUCCEEDED
    done = store.claim_step(inc, ex, "page", "w3", 5)
    assert done.outcome is ClaimOutcome.DONE and done.record.outputs == {"dedup_key": "k"}


def test_an_expired_lease_of_an_owner_known_alive_is_still_held(store: Store) -> None:
    inc = declare(store)
    ex = execution(store, inc)
    store.claim_step(inc, ex, "page", "w1", lease_seconds=0.01)
    time.sleep(0.05)
    held = store.claim_step(inc, ex, "page", "w2", 30, frozenset({"w1"}))
    assert held.outcome is ClaimOutcome.HELD and held.record.owner == "w1"
    taken = store.claim_step(inc, ex, "page", "w2", 30, frozenset({"w3"}))
    assert taken.outcome is ClaimOutcome.TAKEN_OVER and taken.record.owner == "w2"
    assert taken.record.claims == 2


def test_a_flow_run_leaves_an_expired_page_to_the_paging_responders_for_its_grace(
        store: Store) -> None:
    inc = declare(store)
    ex = execution(store, inc)
    store.claim_step(inc, ex, "page", "urgent-1", lease_seconds=0.01, pages=True)
    time.sleep(0.05)
    waits = store.claim_step(inc, ex, "page", "flows-1", 30, pages=True, takeover_grace=25)
    assert waits.outcome is ClaimOutcome.HELD and waits.record.owner == "urgent-1"
    assert [key for key in store.overdue_pages()] == [(ex, "page")]
    taken = store.claim_step(inc, ex, "page", "urgent-2", 5, pages=True)
    assert taken.outcome is ClaimOutcome.TAKEN_OVER and taken.record.owner == "urgent-2"
    store.claim_step(inc, ex, "ticket", "urgent-2", lease_seconds=0.01)
    time.sleep(0.05)
    late = store.claim_step(inc, ex, "ticket", "flows-1", 30, takeover_grace=0.01)
    assert late.outcome is ClaimOutcome.TAKEN_OVER


def test_only_one_of_many_concurrent_claimers_wins(store: Store) -> None:
    inc = declare(store)
    ex = execution(store, inc)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(
            lambda n: store.claim_step(inc, ex, "ticket", f"w{n}", 30).outcome, range(16)))
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    assert outcomes.count(ClaimOutcome.HELD) == 15


def test_approval_first_decision_wins(store: Store) -> None:
    inc = declare(store)
    ex = execution(store, inc)
    approval = Approval(incident_id=inc, execution_id=ex, step_id="rollback",
                        deadline=utcnow() + timedelta(minutes=5), approvers=["alice"])
    store.request_approval(approval)
    assert store.request_approval(approval.model_copy(update={"id": "other"})).id == approval.id
    decided, won = store.decide_approval(approval.id, True, "alice", "looks right")
    assert won and decided.status == "approved" and decided.decided_by == "alice"
    decided, won = store.decide_approval(approval.id, False, "firelane", "timeout")
    assert not won and decided.status == "approved"
    events = [e for e in store.timeline(inc) if e.kind.startswith("approval.")]
    assert [e.kind for e in events] == ["approval.requested", "approval.approved"]


def test_executions_and_action_items(store: Store) -> None:
    inc = declare(store)
    ex = execution(store, inc)
    from firelane.models import ExecutionStatus

    store.set_execution_status(ex, ExecutionStatus.SUCCEEDED, "flow-run-1")
    got = store.get_execution(ex)
    assert got.status == "succeeded" and got.flow_run_id == "flow-run-1" and got.finished_at
    store.add_action_item(ActionItem(incident_id=inc, title="add alert", owner="bob"))
    assert [a.title for a in store.list_action_items(inc, "open")] == ["add alert"]
    with pytest.raises(NotFound):
        store.set_execution_status("nope", ExecutionStatus.FAILED)


def _alert(fp: str, status: str = "firing", title: str = "5xx high") -> Any:
    from firelane.models import Alert

    return Alert(source="alertmanager", fingerprint=fp, status=status, title=title,
                 severity=Severity.SEV2, service="web", labels={"alertname": "X"})


def test_alerts_dedup_into_one_open_incident_and_resolve(store: Store) -> None:
    first = store.accept_alerts([_alert("fp1"), _alert("fp1"), _alert("fp2")])
    assert [(a.declared, a.deduplicated) for a in first] == [(True, False), (False, True),
                                                             (True, False)]
    assert first[0].incident_id == first[1].incident_id != first[2].incident_id
    from firelane.store.tables import open_fingerprints

    with store.tx(write=False) as conn:
        counts = dict(conn.execute(open_fingerprints.select().with_only_columns(
            open_fingerprints.c.fingerprint, open_fingerprints.c.count)).all())
    assert counts == {"fp1": 2, "fp2": 1}
    [resolved] = store.accept_alerts([_alert("fp1", "resolved")], auto_resolve=True)
    assert resolved.incident_id == first[0].incident_id
    incident = store.get_incident(first[0].incident_id or "")
    assert incident.status == "resolved"
    kinds = [e.kind for e in store.timeline(incident.id)]
    assert kinds == ["incident.declared", "alert.received", "incident.status",
                     "alert.resolved"]
    [again] = store.accept_alerts([_alert("fp1")])
    assert again.declared and again.incident_id != first[0].incident_id
    [orphan] = store.accept_alerts([_alert("never-fired", "resolved")])
    assert orphan.incident_id is None
    assert len(store.alerts_of(first[0].incident_id or "")) == 3


def test_concurrent_duplicate_deliveries_make_one_incident(store: Store) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: store.accept_alerts([_alert("storm")])[0],
                                range(32)))
    assert sum(r.declared for r in results) == 1
    assert len({r.incident_id for r in results}) == 1
    assert len(store.list_incidents()) == 1


def test_refiring_soon_after_resolve_reopens_and_then_flaps(store: Store) -> None:
    from firelane.store.alerts import AlertPolicy

    policy = AlertPolicy(reopen_window_seconds=600, flap_after=2)
    [first] = store.accept_alerts([_alert("flappy")], policy=policy)
    outcomes = []
    for _ in range(3):
        store.accept_alerts([_alert("flappy", "resolved")], auto_resolve=True, policy=policy)
        [again] = store.accept_alerts([_alert("flappy")], policy=policy)
        outcomes.append((again.incident_id == first.incident_id, again.reopened,
                         again.flapping, again.needs_response))
    assert outcomes == [(True, True, False, True), (True, True, True, False),
                        (True, True, True, False)]
    incident = store.get_incident(first.incident_id or "")
    assert incident.reopened == 3 and incident.labels["flapping"] == "true"
    kinds = [e.kind for e in store.timeline(incident.id)]
    assert kinds.count("incident.reopened") == 3 and kinds.count("alert.flapping") == 2
    store.accept_alerts([_alert("flappy", "resolved")], auto_resolve=True, policy=policy)
    [fresh] = store.accept_alerts([_alert("flappy")], policy=AlertPolicy(reopen_window_seconds=0))
    assert fresh.declared and fresh.incident_id != first.incident_id


def _grouped(fp: str, service: str = "web", status: str = "firing", cluster: str | None = "eu",
             ) -> Any:
    from firelane.models import Alert

    labels = {"alertname": "X", **({"cluster": cluster} if cluster else {})}
    return Alert(source="grafana", fingerprint=fp, status=status, title=f"{fp} high",
                 severity=Severity.SEV2, service=service, labels=labels)


def test_alerts_sharing_a_group_key_join_one_incident_until_all_resolve(store: Store) -> None:
    from firelane.store.alerts import AlertPolicy

    policy = AlertPolicy(group_by=("service", "cluster"), group_window_seconds=300)
    [a] = store.accept_alerts([_grouped("a")], policy=policy)
    [b] = store.accept_alerts([_grouped("b")], policy=policy)
    [other] = store.accept_alerts([_grouped("c", service="db")], policy=policy)
    [unkeyed] = store.accept_alerts([_grouped("d", cluster=None)], policy=policy)
    assert a.declared and not a.grouped
    assert b.grouped and not b.declared and not b.needs_response
    assert b.incident_id == a.incident_id
    assert other.declared and other.incident_id != a.incident_id
    assert unkeyed.declared and unkeyed.incident_id != a.incident_id
    kinds = [e.kind for e in store.timeline(a.incident_id or "")]
    assert kinds.count("alert.grouped") == 1
    store.accept_alerts([_grouped("a", status="resolved")], auto_resolve=True, policy=policy)
    assert store.get_incident(a.incident_id or "").status.value == "declared"
    store.accept_alerts([_grouped("b", status="resolved")], auto_resolve=True, policy=policy)
    assert store.get_incident(a.incident_id or "").status.value == "resolved"
    [later] = store.accept_alerts([_grouped("e")], policy=policy)
    assert later.declared and later.incident_id != a.incident_id


def test_group_window_expires_and_concurrent_members_make_one_incident(store: Store) -> None:
    from firelane.store.alerts import AlertPolicy

    closed = AlertPolicy(group_by=("service",), group_window_seconds=0)
    [x] = store.accept_alerts([_grouped("x", service="api")], policy=closed)
    [y] = store.accept_alerts([_grouped("y", service="api")], policy=closed)
    assert x.declared and y.declared and x.incident_id != y.incident_id
    policy = AlertPolicy(group_by=("service",), group_window_seconds=300)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda n: store.accept_alerts([_grouped(f"m{n}", service="queue")],
                                          policy=policy)[0], range(16)))
    assert sum(r.declared for r in results) == 1
    assert sum(r.grouped for r in results) == 15
    assert len({r.incident_id for r in results}) == 1


def test_health_counts_waiting_stuck_failed_pages_and_first_actions(store: Store) -> None:
    from sqlalchemy import update

    from firelane.models import StepStatus, TimelineEvent, utcnow
    from firelane.store.tables import executions

    incident_id = declare(store)
    execution(store, incident_id)
    dead_responder, dead_step, acted = (execution(store, incident_id) for _ in range(3))
    with store.tx() as conn:
        conn.execute(update(executions).where(executions.c.id.in_(
            [dead_responder, dead_step, acted])).values(status="running"))
        conn.execute(update(executions).where(executions.c.id == dead_responder).values(
            heartbeat_at=utcnow() - timedelta(minutes=5)))
    store.claim_step(incident_id, dead_step, "s1", "w", lease_seconds=0.01)
    store.claim_step(incident_id, acted, "s1", "w", lease_seconds=60)
    time.sleep(0.05)
    before = store.health(stale_after=90, since=None)
    store.finish_step(acted, "s1", StepStatus.SUCCEEDED, {}, None, [])
    store.append_events([TimelineEvent(incident_id=incident_id, kind="page.failed",
                                       summary="page failed")])
    after = store.health(stale_after=90, since=None)
    assert (before.waiting, before.stuck, before.pages_failed, before.first_actions) == (
        1, 2, 0, [])
    assert (after.waiting, after.stuck, after.pages_failed) == (1, 2, 1)
    [(at, seconds)] = after.first_actions
    assert 0 < seconds < 60 and after.oldest_waiting_seconds > 0
    assert store.health(stale_after=90, since=at).first_actions == []
    assert store.get_execution(acted).first_action_at == at


def test_run_state_reads_an_execution_its_incident_and_ledger_at_once(store: Store) -> None:
    inc = declare(store)
    ex = execution(store, inc)
    other = execution(store, declare(store, "other"))
    store.claim_step(inc, ex, "page", "w1", 30)
    store.claim_step(store.get_execution(other).incident_id, other, "ticket", "w1", 30)
    got, incident, records = store.run_state(ex)
    assert (got.id, incident.id, incident.title) == (ex, inc, "db down")
    assert list(records) == ["page"] and records["page"].owner == "w1"
    assert records == store.step_records(ex)
    with pytest.raises(NotFound, match="no execution"):
        store.run_state("nope")


def test_claim_and_finish_return_the_rows_as_a_re_read_gives_them(store: Store) -> None:
    inc = declare(store)
    ex = execution(store, inc)
    claim = store.claim_step(inc, ex, "ticket", "w1", 30, pages=True)
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claim.record == store.step_records(ex)["ticket"]
    assert store.get_incident(inc).links == {}
    outputs = {"key": "OPS-1", "n": 2**70, "tags": ("a", "b"), "none": None,
               "token": "xoxb-123456789012-123456789012-abcdefghijklmnopqrstuvwx"}
    done = store.finish_step(ex, "ticket", StepStatus.SUCCEEDED, outputs,
                             "Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456", [])
    again = store.step_records(ex)["ticket"]
    assert done == again
    assert done.outputs is not None and "xoxb-" not in str(done.outputs)
    assert done.outputs["n"] == 2**70 and done.outputs["tags"] == ["a", "b"]
    assert done.error is not None and "abcdefghijklmnopqrstuvwxyz123456" not in done.error
    assert store.claim_step(inc, ex, "ticket", "w2", 30).outcome is ClaimOutcome.DONE


def test_an_interrupted_wait_for_the_write_lock_takes_nothing_and_the_store_goes_on(
        sq: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep, here = time.sleep, threading.get_ident()

    def interrupted(seconds: float) -> None:
        if threading.get_ident() == here:
            raise KeyboardInterrupt
        real_sleep(seconds)

    holder = sq.engine.connect()
    holder.exec_driver_sql("BEGIN IMMEDIATE")
    monkeypatch.setattr(time, "sleep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sq.declare_incident(IncidentDraft(title="waits", service="web", severity=Severity.SEV2))
    monkeypatch.setattr(time, "sleep", real_sleep)
    holder.rollback()
    holder.close()
    made = sq.declare_incident(IncidentDraft(title="after", service="web",
                                             severity=Severity.SEV2))
    assert [i.title for i in sq.list_incidents()] == [made.title]


def test_writes_leave_readers_patient_and_set_no_busy_timeout_per_transaction(sq: Store) -> None:
    """Write transactions have their own connections with busy timeout 0 for good, so a write
    is BEGIN IMMEDIATE ... COMMIT with no PRAGMA around it, and the readers' connections keep
    SQLite's 10 s busy timeout."""
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    writer = sq.write_engine()
    assert writer is not sq.engine
    event.listen(writer, "before_cursor_execute", capture)
    try:
        sq.declare_incident(IncidentDraft(title="one", service="web", severity=Severity.SEV2))
    finally:
        event.remove(writer, "before_cursor_execute", capture)
    assert statements[0] == "BEGIN IMMEDIATE"
    assert not [s for s in statements if s.startswith("PRAGMA")], statements
    with writer.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
    with sq.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000


def test_the_event_relays_read_is_a_range_on_kind_and_time(sq: Store) -> None:
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM timeline_events" in statement and "kind IN" in statement:
            seen.append((statement, params))

    sq.declare_incident(IncidentDraft(title="relay", service="web", severity=Severity.SEV2))
    event.listen(sq.engine, "before_cursor_execute", capture)
    try:
        assert sq.lifecycle_since(utcnow() - timedelta(minutes=10))
    finally:
        event.remove(sq.engine, "before_cursor_execute", capture)
    statement, params = seen[0]
    with sq.engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in
                        conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params))
    assert "ix_timeline_kind_at (kind=? AND at>?)" in plan, plan
