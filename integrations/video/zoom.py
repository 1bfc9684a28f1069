"""Zoom meetings for `video.create_meeting`: find an earlier try's bridge again, or create one
for the first host with quota left.

Zoom allows 100 Create-a-meeting requests per host user a UTC day
(https://developers.zoom.us/docs/api/meetings/#tag/meetings/POST/users/{userId}/meetings); past
it every create for that user is a 429 until 00:00 UTC, `{"code": 429, "message": "You have
exceeded the daily rate limit (100) of Meeting Create/Update API requests permitted for this
particular user. You may resume these requests at GMT 00:00:00."}`. A host refused so is
remembered as spent until then (in this process) and the next of the block's `spare_hosts`
hosts the bridge; when every host is spent the step fails at once with `QuotaExhausted`:
retrying until midnight cannot help.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx

from firelane.errors import QuotaExhausted, VendorUnavailable
from firelane.registry import ActionContext
from integrations.common import vendor_error

__all__ = ["DAILY_CREATES", "LIST_PAGES", "MEETING_MINUTES", "Bridge", "every_host_spent",
           "forget_spent", "open_bridge"]

MEETING_MINUTES = 60
"""A Zoom bridge is a scheduled meeting starting now, this long (join before the host allowed):
Zoom's List meetings, which a re-run searches for the step's marker, never returns an instant
meeting, so an instant bridge could not be found again after a lost answer."""
LIST_PAGES = 20
"""At most this many pages of 300 meetings are searched, per host, for an earlier try's
bridge."""
DAILY_CREATES = 100
"""Zoom's limit on Create-a-meeting requests per host user a UTC day."""

Bridge = tuple[str, dict[str, Any], bool]
"""(host, the meeting as Zoom returned it, created by this call)."""

_SPENT: dict[tuple[str, str, str], tuple[date, int]] = {}


def forget_spent() -> None:
    """Forget which hosts spent their daily limit (tests)."""
    _SPENT.clear()


def _resets_at(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)


def every_host_spent(creds: Any) -> str:
    """What a spent quota is, said once for the step's failure and the Jitsi fallback's event."""
    return f"every Zoom host ({creds.hosts_named}) has reached its daily limit of meetings created"


def _limit_of(resp: httpx.Response) -> int:
    """The daily limit Zoom's message names (`daily rate limit (100)`), else Zoom's 100."""
    found = re.search(r"daily rate limit \((\d+)\)", resp.text)
    return int(found.group(1)) if found else DAILY_CREATES


def _is_daily_limit(resp: httpx.Response) -> bool:
    """Zoom's daily-limit 429 (its header, when sent, or its message), not a per-second one."""
    return resp.status_code == 429 and (
        resp.headers.get("X-RateLimit-Type", "").lower() == "daily-limit"
        or "daily rate limit" in resp.text.lower())


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
                marker: str) -> dict[str, Any] | None:
    """The meeting whose agenda carries `marker`, looked for page by page (300 a page, at most
    `LIST_PAGES` pages) among one host's scheduled meetings."""
    token = ""
    for _ in range(LIST_PAGES):
        listed = await _authorized(creds, client, headers, "GET", base, params={
            "type": "scheduled", "page_size": 300, "next_page_token": token})
        _raise_for(listed)
        body = listed.json()
        for meeting in body.get("meetings", []):
            if marker in str(meeting.get("agenda", "")):
                return dict(meeting)
        token = str(body.get("next_page_token") or "")
        if not token:
            return None
    return None


async def _create(creds: Any, client: httpx.AsyncClient, headers: dict[str, str], topic: str,
                  marker: str, ctx: ActionContext) -> Bridge:
    """Create the meeting for the first host whose daily limit is not spent."""
    now = datetime.now(UTC)
    limit = DAILY_CREATES
    for host in creds.hosts:
        key = (creds.api_url, creds.account_id, host)
        spent = _SPENT.get(key)
        if spent is not None and spent[0] == now.date():
            limit = spent[1]
            continue
        made = await _authorized(creds, client, headers, "POST",
                                 f"{creds.api_url}/users/{host}/meetings", json={
            "topic": topic, "type": 2, "agenda": marker,
            "start_time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": MEETING_MINUTES, "timezone": "UTC",
            "settings": {"join_before_host": True, "waiting_room": False}})
        if _is_daily_limit(made):
            limit = _limit_of(made)
            _SPENT[key] = (now.date(), limit)
            ctx.emit("integration.quota", f"zoom: host {host} has reached Zoom's daily limit of "
                     f"meetings created ({limit}), until 00:00 UTC",
                     {"vendor": "zoom", "host": host, "limit": limit,
                      "response": made.text[:200]})
            continue
        _raise_for(made)
        return host, dict(made.json()), True
    raise QuotaExhausted("zoom", (
        f"{every_host_spent(creds)} ({limit}), until 00:00 UTC. Add hosts to the Zoom block's "
        "spare_hosts, or give the step `with: {fallback: jitsi}`"), _resets_at(now))


async def open_bridge(creds: Any, topic: str, marker: str, look: bool,
                      ctx: ActionContext) -> Bridge:
    """The step's Zoom bridge: when `look`, the meeting an earlier try made (its agenda carries
    `marker`; every host's meetings are searched, since a try may have fallen over to a spare
    host), else a new one."""
    async with creds.http() as client:
        try:
            headers = {"Authorization": f"Bearer {await creds.token(client)}"}
            if look:
                for host in creds.hosts:
                    found = await _find(creds, client, headers,
                                        f"{creds.api_url}/users/{host}/meetings", marker)
                    if found is not None:
                        return host, found, False
            return await _create(creds, client, headers, topic, marker, ctx)
        except httpx.HTTPStatusError as exc:
            _raise_for(exc.response)
            raise
        except httpx.TransportError as exc:
            raise VendorUnavailable("zoom", f"{type(exc).__name__}: {exc}") from exc
