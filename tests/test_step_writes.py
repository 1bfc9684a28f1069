"""A step that goes from its claim straight to its first attempt records both in one write:
the claim counts attempt 1 and adds `step.started` (`flows.engine.prepare`), on both stores.
Everything else (a condition, a takeover, inputs that do not render, a retry) notes its
attempts apart, as before."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from firelane.models import StepStatus
from firelane.runbook import Step
from firelane.store import ClaimOutcome, Store
from flows.engine import RunContext, execute_step
from tests.helpers import prepare, step_events

ONE_STEP = """version: 1
name: t
steps:
  - {id: s, uses: test.repeat}
"""


def count_attempt_writes(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The attempts `note_attempt` recorded apart from a claim."""
    noted: list[int] = []
    original = store.note_attempt

    def counting(execution_id: str, step_id: str, attempt: int, events: Any) -> None:
        noted.append(attempt)
        original(execution_id, step_id, attempt, events)
    monkeypatch.setattr(store, "note_attempt", counting)
    return noted


def run_step(rc: RunContext, step_id: str) -> Any:
    return asyncio.run(execute_step(rc, step_of(rc, step_id)))


def step_of(rc: RunContext, step_id: str) -> Step:
    return next(s for s in rc.loaded.runbook.steps if s.id == step_id)


def test_a_fresh_step_records_its_claim_and_first_attempt_in_one_write(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rc = prepare(store, ONE_STEP)
    noted = count_attempt_writes(store, monkeypatch)
    record = run_step(rc, "s")
    assert noted == []
    assert (record.status, record.attempts, record.claims) == (StepStatus.SUCCEEDED, 1, 1)
    assert record.outputs == {"repeat": False, "attempt": 1, "first_use": True}
    assert store.step_records(rc.execution.id)["s"].attempts == 1
    assert step_events(store.timeline(rc.incident.id), "s") == ["step.started",
                                                                 "step.succeeded"]


def test_a_step_with_a_condition_notes_its_attempt_after_the_condition(
        sq: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: s, uses: test.repeat, if: "incident.severity == 'SEV2'"}
""")
    noted = count_attempt_writes(sq, monkeypatch)
    record = run_step(rc, "s")
    assert noted == [1]
    assert (record.attempts, record.outputs) == (1, {"repeat": False, "attempt": 1,
                                                     "first_use": True})
    assert step_events(sq.timeline(rc.incident.id), "s") == ["step.started", "step.succeeded"]


def test_inputs_that_do_not_render_fail_the_step_without_an_attempt(sq: Store) -> None:
    rc = prepare(sq, """version: 1
name: t
inputs: {secs: {type: string, default: "soon"}}
steps:
  - {id: s, uses: core.wait, with: {seconds: "{{ inputs.secs }}"}}
""")
    record = run_step(rc, "s")
    assert (record.status, record.attempts) == (StepStatus.FAILED, 0)
    assert (record.error or "").startswith("ActionInputError: with.seconds:")
    assert step_events(sq.timeline(rc.incident.id), "s") == ["step.failed"]


def test_a_step_taken_over_after_a_crash_between_claim_and_call_is_a_repeat(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rc = prepare(store, ONE_STEP)
    dead = rc.event(step_of(rc, "s"), "step.started", "s started (test.repeat)")
    first = store.claim_step(rc.incident.id, rc.execution.id, "s", "dead-worker", 0.0,
                             started=[dead])
    assert (first.outcome, first.attempt_noted, first.record.attempts) == \
        (ClaimOutcome.CLAIMED, True, 1)
    noted = count_attempt_writes(store, monkeypatch)
    record = run_step(rc, "s")
    assert noted == [1]
    assert (record.claims, record.outputs) == (2, {"repeat": True, "attempt": 1,
                                                   "first_use": False})
    assert step_events(store.timeline(rc.incident.id), "s") == [
        "step.started", "step.taken_over", "step.started", "step.succeeded"]


def test_a_claim_that_finds_the_step_held_records_no_attempt(store: Store) -> None:
    rc = prepare(store, ONE_STEP)
    step = step_of(rc, "s")
    store.claim_step(rc.incident.id, rc.execution.id, "s", "alive", 60.0,
                     started=[rc.event(step, "step.started", "s started")])
    held = store.claim_step(rc.incident.id, rc.execution.id, "s", "other", 60.0,
                            started=[rc.event(step, "step.started", "s started again")])
    assert (held.outcome, held.attempt_noted, held.record.attempts) == \
        (ClaimOutcome.HELD, False, 1)
    assert step_events(store.timeline(rc.incident.id), "s") == ["step.started"]


def test_a_step_already_recorded_is_not_rendered_again(
        sq: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.engine.prepare import prepare as real

    rc = prepare(sq, ONE_STEP)
    first = run_step(rc, "s")
    rendered: list[str] = []

    def counted(rc_: RunContext, step: Step) -> Any:
        rendered.append(step.id)
        return real(rc_, step)
    monkeypatch.setattr("flows.engine.steps.prepare", counted)
    again = run_step(rc, "s")
    assert rendered == [] and again == first


def test_a_step_the_run_knows_finished_is_done_without_a_store_call(
        sq: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow run reaching a step the urgent responder finished: the ledger it read at
    set-up says so, and finished is final, so no write transaction only to read it back."""
    rc = prepare(sq, ONE_STEP)
    first = run_step(rc, "s")
    assert first.status is StepStatus.SUCCEEDED
    claims: list[str] = []
    original = sq.claim_step

    def counting(*args: Any, **kwargs: Any) -> Any:
        claims.append(args[2])
        return original(*args, **kwargs)
    monkeypatch.setattr(sq, "claim_step", counting)
    again = run_step(rc, "s")
    assert claims == []
    assert again == first == sq.step_records(rc.execution.id)["s"]
    assert step_events(sq.timeline(rc.incident.id), "s") == ["step.started", "step.succeeded"]
    del rc.records["s"]
    assert run_step(rc, "s") == first
    assert claims == ["s"], "a step the run does not know about is claimed as before"
