"""`video.create_meeting`: a Jitsi room without credentials, a Zoom meeting with them."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ConfigError, VendorUnavailable
from firelane.registry import ActionContext, action
from integrations.common import load_block, retrying, vendor_error
from integrations.limits import fit_for
from integrations.video.limits import TOPIC

__all__ = ["LIST_PAGES", "MEETING_MINUTES", "MeetingInputs", "MeetingOutputs"]

MEETING_MINUTES = 60
"""A Zoom bridge is a scheduled meeting starting now, this long (join before the host allowed):
Zoom's List meetings, which a re-run searches for the step's marker, never returns an instant
meeting, so an instant bridge could not be found again after a lost answer."""
LIST_PAGES = 20
"""At most this many pages of 300 meetings are searched for an earlier try's bridge."""


class MeetingInputs(BaseModel):
    """`video.create_meeting` inputs."""

    model_config = ConfigDict(extra="forbid")
    topic: str | None = Field(default=None, description=(
        "Default: INC-<n> <title>; fitted to Zoom's 200 characters, one line"))
    provider: str = Field(default="auto", pattern="^(auto|jitsi|zoom)$", description=(
        "jitsi, zoom, or auto (zoom when the runbook names zoom credentials or in the sandbox)"))
    jitsi_base_url: str = Field(default="https://meet.jit.si", description="Jitsi server")


class MeetingOutputs(BaseModel):
    """The bridge."""

    url: str
    provider: str
    meeting_id: str
    created: bool


def _room(ctx: ActionContext) -> str:
    digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9]", "", ctx.incident.service.title())[:20]
    return f"Firelane-INC{ctx.incident.number}-{slug}-{digest}"


async def _authorized(creds: Any, client: httpx.AsyncClient, headers: dict[str, str],
                      method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request; when Zoom refuses the cached token (401, nothing done), once more with a
    fresh one."""
    resp = await client.request(method, url, headers=headers, **kwargs)
    if resp.status_code == 401:
        creds.forget_token()
        headers["Authorization"] = f"Bearer {await creds.token(client)}"
        resp = await client.request(method, url, headers=headers, **kwargs)
    return resp


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        raise vendor_error("zoom", resp.status_code, resp.text[:200],
                           resp.headers.get("Retry-After"))


async def _find(creds: Any, client: httpx.AsyncClient, headers: dict[str, str], base: str,
                marker: str) -> MeetingOutputs | None:
    """The meeting whose agenda carries `marker`, looked for page by page (300 a page, at most
    `LIST_PAGES` pages) among the user's scheduled meetings."""
    token = ""
    for _ in range(LIST_PAGES):
        listed = await _authorized(creds, client, headers, "GET", base, params={
            "type": "scheduled", "page_size": 300, "next_page_token": token})
        _raise_for(listed)
        body = listed.json()
        for meeting in body.get("meetings", []):
            if marker in str(meeting.get("agenda", "")):
                return MeetingOutputs(url=meeting["join_url"], provider="zoom",
                                      meeting_id=str(meeting["id"]), created=False)
        token = str(body.get("next_page_token") or "")
        if not token:
            return None
    return None


async def _zoom(creds: Any, topic: str, marker: str, look: bool) -> MeetingOutputs:
    """Create the meeting; first, when `look`, find the one an earlier try made (its agenda
    carries `marker`)."""
    async with creds.http() as client:
        try:
            headers = {"Authorization": f"Bearer {await creds.token(client)}"}
            base = f"{creds.api_url}/users/{creds.user_id}/meetings"
            if look and (found := await _find(creds, client, headers, base, marker)):
                return found
            made = await _authorized(creds, client, headers, "POST", base, json={
                "topic": topic, "type": 2, "agenda": marker,
                "start_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "duration": MEETING_MINUTES, "timezone": "UTC",
                "settings": {"join_before_host": True, "waiting_room": False}})
            _raise_for(made)
        except httpx.HTTPStatusError as exc:
            _raise_for(exc.response)
            raise
        except httpx.TransportError as exc:
            raise VendorUnavailable("zoom", f"{type(exc).__name__}: {exc}") from exc
    body = made.json()
    return MeetingOutputs(url=body["join_url"], provider="zoom", meeting_id=str(body["id"]),
                          created=True)


@action("video.create_meeting", link="bridge")
async def create_meeting(inputs: MeetingInputs, ctx: ActionContext) -> MeetingOutputs:
    """Open the incident's video bridge.

    Without Zoom credentials it is a Jitsi room whose name derives from the step's key (no API
    call, so nothing can be created twice); with them, a Zoom meeting (scheduled to start now,
    60 minutes, joinable before the host: Zoom never lists instant meetings) whose agenda
    carries the key, found again on a re-run.
    Example: `{uses: video.create_meeting}`
    """
    use_zoom = inputs.provider == "zoom" or (
        inputs.provider == "auto" and (ctx.sandbox or "zoom" in ctx.credentials))
    if not use_zoom:
        room = _room(ctx)
        return MeetingOutputs(url=f"{inputs.jitsi_base_url.rstrip('/')}/{room}",
                              provider="jitsi", meeting_id=room, created=True)
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
        return await _zoom(creds, topic, marker,
                           look=tries[0] > 1 or not ctx.first_use or ctx.repeat_since is not None)

    return await retrying(attempt, ctx)
