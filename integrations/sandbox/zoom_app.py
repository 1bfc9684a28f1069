"""The Zoom stand-in: Server-to-Server OAuth token, meeting creation (within Zoom's daily
limit per host user) and listing."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import integrations.sandbox.limits as limits
from integrations.sandbox.common import now_iso, read_body
from integrations.sandbox.state import SandboxState

__all__ = ["zoom_routes"]

ZOOM = "/zoom"


SCHEDULED = (2, 3, 8)
"""Meeting types Zoom's List meetings returns (`type=scheduled`): never instant meetings
(type 1: "This API does not return information about instant meetings"), nor a type 2
created without a `start_time`, which Zoom turns into an instant one."""
LIST_TYPES = ("scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings")


def _over_daily_limit(state: SandboxState, user: str) -> Response | None:
    """Count one Create-a-meeting request for `user` today (UTC), once its body has arrived (a
    client gone before that sent Zoom no request); Zoom's 429 once the user has made
    `zoom_daily_limit` (100, Zoom's) of them. The body is the one Zoom sends (reported on
    its developer forum, with no `X-RateLimit-Type` header): a client must tell it from a
    per-second 429 by the message."""
    key = f"{datetime.now(UTC).date().isoformat()}/{user}"
    with state.lock:
        made = state.zoom_creates.get(key, 0)
        if made >= state.zoom_daily_limit:
            return JSONResponse({"code": 429, "message": (
                f"You have exceeded the daily rate limit ({state.zoom_daily_limit}) of Meeting "
                "Create/Update API requests permitted for this particular user. You may resume "
                "these requests at GMT 00:00:00.")}, status_code=429,
                headers={"X-RateLimit-Category": "Medium"})
        state.zoom_creates[key] = made + 1
    return None


def _listed(state: SandboxState, user: str, params: Any) -> Response:
    """One page of List meetings: `type` (default scheduled; live is empty here, nobody
    joins; upcoming and previous are not told apart by time, they list what scheduled lists),
    `page_size` (default 30, at most 300) and `next_page_token`."""
    kind = params.get("type", "scheduled")
    if kind not in LIST_TYPES:
        return JSONResponse({"code": 300, "message": f"Invalid field: type {kind}"},
                            status_code=400)
    try:
        size = min(300, max(1, int(params.get("page_size", 30))))
        start = int(params.get("next_page_token") or 0)
    except ValueError:
        return JSONResponse({"code": 300, "message": "Invalid field."}, status_code=400)
    with state.lock:
        rows = [m for m in state.zoom_meetings if m["_user"] == user
                and m["type"] in SCHEDULED and kind != "live"]
    page = rows[start:start + size]
    more = start + size < len(rows)
    return JSONResponse({"meetings": [{k: v for k, v in m.items() if k != "_user"}
                                      for m in page],
                         "page_size": size, "total_records": len(rows),
                         "next_page_token": str(start + size) if more else ""})


def zoom_routes(state: SandboxState) -> list[Route]:
    """The routes, bound to `state`."""
    tokens: set[str] = set()

    async def token(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        params = request.query_params
        if not auth.startswith("Basic ") or params.get("grant_type") != "account_credentials":
            return JSONResponse({"reason": "Invalid client_id or client_secret", "error":
                                 "invalid_client"}, status_code=401)
        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if not client_id or not secret or not params.get("account_id"):
            return JSONResponse({"reason": "Invalid request", "error": "invalid_request"},
                                status_code=400)
        value = secrets.token_urlsafe(24)
        tokens.add(value)
        return JSONResponse({"access_token": value, "token_type": "bearer", "expires_in": 3599,
                             "scope": "meeting:write:admin"})

    def authorized(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in tokens

    async def meetings(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"code": 124, "message": "Invalid access token."},
                                status_code=401)
        user = request.path_params["user"]
        if request.method == "GET":
            return _listed(state, user, request.query_params)
        body = await read_body(request)
        if (spent := _over_daily_limit(state, user)) is not None:
            return spent
        if not body.get("topic"):
            return JSONResponse({"code": 300, "message": "Validation Failed.",
                                 "errors": [{"field": "topic", "message": "required"}]},
                                status_code=400)
        if (refusal := limits.zoom_topic(str(body["topic"]))) is not None:
            return JSONResponse(refusal, status_code=400)
        kind = int(body.get("type", 2))
        if kind == 2 and not body.get("start_time"):
            kind = 1
        with state.lock:
            mid = 80000000000 + state.next_id()
            meeting = {"id": mid, "uuid": secrets.token_urlsafe(16), "host_id": "HOST0001",
                       "topic": body["topic"], "type": kind,
                       "start_time": body.get("start_time") or now_iso(),
                       "duration": int(body.get("duration", 60)),
                       "timezone": body.get("timezone", "UTC"),
                       "agenda": body.get("agenda", ""), "created_at": now_iso(),
                       "join_url": f"https://sandbox.zoom.local/j/{mid}",
                       "start_url": f"https://sandbox.zoom.local/s/{mid}",
                       "password": secrets.token_hex(3), "_user": user}
            state.zoom_meetings.append(meeting)
            state.arrived("zoom.meeting", str(body["topic"]))
        return JSONResponse({k: v for k, v in meeting.items() if k != "_user"},
                            status_code=201)

    return [Route(f"{ZOOM}/oauth/token", token, methods=["POST"]),
            Route(f"{ZOOM}/v2/users/{{user}}/meetings", meetings, methods=["GET", "POST"])]
