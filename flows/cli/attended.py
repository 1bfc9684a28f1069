"""`firelane run` and `firelane resume` in a terminal: say what they wait for, stop cleanly.

While the execution waits for an approval, the terminal shows the rendered request and the
`firelane approve` command that decides it. Ctrl-C (SIGINT) or SIGTERM stops the run without a
traceback: the running steps are cancelled (Prefect marks their runs Crashed), their leases
are released, the execution is left `interrupted` with an `execution.interrupted` event on the
timeline, and one line says how to resume it; the exit status is 130 or 143 (128 + the
signal). `firelane resume INC-n` finds the incident's unfinished execution.
"""

from __future__ import annotations

import _thread
import re
import signal
import sys
import threading
from typing import Any

from firelane.errors import NotFound, RunbookError
from firelane.models import Execution, ExecutionStatus, TimelineEvent
from firelane.store import Store

__all__ = ["RESUMABLE", "Interrupted", "resolve_execution", "run_attended"]

RESUMABLE = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING, ExecutionStatus.READY,
             ExecutionStatus.INTERRUPTED)

_EXECUTION_ID = re.compile(r"^[0-9a-f]{32}$")
_POLL_SECONDS = 0.5


class Interrupted(Exception):
    """The run was stopped by a signal; `code` is the exit status (128 + the signal)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def resolve_execution(store: Store, ref: str) -> Execution:
    """An execution by id, or the one unfinished execution of an incident (`INC-12`, `12`, or
    the incident id); several unfinished ones are named, and the caller must pick one."""
    if _EXECUTION_ID.match(ref):
        try:
            return store.get_execution(ref)
        except NotFound:
            pass
    incident = store.get_incident(ref)
    executions = store.list_executions(incident.id)
    open_ = [e for e in executions if e.status in RESUMABLE]
    if len(open_) == 1:
        return open_[0]
    if not open_:
        done = ", ".join(f"{e.id} {e.runbook_name} {e.status}" for e in executions) or "none"
        raise NotFound(f"INC-{incident.number} has no unfinished execution to resume "
                       f"(executions: {done})")
    listed = "; ".join(f"{e.id} ({e.runbook_name}, {e.status})" for e in open_)
    raise RunbookError(f"INC-{incident.number} has {len(open_)} unfinished executions: "
                       f"{listed}. Say which: firelane resume <execution id>")


def _watch(store: Store, execution: Execution, number: int, stop: threading.Event) -> None:
    """Print each approval this execution starts waiting for, once, with its command."""
    told: set[str] = set()
    while not stop.wait(_POLL_SECONDS):
        try:
            pending = [a for a in store.approvals_for(execution.incident_id)
                       if a.execution_id == execution.id and a.status == "pending"
                       and a.flow_run_id and a.id not in told]
        except Exception:
            continue
        for approval in pending:
            told.add(approval.id)
            print(f"\nINC-{number} waits for approval of {approval.step_id}:\n"
                  + "\n".join(f"  {line}" for line in approval.message.splitlines())
                  + f"\n  decide: firelane approve INC-{number} {approval.step_id}"
                  f"   (or --reject --reason '...')\n", flush=True)


def _interrupted(store: Store, execution: Execution, number: int, signum: int) -> Interrupted:
    name = signal.Signals(signum).name
    store.release_claims(execution.id)
    store.set_execution_status(execution.id, ExecutionStatus.INTERRUPTED)
    resume = f"firelane resume INC-{number}"
    store.append_events([TimelineEvent(
        incident_id=execution.incident_id, kind="execution.interrupted", source="runbook",
        execution_id=execution.id, actor="firelane",
        summary=f"INC-{number} {execution.runbook_name} stopped by {name}; steps already done "
                f"are kept and pending approvals stay open. Resume it with `{resume}`",
        details={"signal": name, "resume": resume})])
    return Interrupted(128 + signum, f"firelane: stopped by {name}; INC-{number} "
                       f"{execution.runbook_name} is interrupted, not lost: resume it with "
                       f"`{resume}` (execution {execution.id})")


def _sigterm_as_interrupt(got: list[int], done: threading.Event) -> set[int | signal.Signals]:
    """Deliver SIGTERM as a Ctrl-C while the run lasts: block it in this (main) thread and the
    threads started after, and let one thread wait for it and interrupt the main thread.
    Prefect's own SIGTERM handler would raise inside the event loop, and the cancelled steps
    would then record failures through an already closed API client. Returns the signal mask
    to restore: a blocked SIGTERM would otherwise be inherited by every process this one
    starts afterwards (they could not be stopped)."""

    def wait() -> None:
        while not done.is_set():
            if signal.sigtimedwait({signal.SIGTERM}, 0.2) is not None:
                got.append(signal.SIGTERM)
                _thread.interrupt_main(signal.SIGINT)

    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    threading.Thread(target=wait, name="firelane-sigterm", daemon=True).start()
    return old


def run_attended(store: Store, execution_id: str) -> dict[str, Any]:
    """Run the execution in this process (as `run_execution`), showing what it waits for;
    raises `Interrupted` after a clean stop on SIGINT or SIGTERM."""
    from prefect.exceptions import TerminationSignal

    from flows.runs.run_runbook import run_execution

    execution = store.get_execution(execution_id)
    number = store.get_incident(execution.incident_id).number
    got: list[int] = []
    done = threading.Event()
    old_mask: set[int | signal.Signals] | None = None
    old_int = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        old_mask = _sigterm_as_interrupt(got, done)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(store, execution, number, stop),
                               name="firelane-approvals", daemon=True)
    watcher.start()
    signum = 0
    try:
        return run_execution(execution_id)
    except KeyboardInterrupt:
        signum = got[0] if got else signal.SIGINT
    except TerminationSignal as exc:
        signum = exc.signal
    finally:
        stop.set()
        watcher.join(timeout=2)
        done.set()
        if signum:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
        elif old_mask is not None:
            signal.signal(signal.SIGINT, old_int)
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    sys.stdout.flush()
    raise _interrupted(store, execution, number, signum)
