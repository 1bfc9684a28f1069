"""Issue 20, runbook authors: what `validate` and `lint` tell an author, and `if: always()`.

Each test is one finding of the issue: output names checked against the action's outputs,
input defaults against their types, a near step suggested for an unknown one, one error for a
misspelt key, and the skip trap (a `core.fail` guard with `if:` that skips everything after it
when all is well) with its way out, its lint warning and a success that says what it skipped.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firelane.errors import RunbookValidationError
from firelane.lint import lint_runbook, skipped_with
from firelane.loader import load_runbook, load_valid_runbooks, parse_runbook
from firelane.models import StepStatus
from firelane.outcome import decide_outcome
from firelane.planner import Planner
from firelane.runbook import Step
from firelane.store import Store
from firelane.templating import evaluate_condition, runs_always
from firelane.validation import validate_source
from flows.engine.dag import run_dag
from tests.helpers import plain_runner, prepare, statuses

RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"

H = "version: 1\nname: x\n"
TICKET = "  - {id: ticket, uses: jira.create_issue, with: {summary: s}}\n"


def _errors(text: str) -> list[str]:
    return [f"{p.line} {p.path}: {p.message}" for p in validate_source(text, "rb.yaml").errors]


def test_an_output_the_action_does_not_declare_names_the_near_one() -> None:
    errors = _errors(H + "steps:\n" + TICKET + "  - id: tell\n    uses: core.note\n"
                     "    needs: [ticket]\n"
                     "    with: {message: \"{{ steps.ticket.outputs.issue_key }}\"}\n")
    assert errors == ["8 steps[1].with.message: reads steps.ticket.outputs.issue_key, but "
                      "jira.create_issue has no output 'issue_key'; did you mean 'key'?"]


def test_outputs_are_checked_in_if_and_in_subscripts_and_members_too() -> None:
    errors = _errors(H + "steps:\n" + TICKET + "  - id: tell\n    uses: core.note\n"
                     "    needs: [ticket]\n    if: \"steps.ticket.outputs['urll']\"\n"
                     "    with: {message: \"{{ steps.ticket.ouputs }}\"}\n")
    assert errors == [
        "8 steps[1].if: reads steps.ticket.outputs.urll, but jira.create_issue has no output "
        "'urll'; did you mean 'url'?",
        "9 steps[1].with.message: reads steps.ticket.ouputs; a step has outputs, status, "
        "error; did you mean 'outputs'?"]
    good = H + "steps:\n" + TICKET + "  - id: tell\n    uses: core.note\n    needs: [ticket]\n" \
        "    with: {message: \"{{ steps.ticket.outputs.key }} {{ steps.ticket.status }}\"}\n"
    assert _errors(good) == []


def test_input_defaults_must_fit_their_declared_types() -> None:
    errors = _errors(H + "inputs:\n  count: {type: integer, default: five}\n"
                     "  speed: {type: string, default: fast, enum: [slow, medium]}\n"
                     "  wait: {type: number, default: 2}\n"
                     "steps:\n  - {id: a, uses: core.note, with: {message: m}}\n")
    assert errors == ["4 inputs.count: default 'five' is not of type integer",
                      "5 inputs.speed: default 'fast' is not one of enum ['slow', 'medium']"]


def test_an_unknown_step_suggests_the_closest_step_not_add_it_to_needs() -> None:
    errors = _errors(H + "steps:\n" + TICKET + "  - id: tell\n    uses: core.note\n"
                     "    needs: [tickt]\n"
                     "    with: {message: \"{{ steps.tiket.outputs.key }}\"}\n")
    assert errors == ["7 steps[1].needs[0]: no step 'tickt' in steps; did you mean 'ticket'?",
                      "8 steps[1].with.message: reads steps.tiket, but there is no step "
                      "'tiket'; did you mean 'ticket'?"]
    assert not any("add it to needs" in e for e in errors)


def test_a_misspelt_key_gives_one_error_not_a_cascade() -> None:
    text = H + "steps:\n" + TICKET + """  - id: page
    uses: pagerduty.trigger
    need: [ticket]
    with: {summary: "{{ steps.ticket.outputs.key }}"}
  - id: note
    uses: core.note
    needs: [page]
    with: {message: "{{ steps.page.outputs.dedup_key }} {{ steps.ticket.outputs.url }}"}
  - {id: more, uses: core.note, needs: [page, note], with: {message: "{{ steps.page.status }}"}}
"""
    assert _errors(text) == ["7 steps[1].need: unknown key 'need'; did you mean 'needs'?"]


def test_a_misspelt_required_key_is_one_error_not_also_a_missing_one() -> None:
    uses = H + "steps:\n  - {id: a, use: core.note, with: {message: hi}}\n" \
        "  - {id: b, uses: core.note, needs: [a], with: {message: \"{{ steps.a.status }}\"}}\n"
    assert _errors(uses) == ["4 steps[0].use: unknown key 'use'; did you mean 'uses'?"]
    top = H + "step:\n  - {id: a, uses: core.note, with: {message: hi}}\n"
    assert _errors(top) == ["3 step: unknown key 'step'; did you mean 'steps'?"]


def test_a_broken_step_is_reported_once_not_again_by_every_step_that_needs_it() -> None:
    reads = "with: {message: \"{{ steps.probe.status }}\"}"
    text = H + "steps:\n  - {id: probe, uses: http.check, retries: lots}\n" \
        f"  - {{id: b, uses: core.note, needs: [probe], {reads}}}\n"
    assert [e.split(":")[0] for e in _errors(text)] == ["4 steps[0].retries"]
    text = text.replace("id: probe", "id: Probe").replace("probe", "Probe")
    assert [e.split(":")[0] for e in _errors(text)] == ["4 steps[0].id", "4 steps[0].retries"]


GUARD = H + """inputs: {unhealthy: {type: boolean, default: false, description: d}}
steps:
  - {id: check, uses: core.note, with: {message: checked}}
  - id: gate
    uses: core.fail
    needs: [check]
    if: inputs.unhealthy
    with: {message: still unhealthy}
  - {id: resolve, uses: core.note, needs: [gate], with: {message: resolved}%s}
  - {id: close, uses: core.note, needs: [resolve], with: {message: closed}}
"""
ALWAYS = ", if: \"always() and steps.gate.status != 'failed'\""


def test_the_skip_trap_is_a_lint_warning_naming_the_skipped_steps() -> None:
    trap = parse_runbook(GUARD % "", "guard.yaml")
    [warning] = [str(p) for p in lint_runbook(trap) if "warning:" in p.message]
    assert warning.startswith("guard.yaml:9 steps[1].if: warning: gate is a guard "
                              "(core.fail with if:)")
    assert "(resolve, close), yet the run says succeeded" in warning
    assert "give resolve `if: always() and steps.gate.status != 'failed'`" in warning
    fixed = parse_runbook(GUARD % ALWAYS, "guard.yaml")
    assert not [p for p in lint_runbook(fixed) if "warning:" in p.message]
    assert skipped_with(fixed.runbook.steps, fixed.runbook.steps[1]) == []


def test_always_runs_a_step_whatever_its_needs_did() -> None:
    assert runs_always("always() and steps.gate.status != 'failed'")
    assert runs_always("{{ always() }}") and not runs_always("steps.always_on.status")
    assert evaluate_condition("always()", {})
    step = [Step.model_validate({"id": "gate", "uses": "core.fail"}),
            Step.model_validate({"id": "after", "uses": "core.note", "needs": ["gate"],
                                 "if": "always()", "with": {"message": "m"}})]
    planner = Planner(step)
    assert planner.advance().ready == ["gate"]
    planner.start("gate")
    assert planner.advance().empty
    planner.record("gate", StepStatus.SKIPPED)
    assert planner.advance().ready == ["after"]


def test_a_healthy_guard_no_longer_skips_the_rest_with_if_always(sq: Store) -> None:
    rc = prepare(sq, GUARD % ALWAYS)
    assert asyncio.run(run_dag(rc, plain_runner)) is False
    assert statuses(rc) == {"check": "succeeded", "gate": "skipped", "resolve": "succeeded",
                            "close": "succeeded"}


def test_an_unhealthy_guard_still_stops_the_rest_and_fails(sq: Store) -> None:
    rc = prepare(sq, (GUARD % ALWAYS).replace("default: false", "default: true"))
    assert asyncio.run(run_dag(rc, plain_runner)) is True
    assert statuses(rc) == {"check": "succeeded", "gate": "failed", "resolve": "skipped",
                            "close": "skipped"}


def test_a_success_that_skipped_steps_behind_a_guard_says_so(sq: Store) -> None:
    rc = prepare(sq, GUARD % "")
    assert asyncio.run(run_dag(rc, plain_runner)) is False
    outcome = decide_outcome(rc.loaded.runbook.steps, sq.step_records(rc.execution.id),
                             sq.timeline(rc.incident.id))
    assert outcome.succeeded
    assert outcome.describe() == (
        "succeeded; resolve, close were skipped because a step they need was skipped "
        "(`if: always()` runs a step whatever its needs did)")


def test_always_is_for_if_only() -> None:
    errors = _errors(H + "steps:\n  - {id: a, uses: core.note, with: {message: "
                     "\"{{ always() }}\"}}\n")
    assert errors == ["4 steps[0].with.message: always() is for if: expressions only"]


def test_a_runbook_file_is_parsed_once_per_content_and_an_edit_is_read_anew(
        tmp_path: Path) -> None:
    path = tmp_path / "probe.yaml"
    text = (RUNBOOKS / "declare-incident.yaml").read_text()
    path.write_text(text)
    first = load_runbook(path)
    assert load_runbook(path) is first
    path.write_text(text.replace("name: declare-incident", "name: declare-incident-edited"))
    assert load_runbook(path).runbook.name == "declare-incident-edited"
    path.write_text(text.replace("steps:", "stepz:"))
    with pytest.raises(RunbookValidationError):
        load_runbook(path)
    assert [r.path for r in load_valid_runbooks(tmp_path)[0]] == []
