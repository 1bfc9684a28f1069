"""Runbook inputs: fill defaults, coerce CLI strings, check types, and start an execution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from firelane.errors import RunbookError
from firelane.models import Execution, ExecutionStatus, Incident
from firelane.runbook import LoadedRunbook

if TYPE_CHECKING:
    from firelane.registry import ActionContext

__all__ = ["new_execution", "parse_cli_inputs", "resolve_inputs"]

def parse_cli_inputs(pairs: list[str]) -> dict[str, Any]:
    """`["count=3", "force=true", "msg=hi there"]` → typed values (YAML scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise RunbookError(f"--input {pair!r}: expected key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out[key.strip()] = raw if value is None else value
    return out


def resolve_inputs(loaded: LoadedRunbook, given: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in, strings from the CLI coerced, every problem reported at once."""
    rb = loaded.runbook
    problems: list[str] = []
    unknown = sorted(set(given) - set(rb.inputs))
    if unknown:
        known = ", ".join(sorted(rb.inputs)) or "none"
        problems.append(f"unknown input(s) {', '.join(unknown)} (this runbook takes: {known})")
    out: dict[str, Any] = {}
    for name, spec in rb.inputs.items():
        if name in given:
            value = given[name]
            if spec.type == "string" and not isinstance(value, str) and not isinstance(
                    value, list | dict):
                value = str(value)
            if spec.type == "number" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
        elif spec.default is not None:
            value = spec.default
        elif spec.required:
            problems.append(f"input {name!r} is required ({spec.type})")
            continue
        else:
            value = None
        if value is not None and not spec.fits(value):
            problems.append(f"input {name!r} must be {spec.type}, got {value!r}")
        elif value is not None and spec.enum is not None and value not in spec.enum:
            problems.append(f"input {name!r} must be one of {spec.enum}, got {value!r}")
        out[name] = value
    if problems:
        raise RunbookError(f"{loaded.path}: bad inputs for {rb.name}: " + "; ".join(problems))
    return out


def new_execution(loaded: LoadedRunbook, incident: Incident, inputs: dict[str, Any],
                  dry_run: bool = False, sandbox: bool = False,
                  for_responder: bool = False) -> Execution:
    """An execution of `loaded` for `incident` with a snapshot of the runbook source.

    `for_responder` leaves it pending for a `firelane respond` process to claim; otherwise the
    caller runs it at once and it starts as running. A runbook input named `dry_run` that is
    true makes the whole execution a dry run, like `--dry-run`.
    """
    resolved = resolve_inputs(loaded, inputs)
    return Execution(incident_id=incident.id, runbook_name=loaded.runbook.name,
                     runbook_hash=loaded.content_hash, runbook_source=loaded.source,
                     runbook_path=loaded.path, inputs=resolved,
                     dry_run=dry_run or resolved.get("dry_run") is True, sandbox=sandbox,
                     status=ExecutionStatus.PENDING if for_responder
                     else ExecutionStatus.RUNNING)


def execution_context(execution: Execution, incident: Incident, step_id: str,
                      idempotency_key: str) -> ActionContext:
    """An action context outside a step, with the credentials and sandbox flag of the runbook
    snapshot `execution` ran (reports, reminders, approval callbacks use the incident's own
    vendors that way)."""
    from firelane.loader import parse_snapshot
    from firelane.registry import ActionContext

    loaded = parse_snapshot(execution.runbook_source, execution.runbook_path or "<snapshot>")
    return ActionContext(incident=incident, execution_id=execution.id, step_id=step_id,
                         idempotency_key=idempotency_key, sandbox=execution.sandbox,
                         credentials=dict(loaded.runbook.credentials))
