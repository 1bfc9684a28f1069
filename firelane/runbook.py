"""The runbook language: models, and a loader that rejects what the executor cannot run.

Every problem names the file, the line and the path (`runbooks/x.yaml:14 steps[3].needs: ...`),
and all problems are reported at once. The loaded runbook keeps its source text and content hash
so an execution can record exactly what it ran.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from firelane.errors import FirelaneError, Problem, RunbookError, RunbookValidationError
from firelane.models import Severity
from firelane.registry import get_action
from firelane.templating import ROOTS, compile_condition, referenced_roots, referenced_steps
from firelane.yamlsrc import Located, PathKey, YamlSourceError, load_yaml, pydantic_problems

__all__ = [
    "ApprovalSpec",
    "InputSpec",
    "LoadedRunbook",
    "Match",
    "Runbook",
    "Step",
    "find_runbook",
    "load_runbook",
    "parse_runbook",
]

STEP_ID = r"^[a-z][a-z0-9_]*$"
RUNBOOK_NAME = r"^[a-z][a-z0-9-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputSpec(_Strict):
    """A typed runbook input; inputs become the Prefect UI form."""

    type: Literal["string", "integer", "number", "boolean", "array", "object"] = "string"
    default: Any = None
    description: str = ""
    enum: list[Any] | None = None
    required: bool = False


class ApprovalSpec(_Strict):
    """A person must approve before the step runs; no decision in time means rejected."""

    approvers: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=900, gt=0, le=7 * 24 * 3600)
    message: str = ""


class Match(_Strict):
    """Which incidents start this runbook automatically."""

    labels: dict[str, str] = Field(default_factory=dict)
    severity: list[Severity] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)


class Step(_Strict):
    """One step: an action with inputs, its dependencies and how failure is handled."""

    id: str
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    needs: list[str] = Field(default_factory=list)
    if_: str | None = Field(default=None, alias="if")
    retries: int = Field(default=0, ge=0, le=20)
    retry_delay_seconds: float = Field(default=1.0, ge=0, le=3600)
    timeout_seconds: float | None = Field(default=None, gt=0, le=24 * 3600)
    on_error: Literal["fail", "continue"] = "fail"
    approval: ApprovalSpec | None = None
    on_locked: Literal["wait", "skip", "fail"] = "wait"
    description: str = ""

    @field_validator("id")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not re.match(STEP_ID, value):
            suggestion = re.sub(r"[^a-z0-9_]", "_", value.lower()).lstrip("_0123456789")
            raise ValueError(f"step ids are snake_case (Jinja reads '-' as minus); "
                             f"try {suggestion or 'step_1'!r}")
        return value


class Runbook(_Strict):
    """A runbook as written (DESIGN.md §2)."""

    version: Literal[1]
    name: str = Field(pattern=RUNBOOK_NAME)
    description: str = ""
    match: Match | None = None
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    credentials: dict[str, str] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    on_failure: list[Step] = Field(default_factory=list)

    def all_steps(self) -> list[Step]:
        """Main steps then `on_failure` steps."""
        return [*self.steps, *self.on_failure]


@dataclass(frozen=True)
class LoadedRunbook:
    """A validated runbook with its source, content hash and where it came from."""

    runbook: Runbook
    source: str
    path: str

    @property
    def content_hash(self) -> str:
        """sha256 of the source text: what an execution records it ran."""
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()


def _check_step_list(located: Located, key: str, steps: list[Step], known: set[str],
                     main_ids: set[str], problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    closure: dict[str, set[str]] = {}
    for index, step in enumerate(steps):
        at: PathKey = (key, index)
        if step.id in seen or step.id in known:
            problems.append(located.problem((*at, "id"), f"duplicate step id {step.id!r}"))
        seen[step.id] = index
        try:
            spec = get_action(step.uses)
        except FirelaneError as exc:
            problems.append(located.problem((*at, "uses"), str(exc)))
            spec = None
        if step.approval is not None and spec is not None and not spec.destructive:
            problems.append(located.problem(
                (*at, "approval"), f"{step.uses} changes nothing; approval is only for "
                "destructive actions"))
        reach: set[str] = set()
        for n, need in enumerate(step.needs):
            if need == step.id:
                problems.append(located.problem((*at, "needs", n), "a step cannot need itself"))
            elif need not in seen:
                later = " (it comes later; steps may only need earlier steps)" if any(
                    s.id == need for s in steps) else ""
                problems.append(located.problem((*at, "needs", n),
                                                f"no earlier step {need!r}{later}"))
            else:
                reach |= {need} | closure.get(need, set())
        closure[step.id] = reach
        allowed = reach | main_ids
        _check_templates(located, at, step, allowed, problems)


def _check_templates(located: Located, at: PathKey, step: Step, allowed: set[str],
                     problems: list[Problem]) -> None:
    def check(text: str, path: PathKey, expression: bool) -> None:
        try:
            if expression:
                compile_condition(text)
            roots = referenced_roots(text, expression)
            refs = referenced_steps(text, expression)
        except FirelaneError as exc:
            problems.append(located.problem(path, str(exc)))
            return
        for root in sorted(roots - ROOTS):
            problems.append(located.problem(path, f"unknown name {root!r}; templates may read "
                                            f"only {', '.join(sorted(ROOTS))}"))
        for ref in sorted(refs - allowed):
            problems.append(located.problem(
                path, f"reads steps.{ref} but {step.id!r} does not need {ref!r}; "
                f"add it to needs"))

    def walk(value: Any, path: PathKey) -> None:
        if isinstance(value, str):
            check(value, path, expression=False)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))

    walk(step.with_, (*at, "with"))
    if step.if_ is not None:
        check(step.if_, (*at, "if"), expression=True)


def parse_runbook(text: str, path: str = "<string>") -> LoadedRunbook:
    """Parse and check a runbook; raise `RunbookValidationError` listing every problem."""
    try:
        located = load_yaml(text, path)
    except YamlSourceError as exc:
        raise RunbookValidationError([exc.problem]) from exc
    if not isinstance(located.data, dict):
        raise RunbookValidationError([Problem(path, 1, "", "a runbook is a YAML mapping "
                                              "with version, name and steps")])
    try:
        runbook = Runbook.model_validate(located.data)
    except ValidationError as exc:
        raise RunbookValidationError(
            pydantic_problems(located, exc.errors())) from exc  # type: ignore[arg-type]
    problems: list[Problem] = []
    main_ids = {s.id for s in runbook.steps}
    _check_step_list(located, "steps", runbook.steps, set(), set(), problems)
    _check_step_list(located, "on_failure", runbook.on_failure, main_ids, main_ids, problems)
    if problems:
        raise RunbookValidationError(problems)
    return LoadedRunbook(runbook=runbook, source=text, path=path)


def load_runbook(path: Path) -> LoadedRunbook:
    """Read and parse the runbook file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunbookError(f"{path}: cannot read runbook: {exc.strerror}") from exc
    return parse_runbook(text, str(path))


def find_runbook(name_or_path: str, runbooks_dir: Path) -> Path:
    """A runbook file given its path, or its name inside `runbooks_dir`."""
    direct = Path(name_or_path)
    if direct.suffix in (".yaml", ".yml") or direct.exists():
        if not direct.exists():
            raise RunbookError(f"{direct}: no such runbook file")
        return direct
    for suffix in (".yaml", ".yml"):
        candidate = runbooks_dir / f"{name_or_path}{suffix}"
        if candidate.exists():
            return candidate
    for candidate in sorted(runbooks_dir.glob("*.y*ml")):
        try:
            if parse_runbook(candidate.read_text(encoding="utf-8"),
                             str(candidate)).runbook.name == name_or_path:
                return candidate
        except FirelaneError:
            continue
    raise RunbookError(f"no runbook named {name_or_path!r} in {runbooks_dir}/ "
                       "(give a path, or set FIRELANE_RUNBOOKS_DIR)")
