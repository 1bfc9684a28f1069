"""Audit lines: one INFO record on the `firelane.audit` logger per page sent, takeover,
approval decision and refused intake request.

Each helper is called with one line where the thing happens and logs nothing when it did not
(a dry-run page, a claim that took nothing over). The fields go both into the message and, with
`extra=`, into JSON lines (`audit`, then the fields). No secret is ever a field: a refusal
carries the source, status and reason (the reason names the header, never its value), a page
its vendor and dedup key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from firelane.models import Approval, Incident, utcnow

__all__ = ["approval_decided", "execution_taken_over", "intake_refused", "page_sent",
           "step_taken_over"]

log = logging.getLogger("firelane.audit")


def _emit(kind: str, message: str, *args: Any, **fields: Any) -> None:
    log.info(message, *args, extra={"audit": kind, **{k: v for k, v in fields.items()
                                                       if v is not None}})


def _ago(since: datetime | None) -> float | None:
    return None if since is None else round((utcnow() - since).total_seconds(), 1)


def page_sent(incident: Incident, execution_id: str, step_id: str, uses: str, pages: bool,
              outputs: Mapping[str, Any], dry_run: bool) -> None:
    """A paging action (`pages=True`) succeeded for real (not a dry run)."""
    if not pages or dry_run or outputs.get("dry_run"):
        return
    vendor, dedup = uses.split(".", 1)[0], outputs.get("dedup_key")
    _emit("page.sent", "page sent: INC-%s step %s via %s dedup_key=%s", incident.number,
          step_id, vendor, dedup, incident=f"INC-{incident.number}", execution=execution_id,
          step=step_id, vendor=vendor, dedup_key=dedup)


def step_taken_over(execution_id: str, step_id: str, previous_owner: str | None,
                    started_at: datetime | None, lease_expires_at: datetime | None,
                    claims: int) -> None:
    """A step claim took the step from another owner whose lease had run out."""
    started, expired = _ago(started_at), _ago(lease_expires_at)
    _emit("step.taken_over", "step taken over: step %s of execution %s from %s, started %s s "
          "ago, lease expired %s s ago (claim %d)", step_id, execution_id, previous_owner,
          started, expired, claims, execution=execution_id, step=step_id,
          previous_owner=previous_owner, started_seconds_ago=started,
          lease_expired_seconds_ago=expired, claims=claims)


def execution_taken_over(execution_id: str, status: str, previous_owner: str | None,
                         heartbeat_at: datetime | None, owner: str) -> None:
    """`claim_executions` took an execution (`status`, `previous_owner`: the row before the
    claim); logs only when it was running under another responder whose heartbeat stopped."""
    if status != "running" or not previous_owner or previous_owner == owner:
        return
    silent = _ago(heartbeat_at)
    _emit("execution.taken_over", "execution taken over: %s from %s, heartbeat silent for "
          "%s s", execution_id, previous_owner, silent, execution=execution_id,
          previous_owner=previous_owner, heartbeat_silent_seconds=silent)


def approval_decided(approval: Approval, won: bool) -> None:
    """A decision on an approval was recorded (`won`: this call decided it; an earlier
    decision that stands is not logged again)."""
    if not won:
        return
    decision = "approve" if approval.status == "approved" else "reject"
    _emit("approval.decided", "approval decided: step %s %s by %s", approval.step_id,
          decision, approval.decided_by, execution=approval.execution_id,
          step=approval.step_id, decision=decision, decided_by=approval.decided_by,
          approval=approval.id)


def intake_refused(source: str, status: int, reason: str) -> None:
    """The intake refused a request (the reason never carries a credential)."""
    _emit("intake.refused", "intake refused: %s %s: %s", source, status, reason,
          source=source, status=status, reason=reason)
