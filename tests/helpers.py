"""Helpers to build executions from runbook text."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from firelane.inputs import new_execution
from firelane.loader import load_runbook, parse_runbook
from firelane.models import IncidentDraft, Severity, StepStatus, TimelineEvent
from firelane.runbook import Step
from firelane.settings import worker_identity
from firelane.store import StepRecord, Store
from flows.engine import RunContext, execute_step

ROOT = Path(__file__).resolve().parent.parent


def prepare(store: Store, text: str, severity: Severity = Severity.SEV2,
            inputs: dict[str, Any] | None = None, dry_run: bool = False,
            title: str = "checkout errors", lease_seconds: float = 2.0,
            service: str = "web") -> RunContext:
    """Declare an incident of `service` and record an execution of the runbook `text`."""
    loaded = parse_runbook(text, "test.yaml")
    incident = store.declare_incident(IncidentDraft(title=title, severity=severity,
                                                    service=service))
    execution = store.create_execution(new_execution(loaded, incident, inputs or {},
                                                     dry_run=dry_run))
    return RunContext(store=store, execution=execution, incident=incident, loaded=loaded,
                      owner=worker_identity(), lease_seconds=lease_seconds)


async def plain_runner(rc: RunContext, step: Step) -> StepRecord:
    """Run a step without Prefect (the fast path's way)."""
    return await execute_step(rc, step)


def statuses(rc: RunContext) -> dict[str, str]:
    """Step id → recorded status, from the ledger."""
    return {k: v.status.value for k, v in rc.store.step_records(rc.execution.id).items()}


def step_events(events: list[TimelineEvent], step_id: str) -> list[str]:
    """The kinds of a step's timeline events, in order."""
    return [e.kind for e in events if e.step_id == step_id]


DONE = {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED}


def storm_alert(n: int, fingerprints: int, name: str) -> bytes:
    """Alert number `n` of a storm over `fingerprints` fingerprints (Alertmanager webhook v4):
    fingerprint `<name>-<n mod fingerprints>`, service `svc-<n mod fingerprints>`, critical."""
    fp = f"{name}-{n % fingerprints:03d}"
    return (b'{"version": "4", "status": "firing", "alerts": [{"status": "firing", '
            b'"fingerprint": "' + fp.encode() + b'", "labels": {"alertname": "'
            + name.title().encode() + b'", "service": "svc-' + str(n % fingerprints).encode()
            + b'", "severity": "critical"}, "annotations": {"summary": "' + name.encode()
            + b" " + fp.encode() + b'"}}]}')


class ErrorRecords(logging.Handler):
    """Keeps every ERROR (and worse) record it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def collect_errors(logger: str = "") -> Iterator[ErrorRecords]:
    """The ERROR records that reach `logger` (the root by default) inside the block."""
    handler = ErrorRecords()
    target = logging.getLogger(logger or None)
    target.addHandler(handler)
    try:
        yield handler
    finally:
        target.removeHandler(handler)


Series = tuple[str, tuple[tuple[str, str], ...]]


def scrape_page(text: str) -> dict[Series, float]:
    """Every sample of a Prometheus text page by (name, sorted labels). Raises `ValueError` when
    the page does not parse or names one series twice."""
    samples: dict[Series, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if key in samples:
                raise ValueError(f"series {key} appears twice")
            samples[key] = sample.value
    return samples


def counted(samples: dict[Series, float]) -> dict[Series, float]:
    """The samples a request may move: all but process readings and `_created` timestamps."""
    return {k: v for k, v in samples.items()
            if not k[0].startswith("firelane_process_") and not k[0].endswith("_created")}


def leave_pending(store: Store) -> str:
    """Declare an incident and leave a pending responder execution of declare-incident."""
    incident = store.declare_incident(IncidentDraft(title="Checkout 5xx", service="checkout",
                                                    severity=Severity.SEV2))
    loaded = load_runbook(ROOT / "runbooks" / "declare-incident.yaml")
    return store.create_execution(new_execution(loaded, incident, {}, sandbox=True,
                                                for_responder=True)).id


async def wait_until(check: Callable[[], bool], seconds: float) -> bool:
    """Poll `check` in a thread every 50 ms until it holds or `seconds` pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await asyncio.to_thread(check):
            return True
        await asyncio.sleep(0.05)
    return False
