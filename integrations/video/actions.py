"""`video.create_meeting`: a Jitsi room without credentials, a Zoom meeting with them."""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ConfigError, QuotaExhausted
from firelane.registry import ActionContext, action
from integrations.common import load_block, retrying
from integrations.limits import fit_for
from integrations.video.limits import TOPIC
from integrations.video.zoom import every_host_spent, open_bridge

__all__ = ["MeetingInputs", "MeetingOutputs"]


class MeetingInputs(BaseModel):
    """`video.create_meeting` inputs."""

    model_config = ConfigDict(extra="forbid")
    topic: str | None = Field(default=None, description=(
        "Default: INC-<n> <title>; fitted to Zoom's 200 characters, one line"))
    provider: str = Field(default="auto", pattern="^(auto|jitsi|zoom)$", description=(
        "jitsi, zoom, or auto (zoom when the runbook names zoom credentials or in the sandbox)"))
    jitsi_base_url: str = Field(default="https://meet.jit.si", description="Jitsi server")
    fallback: str = Field(default="none", pattern="^(none|jitsi)$", description=(
        "jitsi: a Jitsi room when every Zoom host has reached Zoom's daily limit of 100 "
        "meetings created; none: the step fails (QuotaExhausted, not retried)"))


class MeetingOutputs(BaseModel):
    """The bridge."""

    url: str
    provider: str
    meeting_id: str
    created: bool
    host: str | None = Field(default=None, description="The Zoom user hosting it")


def _jitsi(ctx: ActionContext, base_url: str) -> MeetingOutputs:
    """The step's Jitsi room: its name derives from the step's key, so a re-run opens the same
    one and nothing can be created twice."""
    digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9]", "", ctx.incident.service.title())[:20]
    room = f"Firelane-INC{ctx.incident.number}-{slug}-{digest}"
    return MeetingOutputs(url=f"{base_url.rstrip('/')}/{room}", provider="jitsi",
                          meeting_id=room, created=True)


@action("video.create_meeting", link="bridge")
async def create_meeting(inputs: MeetingInputs, ctx: ActionContext) -> MeetingOutputs:
    """Open the incident's video bridge.

    Without Zoom credentials it is a Jitsi room whose name derives from the step's key (no API
    call, so nothing can be created twice); with them, a Zoom meeting (scheduled to start now,
    60 minutes, joinable before the host: Zoom never lists instant meetings) whose agenda
    carries the key, found again on a re-run. A host that has reached Zoom's daily limit of 100
    meetings hands over to the block's next `spare_hosts`; with every host spent the step
    fails at once, or opens a Jitsi room with `fallback: jitsi`.
    Example: `{uses: video.create_meeting, with: {fallback: jitsi}}`
    """
    use_zoom = inputs.provider == "zoom" or (
        inputs.provider == "auto" and (ctx.sandbox or "zoom" in ctx.credentials))
    if not use_zoom:
        return _jitsi(ctx, inputs.jitsi_base_url)
    if ctx.dry_run:
        return MeetingOutputs(url="", provider="zoom", meeting_id="dry-run", created=False)
    from integrations.video.block import ZoomCredentials

    creds = await load_block(ZoomCredentials, ctx, "zoom")
    if not isinstance(creds, ZoomCredentials):
        raise ConfigError("the zoom credentials are not a ZoomCredentials block")
    marker = f"firelane:{ctx.idempotency_key}"
    topic = fit_for(ctx, TOPIC, inputs.topic or f"INC-{ctx.incident.number} {ctx.incident.title}")
    tries = [0]

    async def attempt() -> MeetingOutputs:
        tries[0] += 1
        host, meeting, created = await open_bridge(
            creds, topic, marker, tries[0] > 1 or not ctx.first_use or ctx.repeat_since is not None,
            ctx)
        return MeetingOutputs(url=meeting["join_url"], provider="zoom",
                              meeting_id=str(meeting["id"]), created=created, host=host)

    try:
        return await retrying(attempt, ctx)
    except QuotaExhausted as exc:
        if inputs.fallback != "jitsi":
            raise
        ctx.emit("integration.fallback", f"zoom: {every_host_spent(creds)}, until 00:00 UTC; "
                 "the bridge is a Jitsi room instead", {"vendor": "zoom", "fallback": "jitsi",
                                                       "error": str(exc)})
        return _jitsi(ctx, inputs.jitsi_base_url)
