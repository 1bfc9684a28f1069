"""The end of an execution: decide its outcome once (`firelane.outcome`), store it (the
execution's status and an `execution.finished` event the report and the CLI read) and, when the
runbook did not do what it exists for, tell the war room (the incident's channel and the alarm
channel) once per execution, with what to do next."""

from __future__ import annotations

import asyncio
import logging

from firelane.models import TimelineEvent
from firelane.outcome import Outcome, decide_outcome
from flows.engine.context import RunContext
from flows.engine.notices import notify_execution, quiet

__all__ = ["FINISHED", "conclude", "headline", "rerun_command"]

log = logging.getLogger("firelane.engine")

FINISHED = "execution.finished"


def rerun_command(rc: RunContext) -> str:
    """The command that runs this execution's runbook again."""
    sandbox = " --sandbox" if rc.execution.sandbox else ""
    return f"firelane run {rc.execution.runbook_name} --incident FILE{sandbox}"


def headline(rc: RunContext, outcome: Outcome) -> str:
    """`INC-3 web-5xx-rollback: <what happened>`."""
    return f"INC-{rc.incident.number} {rc.execution.runbook_name}: {outcome.describe()}"


async def conclude(rc: RunContext) -> Outcome:
    """Decide, store and (unless it succeeded) tell the outcome of `rc`'s execution. A second
    call for the same outcome (a resumed execution that had already finished) stores and tells
    nothing new."""
    records, events = await asyncio.gather(
        asyncio.to_thread(rc.store.step_records, rc.execution.id),
        asyncio.to_thread(rc.store.timeline, rc.incident.id))
    mine = [e for e in events if e.execution_id == rc.execution.id]
    outcome = decide_outcome(rc.loaded.runbook.steps, records, mine)
    await asyncio.to_thread(rc.store.set_execution_status, rc.execution.id,
                            outcome.execution_status)
    if any(e.kind == FINISHED and e.details.get("kind") == outcome.kind.value for e in mine):
        return outcome
    summary = headline(rc, outcome)
    await asyncio.to_thread(rc.store.append_events, [TimelineEvent(
        incident_id=rc.incident.id, kind=FINISHED, source="runbook",
        execution_id=rc.execution.id, summary=summary, details=outcome.details())])
    if outcome.succeeded:
        return outcome
    text = f":warning: {summary}. {outcome.advice(rerun_command(rc))}"
    notified, failures = await notify_execution(rc, text, FINISHED)
    if not notified and not failures and not quiet(rc):
        log.warning("outcome of execution %s not told in Slack: no war room and no alarm "
                    "channel (FIRELANE_PAGE_FAILURE_CHANNEL)", rc.execution.id)
    if failures:
        log.warning("outcome of execution %s not told in Slack: %s", rc.execution.id, failures)
        await asyncio.to_thread(rc.store.append_events, [TimelineEvent(
            incident_id=rc.incident.id, kind="notice.failed", source="runbook",
            execution_id=rc.execution.id, summary=f"Slack notice about {FINISHED} not delivered",
            details={"failures": failures, "notified": notified})])
    return outcome
