"""What one execution came to, decided once and told the same way everywhere.

`decide_outcome()` reads the runbook's main steps, their ledger records and the execution's
timeline events (an approval's decision, a guardrail's stop) and returns an `Outcome`:

- `succeeded`: every main step succeeded, failed with `on_error: continue` (named in the
  outcome's line, with its error: a war room without its bridge says so), or was skipped by
  the runbook's own logic (a false `if:`, or a step it needs was skipped that way); a step
  that succeeded by its fallback (an `integration.fallback` event: a Jitsi room for a spent
  Zoom) is named in the line too, with why;
- `failed`: a main step failed (which one, and its error), or never finished;
- `remediation_rejected`: a step's approval was rejected, or timed out (by whom, why);
- `blocked`: a guardrail stopped a destructive step (kill switch, maintenance window, rate
  limit, service lock; until when, if known).

Failure wins over a rejection, a rejection over a block. Anything but `succeeded` leaves the
execution `failed` in the store, its Prefect flow run in a FAILED-type state named after the
outcome, and `firelane run` with a non-zero exit status (`EXIT_CODES`): the runbook did not do
what it exists for, whoever decided so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from firelane.models import ExecutionStatus, StepStatus, TimelineEvent
from firelane.runbook import Step
from firelane.store import StepRecord

__all__ = ["EXIT_CODES", "MEANINGS", "Outcome", "OutcomeKind", "SkipCause", "SkippedStep",
           "decide_outcome"]

APPROVAL_TIMEOUT_BY = "firelane"


class OutcomeKind(StrEnum):
    """The four things an execution can come to."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REMEDIATION_REJECTED = "remediation_rejected"
    BLOCKED = "blocked"


EXIT_CODES: dict[OutcomeKind, int] = {
    OutcomeKind.SUCCEEDED: 0, OutcomeKind.FAILED: 1,
    OutcomeKind.REMEDIATION_REJECTED: 3, OutcomeKind.BLOCKED: 4}

MEANINGS: dict[OutcomeKind, str] = {
    OutcomeKind.SUCCEEDED: "every step succeeded, or was skipped by the runbook's own logic "
    "(a false `if:`)",
    OutcomeKind.FAILED: "a step failed (its `on_error` is `fail`) or never finished; the line "
    "names the step and its error",
    OutcomeKind.REMEDIATION_REJECTED: "a step's approval was rejected or timed out: the line "
    "says by whom and why, and which steps did not run",
    OutcomeKind.BLOCKED: "a guardrail (kill switch, maintenance window, rate limit, service "
    "lock) stopped a destructive step; the line says which and how to lift it"}

_STATE_NAMES = {OutcomeKind.SUCCEEDED: "Completed", OutcomeKind.FAILED: "Failed",
                OutcomeKind.REMEDIATION_REJECTED: "Rejected", OutcomeKind.BLOCKED: "Blocked"}

_GUARDRAIL_NAMES = {"kill_switch": "the kill switch", "maintenance_window":
                    "a maintenance window", "rate_limit": "the rate limit",
                    "service_lock": "the service lock"}


class SkipCause(StrEnum):
    """Why a step was skipped: the runbook's logic (`condition`, `needs`) or a decision that
    kept a step from acting (`approval`, `guardrail`)."""

    CONDITION = "condition"
    NEEDS = "needs"
    APPROVAL = "approval"
    GUARDRAIL = "guardrail"
    OTHER = "other"


@dataclass(frozen=True)
class SkippedStep:
    """A main step that did not run, and why."""

    step_id: str
    uses: str
    cause: SkipCause
    reason: str


@dataclass(frozen=True)
class Outcome:
    """An execution's outcome. `step_id`/`uses` name the step that failed, was rejected or was
    blocked; `by` who rejected it (`firelane` when the approval timed out); `guardrail`,
    `scope` and `until` which guardrail blocked it, over which service, until when;
    `skipped` every main step that did not run and why; `not_run` the steps skipped because
    they needed the outcome's step; `let_pass` the steps that failed with `on_error:
    continue`, each with its error; `fell_back` the steps that succeeded by a fallback, each
    with what the fallback event said."""

    kind: OutcomeKind
    reason: str = ""
    step_id: str | None = None
    uses: str | None = None
    by: str | None = None
    guardrail: str | None = None
    scope: str | None = None
    until: str | None = None
    skipped: tuple[SkippedStep, ...] = field(default=())
    not_run: tuple[str, ...] = field(default=())
    let_pass: tuple[tuple[str, str], ...] = field(default=())
    fell_back: tuple[tuple[str, str], ...] = field(default=())

    @property
    def succeeded(self) -> bool:
        """The runbook did what it exists for."""
        return self.kind is OutcomeKind.SUCCEEDED

    @property
    def execution_status(self) -> ExecutionStatus:
        """The execution's stored status: `succeeded` only for a success."""
        return ExecutionStatus.SUCCEEDED if self.succeeded else ExecutionStatus.FAILED

    @property
    def exit_code(self) -> int:
        """`firelane run`'s exit status for this outcome."""
        return EXIT_CODES[self.kind]

    @property
    def state_name(self) -> str:
        """The name of the Prefect state the flow run ends in."""
        return _STATE_NAMES[self.kind]

    @property
    def timed_out(self) -> bool:
        """A rejection that nobody decided: the approval's deadline passed."""
        return self.kind is OutcomeKind.REMEDIATION_REJECTED and self.by == APPROVAL_TIMEOUT_BY

    def describe(self) -> str:
        """What happened, in one clause (no incident or runbook name)."""
        step = f"{self.step_id} ({self.uses})" if self.uses else str(self.step_id)
        not_run = f"{step} was not run" + (
            f", nor {', '.join(self.not_run)} after it" if self.not_run else "")
        if self.kind is OutcomeKind.SUCCEEDED:
            return "succeeded" + self._let_pass() + self._fell_back() + self._chained_skips()
        if self.kind is OutcomeKind.FAILED:
            return f"failed at step {step}: {self.reason}" if self.step_id else \
                f"failed: {self.reason}"
        if self.timed_out:
            return f"remediation not approved in time ({self.reason}); {not_run}"
        if self.kind is OutcomeKind.REMEDIATION_REJECTED:
            said = f' ("{self.reason}")' if self.reason else ""
            return f"remediation rejected by {self.by}{said}; {not_run}"
        name = _GUARDRAIL_NAMES.get(self.guardrail or "", "a guardrail")
        return f"remediation blocked by {name} ({self.reason}); {not_run}"

    def _let_pass(self) -> str:
        """A success with failed steps the runbook lets pass names them: the run did its job,
        not all of it."""
        return "".join(f"; {step} failed (on_error: continue): {_first_line(error)}"
                       for step, error in self.let_pass)

    def _fell_back(self) -> str:
        """A step that did its job another way than the runbook asked first says how."""
        return "".join(f"; {step} fell back: {_first_line(said)}"
                       for step, said in self.fell_back)

    def _chained_skips(self) -> str:
        """A success that left steps behind says which (the skip trap: a step skipped by its
        `if:` takes every step that needs it along, and those may be the ones that resolve
        the page)."""
        chained = [s.step_id for s in self.skipped if s.cause is SkipCause.NEEDS]
        if not chained:
            return ""
        verb = "was" if len(chained) == 1 else "were"
        return (f"; {', '.join(chained)} {verb} skipped because a step they need was skipped "
                "(`if: always()` runs a step whatever its needs did)")

    def advice(self, rerun: str) -> str:
        """What to do next; `rerun` is the command that runs the runbook again."""
        if self.kind is OutcomeKind.SUCCEEDED:
            return ""
        if self.kind is OutcomeKind.FAILED:
            return f"Fix the cause (the step's error above), then run it again: {rerun}"
        if self.kind is OutcomeKind.REMEDIATION_REJECTED:
            return f"Remediate by hand, or re-run when ready: {rerun}"
        if self.guardrail == "kill_switch":
            return (f"Lift the pause (firelane automation resume {self.scope or '*'}) or "
                    f"remediate by hand, then re-run: {rerun}")
        if self.guardrail == "maintenance_window":
            return f"Remediate by hand, or re-run after the window: {rerun}"
        if self.guardrail == "service_lock":
            return f"Another remediation of the service is running; re-run after it: {rerun}"
        return f"Remediate by hand, or re-run once the rate limit allows it: {rerun}"

    def details(self) -> dict[str, Any]:
        """JSON-safe fields, for the `execution.finished` event and the flow's result."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["skipped"] = [{**asdict(s), "cause": s.cause.value} for s in self.skipped]
        data["not_run"] = list(self.not_run)
        data["let_pass"] = [list(p) for p in self.let_pass]
        data["fell_back"] = [list(p) for p in self.fell_back]
        data["execution_status"] = self.execution_status.value
        data["exit_code"] = self.exit_code
        return data

    @classmethod
    def from_details(cls, data: Mapping[str, Any]) -> Outcome:
        """The outcome `details()` produced."""
        skipped = tuple(SkippedStep(step_id=s["step_id"], uses=s["uses"],
                                    cause=SkipCause(s["cause"]), reason=s["reason"])
                        for s in data.get("skipped") or ())
        return cls(kind=OutcomeKind(data["kind"]), reason=data.get("reason") or "",
                   step_id=data.get("step_id"), uses=data.get("uses"), by=data.get("by"),
                   guardrail=data.get("guardrail"), scope=data.get("scope"),
                   until=data.get("until"), skipped=skipped,
                   not_run=tuple(data.get("not_run") or ()),
                   let_pass=tuple((str(p[0]), str(p[1])) for p in data.get("let_pass") or ()),
                   fell_back=tuple((str(p[0]), str(p[1]))
                                   for p in data.get("fell_back") or ()))


def _first_line(text: str, limit: int = 300) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _skip_cause(step: Step, record: StepRecord,
                events: Sequence[TimelineEvent]) -> tuple[SkipCause, TimelineEvent | None]:
    mine = [e for e in events if e.step_id == step.id]
    blocked = next((e for e in reversed(mine) if e.kind == "guardrail.blocked"), None)
    if blocked is not None:
        return SkipCause.GUARDRAIL, blocked
    rejected = next((e for e in reversed(mine) if e.kind == "approval.rejected"), None)
    if rejected is not None or (step.approval is not None
                                and (record.error or "").startswith("approval ")):
        return SkipCause.APPROVAL, rejected
    error = record.error or ""
    if error.startswith("condition is false"):
        return SkipCause.CONDITION, None
    if error.startswith("needs "):
        return SkipCause.NEEDS, None
    return SkipCause.OTHER, None


def _depends_on(step: Step, root: str, by_id: Mapping[str, Step]) -> bool:
    return root in step.needs or any(
        _depends_on(by_id[n], root, by_id) for n in step.needs if n in by_id)


def decide_outcome(steps: Sequence[Step], records: Mapping[str, StepRecord],
                   events: Iterable[TimelineEvent]) -> Outcome:
    """The outcome of an execution of the main `steps`, from their ledger `records` and the
    execution's timeline `events`."""
    events = list(events)
    skipped: list[SkippedStep] = []
    let_pass: list[tuple[str, str]] = []
    main = {s.id for s in steps}
    fell_back = [(e.step_id, e.summary) for e in events
                 if e.kind == "integration.fallback" and e.step_id in main
                 and (r := records.get(e.step_id)) is not None
                 and r.status is StepStatus.SUCCEEDED]
    found: list[Outcome] = []
    for step in steps:
        record = records.get(step.id)
        if record is None or not record.finished:
            found.append(Outcome(OutcomeKind.FAILED, "the step never finished", step.id,
                                 step.uses))
            continue
        if record.status is StepStatus.FAILED and step.on_error == "fail":
            found.append(Outcome(OutcomeKind.FAILED, record.error or "unknown error", step.id,
                                 step.uses))
        elif record.status is StepStatus.FAILED:
            let_pass.append((step.id, record.error or "unknown error"))
        if record.status is not StepStatus.SKIPPED:
            continue
        cause, event = _skip_cause(step, record, events)
        skipped.append(SkippedStep(step.id, step.uses, cause, record.error or ""))
        details = event.details if event is not None else {}
        if cause is SkipCause.APPROVAL:
            found.append(Outcome(
                OutcomeKind.REMEDIATION_REJECTED,
                str(details.get("reason") or "") if event else record.error or "",
                step.id, step.uses, by=str(details.get("by") or event.actor or "")
                if event else None))
        elif cause is SkipCause.GUARDRAIL:
            found.append(Outcome(
                OutcomeKind.BLOCKED, str(details.get("reason") or record.error or ""),
                step.id, step.uses, guardrail=details.get("guardrail"),
                scope=details.get("scope"), until=details.get("until")))
    rank = list(OutcomeKind)
    first = min(found, key=lambda o: rank.index(o.kind), default=None)
    if first is None:
        return Outcome(OutcomeKind.SUCCEEDED, skipped=tuple(skipped),
                       let_pass=tuple(let_pass), fell_back=tuple(fell_back))
    by_id = {s.id: s for s in steps}
    root = str(first.step_id)
    after = tuple(s.step_id for s in skipped
                  if s.cause in (SkipCause.NEEDS, SkipCause.CONDITION)
                  and _depends_on(by_id[s.step_id], root, by_id))
    return replace(first, skipped=tuple(skipped), not_run=after, let_pass=tuple(let_pass),
                   fell_back=tuple(fell_back))
