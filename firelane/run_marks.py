"""Marks for incidents whose executions changed nothing real: `dry run` (no outward side
effect) and `sandbox` (the vendors were Firelane's stand-ins). Every listing and report shows
them, so nobody mistakes a rehearsal for an incident that happened.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DRY_RUN", "SANDBOX", "describe_marks", "marks_of"]

DRY_RUN = "dry run"
SANDBOX = "sandbox"


def marks_of(runs: Iterable[tuple[bool, bool]]) -> tuple[str, ...]:
    """The marks of an incident from its executions' (dry_run, sandbox) flags: each mark that
    every execution carries (an incident with no execution, or one real run, has none)."""
    flags = list(runs)
    if not flags:
        return ()
    marks: list[str] = []
    if all(dry for dry, _ in flags):
        marks.append(DRY_RUN)
    if all(sandbox for _, sandbox in flags):
        marks.append(SANDBOX)
    return tuple(marks)


def describe_marks(marks: Iterable[str]) -> str:
    """`[DRY RUN · SANDBOX]`, or an empty string for a real incident."""
    shown = [m.upper() for m in marks]
    return f"[{' · '.join(shown)}]" if shown else ""
