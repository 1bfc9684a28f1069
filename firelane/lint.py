"""Style hints beyond errors: what a reviewer would point out in a runbook's pull request.

One warning (not a hint) is about behaviour: the skip trap. A step whose `if:` is false is
skipped, and so is every step that needs it, and a run of skipped steps still `succeeded`. A
guard written as `core.fail` with `if:` is skipped exactly when all is well, so everything after
it (resolving the page, closing the ticket) never runs. `if: always()` on the dependents is the
way out; the warning names the steps and says so.
"""

from __future__ import annotations

from typing import Any

from firelane.errors import Problem
from firelane.registry import get_action
from firelane.runbook import LoadedRunbook, Step
from firelane.templating import has_template, referenced_names, runs_always
from firelane.yamlsrc import load_yaml

__all__ = ["SCHEMA_COMMENT", "lint_runbook", "skip_traps", "skipped_with"]

SCHEMA_COMMENT = "# yaml-language-server: $schema="


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if has_template(value) else []
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def skipped_with(steps: list[Step], gate: Step) -> list[str]:
    """The steps that are skipped when `gate` is: those that need it, or need one of them,
    unless their `if:` calls `always()`."""
    gone = {gate.id}
    out: list[str] = []
    for step in steps:
        if step.id not in gone and not runs_always(step.if_) and gone & set(step.needs):
            gone.add(step.id)
            out.append(step.id)
    return out


def _trap_message(gate: Step, after: list[str]) -> str:
    shown = ", ".join(after[:6]) + (f" and {len(after) - 6} more" if len(after) > 6 else "")
    fix = (f"if they should run whatever {gate.id} did, give {after[0]} "
           f"`if: always() and steps.{gate.id}.status != 'failed'`")
    if gate.uses == "core.fail":
        return (f"warning: {gate.id} is a guard (core.fail with if:): when all is well its "
                f"condition is false and it is skipped, and so is every step after it "
                f"({shown}), yet the run says succeeded; {fix}")
    return (f"warning: when {gate.id}'s if: is false it is skipped, and so is every step "
            f"that needs it ({shown}), yet the run says succeeded; {fix}")


def skip_traps(loaded: LoadedRunbook) -> list[Problem]:
    """A warning for every step with `if:` that would take other steps down with it (not when
    that `if:` itself calls `always()`: its author has already weighed what a skip does)."""
    located = load_yaml(loaded.source, loaded.path)
    out: list[Problem] = []
    for key, steps in (("steps", loaded.runbook.steps), ("on_failure",
                                                         loaded.runbook.on_failure)):
        for index, step in enumerate(steps):
            gate = step.if_ is not None and not runs_always(step.if_)
            after = skipped_with(steps, step) if gate else []
            if after:
                out.append(located.problem((key, index, "if"), _trap_message(step, after)))
    return out


def lint_runbook(loaded: LoadedRunbook) -> list[Problem]:
    """Hints for a runbook that already validates."""
    rb = loaded.runbook
    located = load_yaml(loaded.source, loaded.path)
    hints: list[Problem] = []

    def hint(path: tuple[str | int, ...], message: str) -> None:
        hints.append(located.problem(path, f"hint: {message}"))

    if not loaded.source.lstrip().startswith(SCHEMA_COMMENT):
        hints.append(Problem(loaded.path, 1, "", "hint: start with '# yaml-language-server: "
                             "$schema=./runbook.schema.json' so editors check as you type"))
    hints += skip_traps(loaded)
    if not rb.description.strip():
        hint(("name",), "add a description: what incident this runbook answers")
    read_inputs: set[str] = set()
    read_steps: set[str] = set()
    for step in rb.all_steps():
        texts = [*_strings(step.with_)]
        for text in texts:
            read_inputs |= referenced_names(text, "inputs")
            read_steps |= referenced_names(text, "steps")
        if step.if_:
            read_inputs |= referenced_names(step.if_, "inputs", expression=True)
            read_steps |= referenced_names(step.if_, "steps", expression=True)
        read_steps |= set(step.needs)
    for name, spec in rb.inputs.items():
        if name not in read_inputs:
            hint(("inputs", name), f"input {name!r} is never used; remove it or use it")
        if not spec.description.strip():
            hint(("inputs", name), f"input {name!r} has no description (it is the UI label)")
    for key, steps in (("steps", rb.steps), ("on_failure", rb.on_failure)):
        for index, step in enumerate(steps):
            outputs = list(get_action(step.uses).outputs.model_fields)
            if step.id not in read_steps and outputs:
                hint((key, index, "id"), f"{step.id!r} produces outputs ({', '.join(outputs)}) "
                     "that no step needs or reads (fine if it is there for its side effect)")
    return hints
