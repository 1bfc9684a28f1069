"""`firelane run --plan`: the rendered plan as a tree, without running or contacting anything."""

from __future__ import annotations

from typing import Any

from firelane.models import Incident
from firelane.planner import Planner
from firelane.registry import get_action
from firelane.runbook import LoadedRunbook, Step
from firelane.templating import referenced_steps, render_value

__all__ = ["build_plan", "format_plan"]


def _render(value: Any, context: dict[str, Any], where: str) -> Any:
    if isinstance(value, str):
        if referenced_steps(value):
            return f"<at run time: {value.strip()}>"
        return render_value(value, context, where)
    if isinstance(value, list):
        return [_render(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _render(v, context, f"{where}.{k}") for k, v in value.items()}
    return value


def _waves(steps: list[Step]) -> list[list[str]]:
    from firelane.models import StepStatus

    planner = Planner(steps)
    waves: list[list[str]] = []
    while not planner.done:
        ready = planner.advance().ready
        if not ready:
            break
        waves.append(ready)
        for step_id in ready:
            planner.record(step_id, StepStatus.SUCCEEDED)
    return waves


def _step_entry(step: Step, context: dict[str, Any]) -> dict[str, Any]:
    spec = get_action(step.uses)
    return {
        "id": step.id, "uses": step.uses, "destructive": spec.destructive,
        "read_only": spec.read_only,
        "needs": step.needs, "if": step.if_,
        "approval": step.approval.model_dump() if step.approval else None,
        "retries": step.retries, "timeout_seconds": step.timeout_seconds,
        "on_error": step.on_error,
        "with": _render(step.with_, context, f"steps.{step.id}.with"),
    }


def build_plan(loaded: LoadedRunbook, incident: Incident, inputs: dict[str, Any],
               dry_run: bool = False) -> dict[str, Any]:
    """The plan as data: waves of steps that run together, each with rendered inputs."""
    rb = loaded.runbook
    context = {"incident": incident.model_dump(mode="json"), "inputs": inputs, "steps": {},
               "run": {"execution_id": "<plan>", "runbook": rb.name, "dry_run": dry_run,
                       "sandbox": False}}
    by_id = {s.id: s for s in rb.all_steps()}

    def waves(steps: list[Step]) -> list[list[dict[str, Any]]]:
        return [[_step_entry(by_id[i], context) for i in wave] for wave in _waves(steps)]

    return {"runbook": rb.name, "path": loaded.path, "hash": loaded.content_hash,
            "incident": {"title": incident.title, "severity": incident.severity.value,
                         "service": incident.service},
            "inputs": inputs, "dry_run": dry_run,
            "waves": waves(rb.steps), "on_failure": waves(rb.on_failure)}


def _format_waves(waves: list[list[dict[str, Any]]], lines: list[str], indent: str = "") -> None:
    for n, wave in enumerate(waves, 1):
        together = " (run in parallel)" if len(wave) > 1 else ""
        lines.append(f"{indent}├─ wave {n}{together}")
        for entry in wave:
            flags = []
            if entry["destructive"]:
                flags.append("DESTRUCTIVE")
            elif entry["read_only"]:
                flags.append("READ-ONLY")
            if entry["approval"]:
                flags.append(f"waits for approval ({entry['approval']['timeout_seconds']:g} s)")
            if entry["if"]:
                flags.append(f"if {entry['if']}")
            if entry["needs"]:
                flags.append(f"needs {', '.join(entry['needs'])}")
            extra = f"  [{'; '.join(flags)}]" if flags else ""
            lines.append(f"{indent}│  ├─ {entry['id']}: {entry['uses']}{extra}")
            for key, value in entry["with"].items():
                lines.append(f"{indent}│  │    {key}: {value!r}")


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as a readable tree."""
    inc = plan["incident"]
    lines = [f"{plan['runbook']}  ({plan['path']}, sha256 {plan['hash'][:12]})",
             f"incident: [{inc['severity']}] {inc['title']} · service {inc['service']}"
             + ("  · DRY RUN" if plan["dry_run"] else "")]
    _format_waves(plan["waves"], lines)
    if plan["on_failure"]:
        lines.append("└─ on_failure (only if a step fails)")
        _format_waves(plan["on_failure"], lines, indent="   ")
    lines.append("(plan only: nothing ran, nothing was contacted)")
    return "\n".join(lines)
