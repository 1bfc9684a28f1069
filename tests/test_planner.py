"""The DAG planner without Prefect."""

from __future__ import annotations

from firelane.models import StepStatus
from firelane.planner import Planner
from firelane.runbook import Step

OK, FAIL, SKIP = StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED


def steps(*specs: tuple[str, list[str], str]) -> list[Step]:
    return [Step.model_validate({"id": i, "uses": "core.note", "needs": n, "on_error": e})
            for i, n, e in specs]


def test_independent_steps_are_ready_together() -> None:
    p = Planner(steps(("a", [], "fail"), ("b", [], "fail"), ("c", ["a", "b"], "fail")))
    assert p.advance().ready == ["a", "b"]
    p.start("a")
    p.start("b")
    assert p.advance().empty
    p.record("a", OK)
    assert p.advance().empty
    p.record("b", OK)
    assert p.advance().ready == ["c"]


def test_failure_skips_dependents_transitively_and_marks_failed() -> None:
    p = Planner(steps(("a", [], "fail"), ("b", ["a"], "fail"), ("c", ["b"], "fail"),
                      ("d", [], "fail")))
    p.record("a", FAIL)
    adv = p.advance()
    assert adv.skip == {"b": "needs a, which failed"} and adv.ready == ["d"]
    p.record("b", SKIP)
    assert p.advance().skip == {"c": "needs b, which skipped"}
    assert p.failed


def test_on_error_continue_lets_dependents_run_and_does_not_fail() -> None:
    p = Planner(steps(("a", [], "continue"), ("b", ["a"], "fail")))
    p.record("a", FAIL)
    assert p.advance().ready == ["b"]
    p.record("b", OK)
    assert p.done and not p.failed


def test_skipped_by_condition_blocks_dependents() -> None:
    p = Planner(steps(("a", [], "fail"), ("b", ["a"], "fail")))
    p.record("a", SKIP)
    assert "b" in p.advance().skip and not p.failed
