"""What a step does in a dry run: a dry run makes no outward side effect at all.

- A read-only action (diagnostics, status reads) runs for real: its outputs are real evidence
  (unless its inputs hold a placeholder: then, like coordination, it only records them).
- A destructive action is called with `dry_run` set and reports what it would do (every
  remediation action supports it).
- Any other action (coordination: tickets, pages, channels, messages, bridges) is not called:
  the step records what it would have sent and placeholder outputs built from the action's
  `Outputs` model, so the steps that read them still render. With `--sandbox` as well, it runs
  for real against the sandbox's stand-ins, so the coordination itself is exercised.

Every output of a step that did not act carries `dry_run: true` and `would_send` (its rendered
inputs).
"""

from __future__ import annotations

import enum
import types
from datetime import UTC, datetime
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from firelane.models import Execution
from firelane.registry import ActionSpec

__all__ = ["DRY_RUN_MARK", "DryMode", "dry_mode", "mark_dry_run", "placeholder_outputs"]

DRY_RUN_MARK = "dry-run"


class DryMode(enum.Enum):
    """How a step runs in this execution."""

    REAL = "real"
    ACTION_DRY_RUN = "action_dry_run"
    SIMULATED = "simulated"


def dry_mode(execution: Execution, spec: ActionSpec, would_send: dict[str, Any]) -> DryMode:
    """The mode of a step of `spec` in `execution` (see the module docstring). A read-only
    step whose inputs hold a placeholder (it reads a step that did not act) is not run: it
    would look for an object that does not exist."""
    if not execution.dry_run:
        return DryMode.REAL
    if spec.read_only:
        return DryMode.SIMULATED if _holds_placeholder(would_send) else DryMode.REAL
    if spec.destructive:
        return DryMode.ACTION_DRY_RUN
    return DryMode.REAL if execution.sandbox else DryMode.SIMULATED


def _holds_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(f"{DRY_RUN_MARK}-") or f" {DRY_RUN_MARK}-" in value
    if isinstance(value, list):
        return any(_holds_placeholder(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_placeholder(v) for v in value.values())
    return False


def _placeholder(annotation: Any, name: str) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _placeholder(args[0], name) if len(args) == 1 else None
    if origin is Literal:
        return get_args(annotation)[0]
    if origin in (list, tuple, set, frozenset):
        return []
    if origin is dict:
        return {}
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return placeholder_outputs(annotation)
        if issubclass(annotation, bool):
            return False
        if issubclass(annotation, int | float):
            return 0
        if issubclass(annotation, enum.Enum):
            return next(iter(annotation)).value
        if issubclass(annotation, datetime):
            return datetime.now(UTC).isoformat()
        if issubclass(annotation, str):
            return f"{DRY_RUN_MARK}-{name}"
    return None


def placeholder_outputs(model: type[BaseModel]) -> dict[str, Any]:
    """Plausible outputs of `model` for a step that did not act: each field's default, or a
    value of its type (strings read `dry-run-<field>`, numbers 0, lists empty)."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if not info.is_required():
            default = info.get_default(call_default_factory=True)
            out[key] = default.model_dump(mode="json") if isinstance(default, BaseModel) \
                else default
        else:
            out[key] = _placeholder(info.annotation, key)
    return out


def mark_dry_run(outputs: dict[str, Any], would_send: dict[str, Any]) -> dict[str, Any]:
    """`outputs` with the marks of a step that did not act: `dry_run` and `would_send`."""
    return {**outputs, "dry_run": True, "would_send": would_send}
