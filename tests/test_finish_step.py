"""`claim_step` and `finish_step` write what they must in as few statements as they can, on both
stores: a fresh claim is one insert (a conflict reads the row); the
execution's first action once (skipped when the caller knows it is set), and a linking step's
link event in the same insert as the step's own events, in order, once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from firelane.links import LINK_EVENT, Link
from firelane.models import StepStatus, TimelineEvent
from firelane.store import Store
from tests.test_store import declare, execution


def _statements(store: Store) -> tuple[list[str], Any]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN"):
            return
        seen.append(statement.split()[0] + " " + statement.split()[2 if statement.startswith(
            ("INSERT", "DELETE")) else 1])
    engine = store.write_engine()
    event.listen(engine, "before_cursor_execute", note)
    return seen, lambda: event.remove(engine, "before_cursor_execute", note)


def _step(store: Store, incident_id: str, execution_id: str, step: str) -> None:
    store.claim_step(incident_id, execution_id, step, "w", lease_seconds=60)


def test_first_action_is_set_once_and_skipped_when_the_caller_knows_it(store: Store) -> None:
    incident_id = declare(store)
    run = execution(store, incident_id)
    for step in ("a", "b", "c"):
        _step(store, incident_id, run, step)
    store.finish_step(run, "a", StepStatus.SUCCEEDED, {}, None, [], first_action=False)
    assert store.get_execution(run).first_action_at is None
    first = store.finish_step(run, "b", StepStatus.SUCCEEDED, {}, None, [])
    assert store.get_execution(run).first_action_at == first.finished_at
    seen, stop = _statements(store)
    store.finish_step(run, "c", StepStatus.SUCCEEDED, {}, None, [], first_action=False)
    stop()
    assert store.get_execution(run).first_action_at == first.finished_at
    assert not any("executions" in s for s in seen), seen


def test_a_links_event_goes_in_with_the_steps_own_in_one_insert(store: Store) -> None:
    incident_id = declare(store)
    run = execution(store, incident_id)
    _step(store, incident_id, run, "ticket")
    seen, stop = _statements(store)
    done = TimelineEvent(incident_id=incident_id, kind="step.succeeded", summary="done",
                         execution_id=run, step_id="ticket")
    store.finish_step(run, "ticket", StepStatus.SUCCEEDED, {"key": "OPS-1"}, None, [done],
                      Link("ticket", "https://jira/OPS-1", run, "ticket"), first_action=False)
    stop()
    assert [s for s in seen if s.startswith("INSERT")] == ["INSERT timeline_events"], seen
    kinds = [e.kind for e in store.timeline(incident_id) if e.execution_id == run]
    assert kinds[-2:] == ["step.succeeded", LINK_EVENT]
    assert store.get_incident(incident_id).links["ticket"] == "https://jira/OPS-1"
    assert not store.record_link(incident_id, Link("ticket", "https://jira/OPS-2", run,
                                                   "ticket"))


def test_a_fresh_claim_is_one_insert_and_a_second_claim_reads_the_row(store: Store) -> None:
    from firelane.store import ClaimOutcome

    incident_id = declare(store)
    run = execution(store, incident_id)
    started = [TimelineEvent(incident_id=incident_id, kind="step.started", summary="s",
                             execution_id=run, step_id="page")]
    seen, stop = _statements(store)
    first = store.claim_step(incident_id, run, "page", "w1", lease_seconds=60, started=started)
    stop()
    assert seen == ["INSERT step_ledger", "INSERT timeline_events"], seen
    assert first.outcome is ClaimOutcome.CLAIMED and first.attempt_noted
    held = store.claim_step(incident_id, run, "page", "w2", lease_seconds=60, started=started)
    again = store.claim_step(incident_id, run, "page", "w1", lease_seconds=60)
    assert (held.outcome, held.record.owner) == (ClaimOutcome.HELD, "w1")
    assert again.outcome is ClaimOutcome.CLAIMED and again.record.claims == 1
    kinds = [e.kind for e in store.timeline(incident_id) if e.execution_id == run]
    assert kinds.count("step.started") == 1
