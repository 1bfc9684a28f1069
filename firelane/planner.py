"""The DAG planner: which steps are ready, which must be skipped, whether the runbook failed.

Plain Python with no I/O and no Prefect, so every rule is unit-tested on its own. The engine asks
`advance()` after every step finishes and acts on the answer.

Rules:
- a step is ready when every step it needs has finished (`succeeded`, or `failed` with
  `on_error: continue`);
- it is skipped when a step it needs was skipped or failed with `on_error: fail` (the default),
  unless its `if:` calls `always()`: then it is ready once every step it needs has finished,
  however it finished, and its `if:` decides;
- the runbook failed when any step failed with `on_error: fail`; then its `on_failure` steps run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firelane.models import StepStatus
from firelane.runbook import Step
from firelane.templating import runs_always

__all__ = ["Advance", "Planner"]

TERMINAL = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED})


@dataclass
class Advance:
    """What the engine should do next."""

    ready: list[str] = field(default_factory=list)
    skip: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing to start and nothing to skip."""
        return not self.ready and not self.skip


class Planner:
    """Tracks one list of steps (the main steps, or the `on_failure` steps)."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = {s.id: s for s in steps}
        self.order = [s.id for s in steps]
        self.status: dict[str, StepStatus] = {}
        self.running: set[str] = set()

    def record(self, step_id: str, status: StepStatus) -> None:
        """Note a step's outcome (or a prior outcome found in the ledger)."""
        self.running.discard(step_id)
        self.status[step_id] = status

    def start(self, step_id: str) -> None:
        """Note that the engine started a step."""
        self.running.add(step_id)

    def _blocked(self, need: str) -> bool:
        status = self.status.get(need)
        if status is StepStatus.SKIPPED:
            return True
        return status is StepStatus.FAILED and self.steps[need].on_error == "fail"

    def advance(self) -> Advance:
        """Ready steps in runbook order, and steps to skip with the reason."""
        out = Advance()
        for step_id in self.order:
            if step_id in self.status or step_id in self.running:
                continue
            step = self.steps[step_id]
            needs = step.needs
            blocker = None if runs_always(step.if_) else \
                next((n for n in needs if self._blocked(n)), None)
            if blocker is not None:
                out.skip[step_id] = f"needs {blocker}, which {self.status[blocker].value}"
            elif all(self.status.get(n) in TERMINAL for n in needs):
                out.ready.append(step_id)
        return out

    @property
    def done(self) -> bool:
        """Every step has an outcome."""
        return len(self.status) == len(self.order) and not self.running

    @property
    def failed(self) -> bool:
        """Some step failed with `on_error: fail`."""
        return any(s is StepStatus.FAILED and self.steps[i].on_error == "fail"
                   for i, s in self.status.items())
