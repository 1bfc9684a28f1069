"""The step ledger (exactly-once side effects) and approvals.

A step is *claimed* with a lease before its side effect and *finished* after. A worker that finds
a finished step reuses its outcome; one that finds a live lease (or an owner it knows is still
running the step) waits; one that finds an expired lease takes the step over and runs it again
with the same idempotency key, so the vendor-side check covers a crash between the call and the
record.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from firelane import audit
from firelane.errors import NotFound, StoreError
from firelane.links import Link
from firelane.models import (
    Approval,
    Execution,
    ExecutionStatus,
    Incident,
    StepStatus,
    TimelineEvent,
    utcnow,
)
from firelane.redaction import redact, redact_value
from firelane.store.base import as_stored, aware
from firelane.store.claims import ClaimOps, audit_takeovers, running
from firelane.store.incidents import _incident, event_rows, insert_event_rows, read_execution
from firelane.store.tables import (
    approvals,
    executions,
    incidents,
    step_ledger,
)

__all__ = ["Claim", "ClaimOutcome", "LedgerOps", "StepRecord", "idempotency_key"]


_SET_AT_FINISH = frozenset({"outputs", "error", "finished_at", "duration_seconds"})


def idempotency_key(incident_id: str, execution_id: str, step_id: str) -> str:
    """The key an action passes to its vendor; stable for every re-run of the same step."""
    return f"firelane-{incident_id[:12]}-{execution_id[:12]}-{step_id}"


@dataclass(frozen=True)
class StepRecord:
    """A step's row in the ledger."""

    execution_id: str
    step_id: str
    incident_id: str
    idempotency_key: str
    status: StepStatus
    owner: str | None
    lease_expires_at: datetime | None
    claims: int
    attempts: int
    outputs: dict[str, Any] | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    pages: bool = False

    @property
    def finished(self) -> bool:
        """The step has an outcome."""
        return self.status is not StepStatus.CLAIMED

    def __repr__(self) -> str:
        """Short: a step's Prefect state shows its record in every log line about the state."""
        return (f"StepRecord({self.step_id} of execution {self.execution_id[:12]}: "
                f"{self.status.value}, attempts {self.attempts})")


def _record(row: Any) -> StepRecord:
    data = dict(row._mapping)
    for key in ("lease_expires_at", "started_at", "finished_at"):
        data[key] = aware(data[key])
    data["status"] = StepStatus(data["status"])
    return StepRecord(**data)


class ClaimOutcome(StrEnum):
    """What `claim_step` found."""

    CLAIMED = "claimed"
    TAKEN_OVER = "taken_over"
    DONE = "done"
    HELD = "held"


RunState = tuple[Execution, Incident, dict[str, StepRecord]]


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim and the row as it stands afterwards; `attempt_noted`: the claim
    also recorded attempt 1 (a fresh claim given its `started` events)."""

    outcome: ClaimOutcome
    record: StepRecord
    attempt_noted: bool = False


def _approval(row: Any) -> Approval:
    data = dict(row._mapping)
    for key in ("requested_at", "deadline", "decided_at"):
        data[key] = aware(data[key])
    return Approval.model_validate(data)


class LedgerOps(ClaimOps):
    """Step claims, leases, outcomes, and approvals."""

    def _get_step(self, conn: Connection, execution_id: str, step_id: str) -> StepRecord | None:
        row = conn.execute(select(step_ledger).where(
            step_ledger.c.execution_id == execution_id,
            step_ledger.c.step_id == step_id)).first()
        return _record(row) if row is not None else None

    def claim_step(self, incident_id: str, execution_id: str, step_id: str, owner: str,
                   lease_seconds: float, live_owners: Collection[str] = (),
                   pages: bool = False, takeover_grace: float = 0.0,
                   started: list[TimelineEvent] | None = None) -> Claim:
        """Claim a step before its side effect (see the module docstring for the outcomes).

        `live_owners` are owners the caller knows to be still running this step (in its own
        process): their lease counts as held even when it ran out, so a starved renewal never
        lets a second worker repeat the side effect. `pages` marks a paging step, which
        `overdue_pages` finds when its lease runs out. `takeover_grace`: seconds past the
        lease during which this caller still counts it as held (a flow run leaves a dead
        responder's page to the paging responders for that long). `started`: the timeline
        events of attempt 1, from a caller that attempts at once; a fresh claim records them
        and counts the attempt in its own transaction (what `note_attempt` would do next: one
        write fewer per step, on the paging path too); any other outcome ignores them.

        The claim is one `INSERT ... ON CONFLICT DO NOTHING`: a fresh step (the usual case)
        needs no read first; a conflict reads the row and decides as above.
        """
        now = utcnow()
        lease = now + timedelta(seconds=lease_seconds)
        fresh = StepRecord(
            execution_id=execution_id, step_id=step_id, incident_id=incident_id,
            idempotency_key=idempotency_key(incident_id, execution_id, step_id),
            status=StepStatus.CLAIMED, owner=owner, lease_expires_at=lease,
            claims=1, attempts=1 if started else 0, outputs=None, error=None,
            started_at=now, finished_at=None, duration_seconds=None, pages=pages)
        row = {k: v for k, v in asdict(fresh).items() if k not in _SET_AT_FINISH}
        claim = self._insert_new(step_ledger, {**row, "status": fresh.status.value})
        for _ in range(3):
            try:
                with self.tx() as conn:
                    if conn.execute(claim).rowcount == 1:
                        if started:
                            self._insert_events(conn, started)
                        return Claim(ClaimOutcome.CLAIMED, fresh, attempt_noted=bool(started))
                    record = self._get_step(conn, execution_id, step_id)
                    if record is not None:
                        return self._claim_existing(conn, record, owner, lease, now,
                                                    live_owners, takeover_grace)
            except IntegrityError:
                continue
        raise StoreError(f"could not claim step {step_id} of execution {execution_id}: "
                         "its ledger row kept conflicting")

    def _claim_existing(self, conn: Connection, record: StepRecord, owner: str,
                        lease: datetime, now: datetime, live_owners: Collection[str],
                        takeover_grace: float) -> Claim:
        """`claim_step` of a step that has a ledger row: done, ours, held, or taken over."""
        execution_id, step_id = record.execution_id, record.step_id
        if record.finished:
            return Claim(ClaimOutcome.DONE, record)
        if record.owner == owner:
            return Claim(ClaimOutcome.CLAIMED, record)
        expires = record.lease_expires_at
        if (expires is not None and expires + timedelta(seconds=takeover_grace) > now) \
                or record.owner in live_owners:
            return Claim(ClaimOutcome.HELD, record)
        conn.execute(update(step_ledger).where(
            step_ledger.c.execution_id == execution_id, step_ledger.c.step_id == step_id,
            step_ledger.c.status == StepStatus.CLAIMED.value,
        ).values(owner=owner, lease_expires_at=lease, claims=step_ledger.c.claims + 1))
        taken = self._get_step(conn, execution_id, step_id)
        assert taken is not None
        audit.step_taken_over(execution_id, step_id, record.owner, record.started_at,
                              expires, taken.claims)
        return Claim(ClaimOutcome.TAKEN_OVER, taken)

    def renew_lease(self, execution_id: str, step_id: str, owner: str,
                    lease_seconds: float) -> bool:
        """Extend the lease while the step runs; False when someone else took it over."""
        with self.tx() as conn:
            return bool(conn.execute(update(step_ledger).where(
                step_ledger.c.execution_id == execution_id, step_ledger.c.step_id == step_id,
                step_ledger.c.owner == owner, step_ledger.c.status == StepStatus.CLAIMED.value,
            ).values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))).rowcount)

    def note_attempt(self, execution_id: str, step_id: str, attempt: int,
                     events: list[TimelineEvent]) -> None:
        """Count an attempt and append its timeline events."""
        with self.tx() as conn:
            conn.execute(update(step_ledger).where(
                step_ledger.c.execution_id == execution_id, step_ledger.c.step_id == step_id,
            ).values(attempts=attempt))
            self._insert_events(conn, events)

    def finish_step(self, execution_id: str, step_id: str, status: StepStatus,
                    outputs: dict[str, Any] | None, error: str | None,
                    events: list[TimelineEvent], link: Link | None = None,
                    first_action: bool = True) -> StepRecord:
        """Record a claimed step's outcome with its timeline events, in one transaction
        (redaction and encoding done before it, so the write lock is held only for the SQL).

        The first outcome wins: if another worker already finished the step, its record is
        returned and these events are dropped (they describe a duplicate run). `link` (what a
        succeeded step created: ticket, page, channel, bridge) goes on the incident in the
        same transaction, so it is recorded exactly once too. A success sets the execution's
        `first_action_at` when it has none; `first_action=False` (the caller knows it is set)
        skips that statement.
        """
        now = utcnow()
        kept, said = redact_value(outputs), None if error is None else redact(error)
        rows = event_rows(events)
        with self.tx() as conn:
            current = self._get_step(conn, execution_id, step_id)
            if current is None:
                raise NotFound(f"step {step_id} of execution {execution_id} was never claimed")
            if current.finished:
                return current
            duration = (now - current.started_at).total_seconds()
            conn.execute(update(step_ledger).where(
                step_ledger.c.execution_id == execution_id, step_ledger.c.step_id == step_id,
            ).values(status=status.value, outputs=kept, error=said, finished_at=now,
                     lease_expires_at=None, duration_seconds=duration))
            if status is StepStatus.SUCCEEDED and first_action:
                conn.execute(update(executions).where(
                    executions.c.id == execution_id, executions.c.first_action_at.is_(None))
                    .values(first_action_at=now))
            if link is not None and status is StepStatus.SUCCEEDED:
                self._record_link(conn, current.incident_id, link, rows)
            insert_event_rows(conn, rows)
        return replace(current, status=status, outputs=as_stored(kept), error=said,
                       finished_at=now, lease_expires_at=None, duration_seconds=duration)

    def overdue_pages(self, limit: int = 100) -> list[tuple[str, str]]:
        """(execution_id, step_id) of paging steps claimed by a worker whose lease ran out (it
        died or stalled) in executions not finished yet, oldest claim first: a paging
        responder takes each over."""
        finished = (ExecutionStatus.SUCCEEDED.value, ExecutionStatus.FAILED.value)
        query = (select(step_ledger.c.execution_id, step_ledger.c.step_id)
                 .join(executions, executions.c.id == step_ledger.c.execution_id)
                 .where(step_ledger.c.pages.is_(True),
                        step_ledger.c.status == StepStatus.CLAIMED.value,
                        step_ledger.c.lease_expires_at < utcnow(),
                        executions.c.status.not_in(finished))
                 .order_by(step_ledger.c.started_at).limit(limit))
        with self.tx(write=False) as conn:
            return [(r.execution_id, r.step_id) for r in conn.execute(query)]

    def release_claims(self, execution_id: str) -> int:
        """End the leases of an execution's unfinished steps, so a resume takes them over at
        once. Only for an execution nobody runs any more (its process was stopped); returns
        how many were released."""
        with self.tx() as conn:
            return int(conn.execute(update(step_ledger).where(
                step_ledger.c.execution_id == execution_id,
                step_ledger.c.status == StepStatus.CLAIMED.value,
            ).values(lease_expires_at=utcnow())).rowcount)

    def run_state(self, execution_id: str) -> RunState:
        """An execution, its incident and its ledger, read in one transaction (a response's
        set-up: one round trip to the store instead of three)."""
        with self.tx(write=False) as conn:
            return self._states(conn, [read_execution(conn, execution_id)])[0]

    def claim_runs(self, owner: str, stale_after: float, limit: int = 50) -> list[RunState]:
        """`claim_executions` of pending executions, each returned with its incident and ledger
        read in the same transaction: a paging responder claims a response and has what its
        set-up reads in one store round trip, not two (two reads for the whole batch)."""
        with self.tx() as conn:
            rows = self._claim_rows(conn, owner, stale_after, ExecutionStatus.PENDING, limit)
            states = self._states(conn, [running(row) for row in rows]) if rows else []
        audit_takeovers(rows, owner)
        return states

    @staticmethod
    def _states(conn: Connection, runs: list[Execution]) -> list[RunState]:
        """Each execution with its incident and ledger, read in the caller's transaction."""
        found = {r.id: _incident(r) for r in conn.execute(select(incidents).where(
            incidents.c.id.in_({e.incident_id for e in runs})))}
        ledgers: dict[str, dict[str, StepRecord]] = {e.id: {} for e in runs}
        for row in conn.execute(select(step_ledger).where(
                step_ledger.c.execution_id.in_(list(ledgers)))):
            ledgers[row.execution_id][row.step_id] = _record(row)
        for execution in runs:
            if execution.incident_id not in found:
                raise NotFound(f"no incident {execution.incident_id!r}")
        return [(e, found[e.incident_id], ledgers[e.id]) for e in runs]

    def step_records(self, execution_id: str) -> dict[str, StepRecord]:
        """Every ledger row of an execution, by step id."""
        with self.tx(write=False) as conn:
            rows = conn.execute(select(step_ledger).where(
                step_ledger.c.execution_id == execution_id))
            return {r.step_id: _record(r) for r in rows}

    def request_approval(self, approval: Approval) -> Approval:
        """Open an approval request; asking again for the same step returns the first one."""
        try:
            with self.tx() as conn:
                conn.execute(insert(approvals), approval.model_dump(mode="python"))
                self._insert_events(conn, [TimelineEvent(
                    incident_id=approval.incident_id, kind="approval.requested",
                    source="runbook", execution_id=approval.execution_id,
                    step_id=approval.step_id,
                    summary=f"Approval requested for {approval.step_id}"
                            + (f": {approval.message.splitlines()[0]}" if approval.message
                               else ""),
                    details={"approvers": approval.approvers, "request": approval.message,
                             "deadline": approval.deadline.isoformat()})])
            return approval
        except IntegrityError:
            return self.find_approval(approval.execution_id, approval.step_id)

    def find_approval(self, execution_id: str, step_id: str) -> Approval:
        """The approval of one step of one execution."""
        with self.tx(write=False) as conn:
            row = conn.execute(select(approvals).where(
                approvals.c.execution_id == execution_id, approvals.c.step_id == step_id)).first()
        if row is None:
            raise NotFound(f"no approval for step {step_id} of execution {execution_id}")
        return _approval(row)

    def get_approval(self, approval_id: str) -> Approval:
        """An approval by id."""
        with self.tx(write=False) as conn:
            row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
        if row is None:
            raise NotFound(f"no approval {approval_id!r}")
        return _approval(row)

    def approvals_for(self, incident_id: str, step_id: str | None = None) -> list[Approval]:
        """An incident's approvals, newest first (optionally for one step id)."""
        query = (select(approvals).where(approvals.c.incident_id == incident_id)
                 .order_by(approvals.c.requested_at.desc()))
        if step_id is not None:
            query = query.where(approvals.c.step_id == step_id)
        with self.tx(write=False) as conn:
            return [_approval(r) for r in conn.execute(query)]

    def set_approval_flow_run(self, approval_id: str, flow_run_id: str) -> None:
        """Remember which Prefect flow run is paused waiting for this approval."""
        with self.tx() as conn:
            conn.execute(update(approvals).where(approvals.c.id == approval_id)
                         .values(flow_run_id=flow_run_id))

    def decide_approval(self, approval_id: str, approved: bool, by: str,
                        reason: str = "") -> tuple[Approval, bool]:
        """Decide a pending approval. Returns the approval and whether this call decided it
        (False: someone decided first, and their decision stands)."""
        status = "approved" if approved else "rejected"
        with self.tx() as conn:
            won = bool(conn.execute(update(approvals).where(
                approvals.c.id == approval_id, approvals.c.status == "pending",
            ).values(status=status, decided_at=utcnow(), decided_by=by, reason=reason)).rowcount)
            row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
            if row is None:
                raise NotFound(f"no approval {approval_id!r}")
            approval = _approval(row)
            if won:
                self._insert_events(conn, [TimelineEvent(
                    incident_id=approval.incident_id, kind=f"approval.{status}", actor=by,
                    source="runbook", execution_id=approval.execution_id,
                    step_id=approval.step_id,
                    summary=f"{approval.step_id} {status} by {by}"
                            + (f": {reason}" if reason else ""),
                    details={"approved": approved, "by": by, "reason": reason})])
        return approval, won
