"""Starting the response to a new incident: match a runbook, record the execution, run it
through the fast path (urgent steps at once, the flow run beside them)."""

from __future__ import annotations

import asyncio
import logging

from firelane.errors import FirelaneError
from firelane.inputs import new_execution
from firelane.library import Library
from firelane.matching import match_runbook
from firelane.models import Alert, Execution, ExecutionStatus, Incident, TimelineEvent
from firelane.runbook import LoadedRunbook
from firelane.settings import Settings
from firelane.store import Store, ride_out
from flows.respond.fast_path import run_with_fast_path
from flows.respond.wake import Waker

__all__ = ["ResponseStarter"]

log = logging.getLogger("firelane.intake")


class ResponseStarter:
    """Starts responses: in this (warm) process, or, with `external`, by leaving a pending
    execution for a `firelane respond` process. The store and ledger make them exactly-once."""

    def __init__(self, store: Store, settings: Settings, default_runbook: str,
                 sandbox: bool = False, external: bool = False,
                 library: Library | None = None) -> None:
        self.store, self.settings, self.sandbox = store, settings, sandbox
        self.external = external
        self.default_runbook = default_runbook
        self.library = library or Library(settings.runbooks_dir, settings.catalog_path)
        self.tasks: set[asyncio.Task[object]] = set()
        self.waker = Waker(settings.wake_address if external else None)
        self.started = 0
        self.failed = 0

    @property
    def runbooks(self) -> list[LoadedRunbook]:
        """The runbooks in force (invalid files refused, the last good ones kept)."""
        return self.library.runbooks

    def plan(self, alert: Alert, incident: Incident) -> Execution | None:
        """The execution that answers `alert` for `incident` (no I/O: the store calls this
        inside the transaction that commits the alert)."""
        loaded = match_runbook(self.runbooks, alert, self.default_runbook)
        if loaded is None:
            log.error("no runbook matches INC %s and no default runbook %r exists",
                      incident.number, self.default_runbook)
            return None
        return new_execution(loaded, incident, {}, sandbox=self.sandbox,
                             for_responder=self.external)

    def start(self, execution_id: str) -> None:
        """Run (or resume) an execution in the background."""
        task = asyncio.get_running_loop().create_task(self._run(execution_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.started += 1

    async def _run(self, execution_id: str) -> object:
        try:
            return await ride_out(lambda: run_with_fast_path(self.store, execution_id,
                                                             self.settings))
        except (FirelaneError, Exception) as exc:
            self.failed += 1
            log.error("response %s failed: %s", execution_id, exc)
            self.store.set_execution_status(execution_id, ExecutionStatus.FAILED)
            execution = self.store.get_execution(execution_id)
            self.store.append_events([TimelineEvent(
                incident_id=execution.incident_id, kind="execution.failed", source="runbook",
                execution_id=execution_id, summary=f"Runbook {execution.runbook_name} stopped: "
                f"{type(exc).__name__}: {exc}", details={"error": str(exc)})])
            return None

    def resume_unfinished(self) -> int:
        """Start every execution that was accepted but never finished (the intake died).
        With an external responder, that process resumes them instead; executions a
        responder or a deployment owns are theirs to finish (one inline intake per store)."""
        if self.external:
            return 0
        pending = self.store.unfinished_executions(unowned_only=True)
        for execution in pending:
            self.start(execution.id)
        return len(pending)
