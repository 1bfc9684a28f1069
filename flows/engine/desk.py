"""`ActionContext.desk` for a step: what the update actions need of the store and catalog.

A runbook step posts an update through the same `IncidentCommands.post_update` as the CLI,
the API and Slack (recorded as made by the runbook), with an id derived from the step's
idempotency key so a retried or resumed step posts it once. `prepare` renders the update and
lists its destinations from the catalog; `publish` marks a public update published or
rejected and refreshes Firelane's own status page.
"""

from __future__ import annotations

import hashlib
from typing import Any

from firelane.catalog import Catalog
from firelane.commands import Actor, IncidentCommands
from firelane.lanes import run_blocking
from firelane.loader import load_valid_runbooks
from firelane.models import TimelineEvent
from firelane.settings import Settings
from firelane.updates import (
    Audience,
    IncidentUpdate,
    Prepared,
    UpdateDraft,
    UpdateState,
    UpdateStatus,
    affected_of,
    public_title,
    render_update,
)
from flows.engine.context import RunContext

__all__ = ["STATUSPAGE_STATUS", "UpdateDeskImpl", "desk_for", "prepare_update"]

STATUSPAGE_STATUS = {"degraded": "degraded_performance", "partial_outage": "partial_outage",
                     "major_outage": "major_outage"}
"""Firelane's impact → an Atlassian Statuspage component status."""


def prepare_update(update: IncidentUpdate, rc_catalog: Catalog, store: Any) -> Prepared:
    """Render `update` and list where it goes: the affected services' stakeholder channels
    and lists, the catalog's lists (public subscribers only for public updates), and for a
    public update Statuspage's components."""
    incident = store.get_incident(update.incident_id)
    comms = rc_catalog.communications
    subject, body = render_update(update, incident, rc_catalog, Settings.from_env().templates_dir)
    channels: list[str] = []
    emails: list[str] = list(comms.internal_emails)
    components: dict[str, str] = {}
    for service, impact in affected_of(update, incident).items():
        entry = rc_catalog.get(service)
        if entry is None:
            continue
        if entry.stakeholder_channel:
            channels.append(entry.stakeholder_channel)
        emails.extend(entry.stakeholder_emails)
        if entry.statuspage_component:
            components[entry.statuspage_component] = (
                "operational" if update.status is UpdateStatus.RESOLVED
                else STATUSPAGE_STATUS[impact.value])
    if update.public:
        emails.extend(comms.public_emails)
    return Prepared(
        update=update, subject=subject, body=body, channels=list(dict.fromkeys(channels)),
        emails=list(dict.fromkeys(emails)), statuspage=update.public and comms.statuspage,
        components=components if update.public else {},
        needs_approval=update.state is UpdateState.AWAITING_APPROVAL,
        title=public_title(update, incident, rc_catalog),
        status_page_url=comms.status_page.public_url)


class UpdateDeskImpl:
    """The desk of one step of one execution."""

    def __init__(self, rc: RunContext, step_id: str, key: str) -> None:
        self.rc, self.step_id, self.key = rc, step_id, key

    async def post(self, draft: UpdateDraft) -> IncidentUpdate:
        """Post as the runbook, once per step."""
        rc = self.rc
        update_id = hashlib.sha256(f"update:{self.key}".encode()).hexdigest()[:32]
        runbooks = load_valid_runbooks(Settings.from_env().runbooks_dir)[0]
        cmds = IncidentCommands(rc.store, runbooks, sandbox=rc.execution.sandbox)
        by = Actor(f"runbook {rc.execution.runbook_name}", "runbook", verified=True)
        posted = await run_blocking(cmds.post_update, rc.incident.id, draft, by, rc.catalog,
                                    update_id)
        return posted.update

    async def prepare(self, update_id: str) -> Prepared:
        """Render and route."""
        update = await run_blocking(self.rc.store.get_update, update_id)
        return await run_blocking(prepare_update, update, self.rc.catalog, self.rc.store)

    async def publish(self, update_id: str, approved: bool) -> IncidentUpdate:
        """Published (or rejected) once, with one timeline event; the status page follows."""
        rc = self.rc
        state = UpdateState.PUBLISHED if approved else UpdateState.REJECTED
        update = await run_blocking(rc.store.get_update, update_id)
        verb = "published" if approved else "rejected: not published"
        event = TimelineEvent(
            incident_id=update.incident_id, kind=f"update.{state.value}", source="runbook",
            summary=f"Update #{update.seq} ({update.audience}) {verb}",
            details={"update_id": update.id, "seq": update.seq},
            execution_id=rc.execution.id, step_id=self.step_id)
        update, _ = await run_blocking(rc.store.set_update_state, update_id, state, event)
        if update.audience is Audience.PUBLIC:
            from flows.records.status_page import refresh_status_page
            await run_blocking(refresh_status_page, rc.store, rc.catalog)
        return update


def desk_for(rc: RunContext, step: Any, key: str) -> UpdateDeskImpl:
    """The desk for `step` of `rc` (its idempotency key makes posting once-only)."""
    return UpdateDeskImpl(rc, step.id, key)
