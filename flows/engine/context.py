"""The per-execution context: `RunContext` and `build_context()`, the one place it is built.

Every path that runs an execution (the fast path, the `run-runbook` flow, the outage ride-out)
builds it once with `build_context()` and passes it along; `refresh_context()` re-reads the
execution row and the ledger when a run resumes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from firelane.catalog import Catalog, serving_catalog
from firelane.loader import parse_snapshot
from firelane.models import Approval, Execution, Incident, TimelineEvent
from firelane.runbook import LoadedRunbook, Step
from firelane.settings import Settings, worker_identity
from firelane.store import RunState, StepRecord, Store

__all__ = ["ApprovalGate", "RunContext", "ServiceLock", "build_context", "refresh_context",
           "template_context"]

ApprovalGate = Callable[["RunContext", Step, dict[str, Any]], Awaitable[Approval]]
ServiceLock = Callable[["RunContext", Step], Awaitable[None]]


@dataclass
class RunContext:
    """Everything one execution's steps share.

    `page_takeover_grace`: how long past a paging step's lease this run waits before taking
    the page over itself. Zero in processes that page (their scan takes dead responders' pages
    over at once); a flow run outside them waits out the step lease, so the paging responders,
    at their higher priority, send a dead responder's page, and the flow run only when none
    is left."""

    store: Store
    execution: Execution
    incident: Incident
    loaded: LoadedRunbook
    owner: str
    lease_seconds: float = 30.0
    page_lease_seconds: float = 5.0
    catalog: Catalog = field(default_factory=Catalog)
    approve: ApprovalGate | None = None
    records: dict[str, StepRecord] = field(default_factory=dict)
    alarm_channel: str = ""
    service_lock: ServiceLock | None = None
    lock_stack: contextlib.AsyncExitStack | None = None
    holds_service_lock: bool = False
    page_takeover_grace: float = 0.0

    def event(self, step: Step, kind: str, summary: str, **details: Any) -> TimelineEvent:
        """A timeline event about `step` of this execution."""
        return TimelineEvent(incident_id=self.incident.id, source="runbook", kind=kind,
                             summary=summary, details=details, execution_id=self.execution.id,
                             step_id=step.id)


def template_context(rc: RunContext) -> dict[str, Any]:
    """The four template roots: incident, inputs, steps, run."""
    steps: dict[str, Any] = {}
    for step in rc.loaded.runbook.all_steps():
        rec = rc.records.get(step.id)
        steps[step.id] = {
            "status": rec.status.value if rec else "pending",
            "outputs": (rec.outputs or {}) if rec else {},
            "error": rec.error if rec else None,
        }
    return {
        "incident": rc.incident.model_dump(mode="json"),
        "inputs": dict(rc.execution.inputs),
        "steps": steps,
        "run": {"execution_id": rc.execution.id, "runbook": rc.execution.runbook_name,
                "dry_run": rc.execution.dry_run, "sandbox": rc.execution.sandbox},
    }


def build_context(store: Store, execution_id: str, settings: Settings,
                  state: RunState | None = None) -> RunContext:
    """Load an execution, its incident, runbook snapshot and ledger into a `RunContext`;
    `state`: those already read with the execution's claim (`Store.claim_runs`)."""
    execution, incident, records = state or store.run_state(execution_id)
    return RunContext(
        store=store, execution=execution, incident=incident,
        loaded=parse_snapshot(execution.runbook_source, execution.runbook_path or "<snapshot>"),
        owner=worker_identity(), lease_seconds=settings.lease_seconds,
        page_lease_seconds=settings.page_lease_seconds,
        catalog=serving_catalog(settings.catalog_path),
        records=records, alarm_channel=settings.page_failure_channel)


def refresh_context(rc: RunContext) -> RunContext:
    """Re-read the execution row and the ledger of `rc` (a resumed run needs the flow run
    that was lost and the steps finished since); returns `rc`."""
    rc.execution = rc.store.get_execution(rc.execution.id)
    rc.records.update(rc.store.step_records(rc.execution.id))
    return rc
