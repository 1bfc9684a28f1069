"""Runbook validation: every problem at once, each with file, line and path.

Checks, in the order an author meets them: YAML hazards; the schema (unknown keys with a "did
you mean", types, required keys, input defaults that fit their type); step ids; `uses` names a
registered action; `needs` names earlier steps (so there are no cycles); templates compile,
read only the four roots, only declared inputs, only steps this step (transitively) needs and
only outputs their actions declare; literal `with:` values fit the action's `Inputs` model and
required inputs are present unless the service catalog supplies them; `approval` only on
destructive actions. An unknown name gets the closest known one. Warnings: destructive actions
without approval in a runbook that matches SEV1 incidents. Never contacts Prefect or any
integration.

One mistake, one error: after the schema has reported a step's bad key, the later checks read
the step as its author meant it (`_lenient_step`), and leave out errors that only name a step
that could not be read at all.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from firelane.errors import FirelaneError, Problem
from firelane.models import Severity
from firelane.registry import ActionSpec, get_action
from firelane.runbook import Runbook, Step
from firelane.shell_policy import shell_problems
from firelane.templating import (
    CONDITION_FUNCTIONS,
    ROOTS,
    has_template,
    referenced_names,
    referenced_roots,
    referenced_step_members,
)
from firelane.yamlsrc import (
    Located,
    PathKey,
    YamlSourceError,
    load_yaml,
    schema_problems,
    unknown_key_message,
)

__all__ = ["Report", "validate_source"]


@dataclass
class Report:
    """The outcome of validating one runbook source."""

    runbook: Runbook | None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


_STEP_KEYS = sorted((f.alias or n) for n, f in Step.model_fields.items())
_MEMBERS = ("outputs", "status", "error")


def _near(name: str, names: set[str] | list[str]) -> str | None:
    """The closest name, by spelling (`tickt` → `ticket`) or by a shared word (`issue_key` →
    `key`)."""
    found = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
    if found:
        return found[0]
    words = set(name.split("_"))
    shared = [n for n in sorted(names) if n in words or name in n.split("_")]
    return shared[0] if shared else None


def _lenient_step(item: Any) -> Step | None:
    """The step as its author meant it, for the checks after the schema: a misspelt key
    (`need:`) read as the key it is close to, a key with a bad value dropped. The schema
    already reported those once; reading the step anyway keeps one typo from turning into an
    error at every step that needs or reads it."""
    if not isinstance(item, dict):
        return None
    data = dict(item)
    for _ in range(len(item) + 1):
        try:
            return Step.model_validate(data)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]} - {"id", "uses"}
            if not bad:
                return None
            for key in bad & set(data):
                value = data.pop(key)
                near = _near(key, _STEP_KEYS)
                if key not in _STEP_KEYS and near is not None and near not in data:
                    data[near] = value
    return None


def _valid_steps(data: dict[str, Any], key: str) -> tuple[list[tuple[int, Step]], set[str]]:
    """The steps that could be read, and the ids of those that could not (errors that merely
    name a broken step are left out: the step's own error says what is wrong)."""
    raw = data.get(key)
    if not isinstance(raw, list):
        return [], set()
    out, broken = [], set()
    for index, item in enumerate(raw):
        step = _lenient_step(item)
        if step is not None:
            out.append((index, step))
        elif isinstance(item, dict) and isinstance(item.get("id"), str):
            broken.add(item["id"])
    return out, broken


@dataclass
class _Checker:
    located: Located
    inputs: set[str]
    specs: dict[str, ActionSpec | None] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    errors: list[Problem] = field(default_factory=list)

    def error(self, path: PathKey, message: str) -> None:
        self.errors.append(self.located.problem(path, message))

    def template(self, text: str, path: PathKey, expression: bool, allowed: set[str],
                 step_id: str) -> None:
        try:
            roots = referenced_roots(text, expression)
            steps = referenced_names(text, "steps", expression)
            inputs = referenced_names(text, "inputs", expression)
        except FirelaneError as exc:
            self.error(path, str(exc))
            return
        for root in sorted(roots - ROOTS - (set(CONDITION_FUNCTIONS) if expression else set())):
            if root in CONDITION_FUNCTIONS:
                self.error(path, f"{root}() is for if: expressions only")
            elif root in ("secrets", "secret", "env", "environ"):
                self.error(path, f"{root!r} is not available to templates: secrets live in "
                           "Prefect blocks named under credentials:, never in runbooks")
            else:
                self.error(path, f"unknown name {root!r}; templates may read only "
                           f"{', '.join(sorted(ROOTS))}")
        for ref in sorted(steps - allowed - self.broken):
            if ref in self.specs:
                self.error(path, f"reads steps.{ref} but {step_id!r} does not need {ref!r}; "
                           "add it to needs")
            else:
                self.error(path, f"reads steps.{ref}, but there is no step {ref!r}"
                           + self.suggest(ref, step_id))
        self.members(text, path, expression, steps & allowed)
        for name in sorted(inputs - self.inputs):
            declared = ", ".join(sorted(self.inputs)) or "none"
            self.error(path, f"reads inputs.{name}, which is not declared under inputs: "
                       f"(declared: {declared})")

    def suggest(self, ref: str, step_id: str) -> str:
        near = _near(ref, set(self.specs) - {step_id})
        return f"; did you mean {near!r}?" if near else \
            f" (steps: {', '.join(sorted(self.specs)) or 'none'})"

    def members(self, text: str, path: PathKey, expression: bool, known: set[str]) -> None:
        """`steps.X.outputs.Y` names an output X's action declares; `steps.X.Z` is one of
        outputs, status, error."""
        for ref, member, output in sorted(referenced_step_members(text, expression)):
            spec = self.specs.get(ref)
            if ref not in known:
                continue
            if member not in _MEMBERS:
                near = _near(member, list(_MEMBERS))
                self.error(path, f"reads steps.{ref}.{member}; a step has "
                           f"{', '.join(_MEMBERS)}"
                           + (f"; did you mean {near!r}?" if near else ""))
            elif output and spec is not None \
                    and spec.outputs.model_config.get("extra") != "allow":
                names = {(f.alias or n) for n, f in spec.outputs.model_fields.items()}
                if output not in names:
                    near = _near(output, names)
                    self.error(path, f"reads steps.{ref}.outputs.{output}, but {spec.name} "
                               f"has no output {output!r}"
                               + (f"; did you mean {near!r}?" if near else
                                  f" (outputs: {', '.join(sorted(names)) or 'none'})"))

    def templates(self, step: Step, at: PathKey, allowed: set[str]) -> None:
        def walk(value: Any, path: PathKey) -> None:
            if isinstance(value, str):
                self.template(value, path, False, allowed, step.id)
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, (*path, i))
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(v, (*path, k))

        walk(step.with_, (*at, "with"))
        if step.if_ is not None:
            self.template(step.if_, (*at, "if"), True, allowed, step.id)

    def literal_inputs(self, step: Step, spec: ActionSpec, at: PathKey) -> None:
        fields = {(f.alias or n) for n, f in spec.inputs.model_fields.items()}
        forbids = spec.inputs.model_config.get("extra") == "forbid"
        literal: dict[str, Any] = {}
        for key, value in step.with_.items():
            if key not in fields and forbids:
                self.error((*at, "with", key), unknown_key_message(key, sorted(fields))
                           + f" ({step.uses} takes: {', '.join(sorted(fields)) or 'nothing'})")
            elif not _templated(value):
                literal[key] = value
        try:
            spec.inputs.model_validate(literal)
        except ValidationError as exc:
            supplied = spec.catalog_fields()
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
                key = str(loc[0]) if loc else ""
                if err["type"] == "missing":
                    if key in step.with_:
                        continue
                    if key in supplied:
                        continue
                    self.error((*at, "with"), f"{step.uses} needs input {key!r}")
                elif err["type"] != "extra_forbidden" and key in literal:
                    self.error((*at, "with", *loc), err["msg"])

    def step_list(self, key: str, steps: list[tuple[int, Step]], before: set[str],
                  main_ids: set[str]) -> None:
        seen: set[str] = set()
        ids_here = {s.id for _, s in steps}
        closure: dict[str, set[str]] = {}
        for index, step in steps:
            at: PathKey = (key, index)
            if step.id in seen or step.id in before:
                self.error((*at, "id"), f"duplicate step id {step.id!r}")
            spec = self.specs.get(step.id)
            if spec is None:
                try:
                    get_action(step.uses)
                except FirelaneError as exc:
                    self.error((*at, "uses"), str(exc))
            reach: set[str] = set()
            for n, need in enumerate(step.needs):
                if need == step.id:
                    self.error((*at, "needs", n), "a step cannot need itself")
                elif need in seen:
                    reach |= {need} | closure.get(need, set())
                elif need in ids_here:
                    self.error((*at, "needs", n), f"{need!r} comes later; steps may only need "
                               "earlier steps (this also rules out cycles)")
                elif key == "on_failure" and need in main_ids:
                    self.error((*at, "needs", n), f"{need!r} is a main step; on_failure steps "
                               "run after the main steps and may read them without needs")
                elif need not in self.broken:
                    near = _near(need, (ids_here | before) - {step.id}
                                 if key == "steps" else ids_here - {step.id})
                    self.error((*at, "needs", n), f"no step {need!r} in {key}"
                               + (f"; did you mean {near!r}?" if near else ""))
            seen.add(step.id)
            closure[step.id] = reach
            self.templates(step, at, reach | main_ids)
            if spec is not None:
                self.literal_inputs(step, spec, at)
                if step.approval is not None and spec.read_only:
                    self.error((*at, "approval"), f"{step.uses} changes nothing; approval is "
                               "only for actions with an effect")


def _spec(uses: str) -> ActionSpec | None:
    try:
        return get_action(uses)
    except FirelaneError:
        return None


def _templated(value: Any) -> bool:
    if isinstance(value, str):
        return has_template(value)
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    return False


def _warnings(located: Located, runbook: Runbook) -> list[Problem]:
    match = runbook.match
    if match is None or (match.severity and Severity.SEV1 not in match.severity):
        return []
    out = []
    for key, steps in (("steps", runbook.steps), ("on_failure", runbook.on_failure)):
        for index, step in enumerate(steps):
            if step.approval is None and get_action(step.uses).destructive:
                out.append(located.problem(
                    (key, index, "uses"), f"warning: {step.uses} is destructive and runs "
                    "without approval in a runbook that matches SEV1 incidents; add "
                    "approval: {timeout_seconds: 900}"))
    return out


def validate_source(text: str, path: str = "<string>") -> Report:
    """Validate a runbook's text; the report holds every error and warning found."""
    try:
        located = load_yaml(text, path)
    except YamlSourceError as exc:
        return Report(None, [exc.problem])
    data = located.data
    if not isinstance(data, dict):
        return Report(None, [Problem(path, 1, "", "a runbook is a YAML mapping with version, "
                                     "name and steps")])
    errors: list[Problem] = []
    runbook: Runbook | None = None
    try:
        runbook = Runbook.model_validate(data)
    except ValidationError as exc:
        errors += schema_problems(located, Runbook, exc.errors())
    raw_inputs = data.get("inputs")
    checker = _Checker(located, set(raw_inputs) if isinstance(raw_inputs, dict) else set())
    main, broken = _valid_steps(data, "steps")
    after, broken_after = _valid_steps(data, "on_failure")
    checker.broken = broken | broken_after
    checker.specs = {s.id: _spec(s.uses) for _, s in [*main, *after]}
    main_ids = {s.id for _, s in main}
    checker.step_list("steps", main, set(), set())
    checker.step_list("on_failure", after, main_ids, main_ids)
    errors += checker.errors
    if runbook is not None:
        errors += shell_problems(located, runbook)
    errors.sort(key=lambda p: (p.line or 0, p.path))
    if errors or runbook is None:
        return Report(None, errors)
    return Report(runbook, [], _warnings(located, runbook))
