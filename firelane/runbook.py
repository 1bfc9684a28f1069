"""The runbook language's models (DESIGN.md §2). `firelane.loader` reads and checks files.

The models are the single source for validation and the generated JSON Schema; the loaded
runbook keeps its source text and content hash so an execution records exactly what it ran.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from firelane.errors import Problem
from firelane.models import Severity

__all__ = [
    "ApprovalSpec",
    "Guardrails",
    "InputSpec",
    "KubernetesPolicy",
    "LoadedRunbook",
    "Match",
    "Runbook",
    "ShellPolicy",
    "Step",
]

STEP_ID = r"^[a-z][a-z0-9_]*$"
COMMAND_RUNNERS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "env", "sudo", "su",
                             "doas", "xargs", "nohup", "timeout", "nice", "ssh", "python",
                             "python3", "perl", "ruby", "node", "busybox", "find"})
RUNBOOK_NAME = r"^[a-z][a-z0-9-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


_INPUT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


class InputSpec(_Strict):
    """A typed runbook input; inputs become the Prefect UI form."""

    type: Literal["string", "integer", "number", "boolean", "array", "object"] = "string"
    default: Any = None
    description: str = ""
    enum: list[Any] | None = None
    required: bool = False

    def fits(self, value: Any) -> bool:
        """`value` has this input's type (a boolean is not a number here, as in JSON)."""
        if self.type in ("integer", "number") and isinstance(value, bool):
            return False
        return isinstance(value, _INPUT_TYPES[self.type])

    @model_validator(mode="after")
    def _default_fits(self) -> InputSpec:
        """A default that does not fit would only fail when a run starts without the input."""
        if self.default is None:
            return self
        if not self.fits(self.default):
            hint = " (quote it in YAML)" if self.type == "string" else ""
            raise ValueError(f"default {self.default!r} is not of type {self.type}{hint}")
        if self.enum is not None and self.default not in self.enum:
            raise ValueError(f"default {self.default!r} is not one of enum {self.enum}")
        return self


class ApprovalSpec(_Strict):
    """A person must approve before the step runs; no decision in time means rejected."""

    approvers: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=900, gt=0, le=7 * 24 * 3600)
    message: str = ""


class ShellPolicy(_Strict):
    """What `shell.run` may start in this runbook: argv[0] must equal one of `allow` exactly,
    and only the variables named in `env` reach the command's environment. `read_only` lists
    the diagnostics `shell.check` may start (`df`, `du`, `curl`): commands the author vouches
    change nothing, so they run under dry runs, the kill switch and the rate limit."""

    allow: list[str] = Field(default_factory=list)
    read_only: list[str] = Field(default_factory=list, description=(
        "Executables shell.check may run (argv[0] exactly): diagnostics that change nothing"))
    env: list[str] = Field(default_factory=list)

    @field_validator("read_only")
    @classmethod
    def _diagnostics(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name.strip() or name != name.strip():
                raise ValueError(f"{name!r} is not an executable name (argv[0], exactly as "
                                 "shell.check steps write it)")
            if name.rsplit("/", 1)[-1] in COMMAND_RUNNERS:
                raise ValueError(f"{name!r} runs other commands, so it cannot be read-only; "
                                 "list the diagnostic itself (df, du, curl)")
        return value


_K8S_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_K8S_KINDS = ("deployment", "statefulset", "daemonset")


class KubernetesPolicy(_Strict):
    """What the `kubernetes.*` actions may touch in this runbook: a namespace must be listed
    in `namespaces` exactly, and a workload in `workloads` as `name`, `kind/name`
    (`deployment/web`, `statefulset/db`, `daemonset/agent`) or `*` (any workload in the
    listed namespaces). Nothing listed: nothing allowed."""

    namespaces: list[str] = Field(default_factory=list, description=(
        "Namespaces the kubernetes.* actions may read and change"))
    workloads: list[str] = Field(default_factory=list, description=(
        "Workloads they may touch: name, kind/name (deployment/web) or *"))

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for name in value:
            if len(name) > 63 or not re.fullmatch(_K8S_NAME, name):
                raise ValueError(f"{name!r} is not a namespace name (lowercase letters, digits "
                                 "and '-', at most 63)")
        return value

    @field_validator("workloads")
    @classmethod
    def _workloads(cls, value: list[str]) -> list[str]:
        for entry in value:
            kind, _, name = entry.rpartition("/")
            if kind and kind not in _K8S_KINDS:
                raise ValueError(f"{entry!r}: kind {kind!r} is not one of "
                                 f"{', '.join(_K8S_KINDS)}")
            if name != "*" and not re.fullmatch(rf"{_K8S_NAME}(\.{_K8S_NAME})*", name):
                raise ValueError(f"{entry!r} is not a workload name (name, kind/name or *)")
        return value

    def allows(self, namespace: str, kind: str, name: str) -> bool:
        """Whether the workload `kind/name` in `namespace` is listed."""
        if namespace not in self.namespaces:
            return False
        wanted = {"*", name, f"{kind.lower()}/*", f"{kind.lower()}/{name}"}
        return any(entry in wanted for entry in self.workloads)


class Guardrails(_Strict):
    """Limits on this runbook's destructive steps (the engine enforces them)."""

    max_runs_per_hour: int = Field(default=3, ge=1, le=1000,
                                   description="remediations per service per hour")


class Match(_Strict):
    """Which incidents start this runbook automatically."""

    labels: dict[str, str] = Field(default_factory=dict)
    severity: list[Severity] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)


class Step(_Strict):
    """One step: an action with inputs, its dependencies and how failure is handled."""

    id: str = Field(json_schema_extra={"pattern": STEP_ID})
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    needs: list[str] = Field(default_factory=list, description=(
        "Earlier steps this one waits for; it is skipped when one of them failed or was "
        "skipped, unless its if: calls always()"))
    if_: str | None = Field(default=None, alias="if", description=(
        "An expression over incident, inputs, steps, run; false skips the step (and the "
        "steps that need it). always() is true and lets the step run whatever its needs did: "
        "if: always() and steps.guard.status != 'failed'"))
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
    shell: ShellPolicy = Field(default_factory=ShellPolicy)
    kubernetes: KubernetesPolicy = Field(default_factory=KubernetesPolicy)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    steps: list[Step] = Field(min_length=1)
    on_failure: list[Step] = Field(default_factory=list)
    jira_statuses: dict[str, str] = Field(
        default_factory=dict, description="Incident status (acknowledged, mitigated, resolved, "
        "closed, reopened) → the Jira status the incident's ticket moves to (over the service "
        "catalog's and the defaults)")

    def all_steps(self) -> list[Step]:
        """Main steps then `on_failure` steps."""
        return [*self.steps, *self.on_failure]


@dataclass(frozen=True)
class LoadedRunbook:
    """A validated runbook with its source, content hash and where it came from."""

    runbook: Runbook
    source: str
    path: str
    warnings: tuple[Problem, ...] = ()

    @property
    def content_hash(self) -> str:
        """sha256 of the source text: what an execution records it ran."""
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()
