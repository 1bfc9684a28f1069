"""Style hints beyond errors: what a reviewer would point out in a runbook's pull request."""

from __future__ import annotations

from typing import Any

from firelane.errors import Problem
from firelane.registry import get_action
from firelane.runbook import LoadedRunbook
from firelane.templating import has_template, referenced_names
from firelane.yamlsrc import load_yaml

__all__ = ["SCHEMA_COMMENT", "lint_runbook"]

SCHEMA_COMMENT = "# yaml-language-server: $schema="


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if has_template(value) else []
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


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
