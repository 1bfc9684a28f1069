"""The last line `firelane run` and `firelane resume` print, and their exit status: what the
execution came to (`firelane.outcome`) and what to do next.

    INC-3 web-5xx-rollback: remediation rejected by ann ("not now"); rollback
    (remediation.rollback) was not run, nor verify after it. Remediate by hand, or re-run when
    ready: firelane run web-5xx-rollback --incident incident.json
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from firelane.outcome import Outcome, OutcomeKind
from firelane.store import Store

__all__ = ["final_line", "outcome_of", "rerun_of"]


def outcome_of(result: dict[str, Any]) -> Outcome:
    """The outcome in a `run-runbook` result (one without it, from an older run: its status)."""
    if result.get("outcome"):
        return Outcome.from_details(result["outcome"])
    if result.get("status") == "succeeded":
        return Outcome(OutcomeKind.SUCCEEDED)
    return Outcome(OutcomeKind.FAILED, str(result.get("error") or "see the timeline"))


def rerun_of(args: argparse.Namespace | None, runbook: str) -> str:
    """The `firelane run` command that runs the runbook again (`args`: the command line that
    ran it, when there is one)."""
    if args is None:
        return f"firelane run {shlex.quote(runbook)} --incident FILE"
    words = ["firelane", "run", args.runbook, "--incident", args.incident]
    for given in args.input or []:
        words += ["--input", given]
    words += ["--sandbox"] * bool(args.sandbox) + ["--dry-run"] * bool(args.dry_run)
    return shlex.join(words)


def final_line(store: Store, execution_id: str, outcome: Outcome, rerun: str) -> str:
    """`INC-<n> <runbook>: <what happened>. <what to do>`."""
    execution = store.get_execution(execution_id)
    incident = store.get_incident(execution.incident_id)
    line = f"INC-{incident.number} {execution.runbook_name}: {outcome.describe()}"
    advice = outcome.advice(rerun)
    return f"{line}. {advice}" if advice else f"{line} (execution {execution_id})"
