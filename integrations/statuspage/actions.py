"""`statuspage.post_update` (open or update the incident's Statuspage incident, exactly once
per Firelane update) and `statuspage.set_component_status` (idempotent).

Exactly once: each Statuspage incident Firelane opens carries `metadata.firelane` with the
Firelane incident's id and the ids of the updates posted to it, written in the same request
as the update itself. Before posting, the action reads the incident back; an update id already
there means an earlier try (a retry after a lost answer, a resumed step) posted it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ConfigError
from firelane.registry import ActionContext, action
from integrations.common import load_block, retrying
from integrations.limits import fit_for
from integrations.statuspage.client import StatuspageClient
from integrations.statuspage.limits import BODY, NAME, ComponentStatus, IncidentStatus

if TYPE_CHECKING:
    from integrations.statuspage.block import StatuspageCredentials

__all__ = ["ComponentInputs", "ComponentOutputs", "PostUpdateInputs", "PostUpdateOutputs",
           "find_incident"]

METADATA_KEY = "firelane"
RECENT_UPDATES = 20


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def _client(ctx: ActionContext) -> StatuspageClient:
    from integrations.statuspage.block import StatuspageCredentials

    creds: StatuspageCredentials = await load_block(StatuspageCredentials, ctx, "statuspage")
    if not isinstance(creds, StatuspageCredentials):
        raise ConfigError("the statuspage credentials are not a StatuspageCredentials block")
    return creds.get_client()


def _mark(incident: dict[str, Any]) -> dict[str, Any]:
    metadata = incident.get("metadata")
    mark = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return mark if isinstance(mark, dict) else {}


async def find_incident(statuspage: StatuspageClient, ctx: ActionContext,
                        ) -> dict[str, Any] | None:
    """The Statuspage incident of this Firelane incident: among the page's latest 100, the
    one whose `metadata.firelane.incident_id` is this incident's id, or whose shortlink is
    the incident's `statuspage` link."""
    link = ctx.incident.links.get("statuspage")
    for row in await statuspage.list_incidents():
        if _mark(row).get("incident_id") == ctx.incident.id or (
                link and row.get("shortlink") == link):
            return row
    return None


class PostUpdateInputs(_In):
    """`statuspage.post_update` inputs."""

    status: IncidentStatus = Field(description=(
        "investigating, identified, monitoring or resolved"))
    body: str = Field(min_length=1, description=(
        "The update's text; fitted to Statuspage's 25,000 characters"))
    name: str = Field(default="", description=(
        "The Statuspage incident's title when this update opens it (default: the incident's "
        "title); fitted to 255 characters"))
    components: dict[str, ComponentStatus] = Field(default_factory=dict, description=(
        "Affected components: Statuspage component id → its status now"))
    update_id: str = Field(default="", description=(
        "Firelane's id of this update (default: the step's key): the same id is never "
        "posted twice"))
    deliver_notifications: bool = Field(default=True, description=(
        "Notify the page's subscribers of this update"))


class PostUpdateOutputs(BaseModel):
    """The Statuspage incident the update is on."""

    incident_id: str = Field(description="Statuspage's incident id")
    url: str = Field(description="The incident's public shortlink")
    created: bool = Field(description="This update opened the Statuspage incident")
    posted: bool = Field(description=(
        "This call posted the update (false when an earlier try already had)"))
    dry_run: bool = False


def _fields(inputs: PostUpdateInputs, body: str, metadata: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": inputs.status, "body": body, "metadata": metadata,
                              "deliver_notifications": inputs.deliver_notifications}
    if inputs.components:
        fields["components"] = dict(inputs.components)
        fields["component_ids"] = list(inputs.components)
    return fields


async def _post(statuspage: StatuspageClient, inputs: PostUpdateInputs, ctx: ActionContext,
                update_id: str, name: str, body: str, sent: list[str]) -> PostUpdateOutputs:
    """Find, then create or update; `sent` notes each write before it goes out, so a later
    try that finds the update there knows this call posted it."""
    incident = await find_incident(statuspage, ctx)
    if incident is None:
        sent.append("create")
        metadata = {METADATA_KEY: {"incident_id": ctx.incident.id, "created_by": update_id,
                                   "last_update": update_id, "updates": [update_id]}}
        made = await statuspage.create_incident({"name": name, **_fields(inputs, body,
                                                                         metadata)})
        return PostUpdateOutputs(incident_id=str(made["id"]), url=str(made.get("shortlink")
                                                                      or ""),
                                 created=True, posted=True)
    mark = _mark(incident)
    out = PostUpdateOutputs(incident_id=str(incident["id"]),
                            url=str(incident.get("shortlink") or ""),
                            created=mark.get("created_by") == update_id, posted=False)
    if mark.get("last_update") == update_id or update_id in (mark.get("updates") or []):
        return out
    recent = [u for u in (mark.get("updates") or []) if isinstance(u, str)]
    metadata = {**(incident.get("metadata") or {}), METADATA_KEY: {
        **mark, "incident_id": ctx.incident.id, "last_update": update_id,
        "updates": [*recent, update_id][-RECENT_UPDATES:]}}
    sent.append("update")
    await statuspage.update_incident(out.incident_id, _fields(inputs, body, metadata))
    return out.model_copy(update={"posted": True})


@action("statuspage.post_update", link="statuspage")
async def post_update(inputs: PostUpdateInputs, ctx: ActionContext) -> PostUpdateOutputs:
    """Post an update to the incident's Atlassian Statuspage incident, opening it with the
    first update: its status, text and affected components in one request.

    The Statuspage incident is found by the metadata Firelane writes on it
    (`metadata.firelane.incident_id`), so any step of any execution updates the same one. Each
    update is posted once: the update id is written with it, and an update id already on the
    incident (a retry after a lost answer, a resumed step) is not posted again.

    Example: `{uses: statuspage.post_update, with: {status: investigating, body: "We are
    investigating errors at checkout.", components: {"8kbf7d35c070": partial_outage}}}`
    """
    update_id = inputs.update_id or ctx.idempotency_key
    name = fit_for(ctx, NAME, inputs.name or ctx.incident.title)
    body = fit_for(ctx, BODY, inputs.body)
    if ctx.dry_run:
        return PostUpdateOutputs(incident_id="", url="", created=False, posted=False,
                                 dry_run=True)

    sent: list[str] = []

    async def attempt() -> PostUpdateOutputs:
        async with await _client(ctx) as statuspage:
            out = await _post(statuspage, inputs, ctx, update_id, name, body, sent)
        return out.model_copy(update={"posted": bool(sent)})

    out = await retrying(attempt, ctx)
    what = "posted" if out.posted else "already posted"
    ctx.emit("statuspage.update", f"Statuspage update {what} ({inputs.status}): {out.url}",
             {"incident_id": out.incident_id, "url": out.url, "status": inputs.status,
              "update_id": update_id, "created": out.created, "posted": out.posted})
    return out


class ComponentInputs(_In):
    """`statuspage.set_component_status` inputs."""

    component_id: str = Field(min_length=1, description="Statuspage's component id")
    status: ComponentStatus = Field(description=(
        "operational, under_maintenance, degraded_performance, partial_outage or "
        "major_outage"))


class ComponentOutputs(BaseModel):
    """The component and its status before and after."""

    component_id: str
    name: str
    from_status: str
    to_status: str
    changed: bool
    dry_run: bool = False


@action("statuspage.set_component_status")
async def set_component_status(inputs: ComponentInputs, ctx: ActionContext,
                               ) -> ComponentOutputs:
    """Set one Statuspage component's status; a component already at that status is left
    as it is (read first), so a repeat changes nothing.

    Example: `{uses: statuspage.set_component_status, with: {component_id: "8kbf7d35c070",
    status: operational}}`
    """
    if ctx.dry_run:
        return ComponentOutputs(component_id=inputs.component_id, name="", from_status="",
                                to_status=inputs.status, changed=False, dry_run=True)

    patched_from: list[str] = []

    async def attempt() -> ComponentOutputs:
        async with await _client(ctx) as statuspage:
            current = await statuspage.get_component(inputs.component_id)
            before = str(current.get("status") or "")
            out = ComponentOutputs(component_id=inputs.component_id,
                                   name=str(current.get("name") or ""), from_status=before,
                                   to_status=inputs.status, changed=before != inputs.status)
            if out.changed:
                patched_from.append(before)
                await statuspage.set_component_status(inputs.component_id, inputs.status)
            elif patched_from:
                out = out.model_copy(update={"from_status": patched_from[0], "changed": True})
            return out

    return await retrying(attempt, ctx)
