"""The Atlassian Statuspage stand-in: Manage API v1 pages, incidents (with their incident
updates and metadata) and components, under `/statuspage/v1/`.

As Statuspage documents it (https://developer.statuspage.io/): `Authorization: OAuth <key>`
(401 otherwise); each key may make 1 request per second measured on a 60-second rolling window,
past which the request is refused with 420 (or 429, `statuspage_rate_status`); errors are an
`ErrorEntity` `{"message": ...}` with 401, 404 or 422; bodies are `{"incident": {...}}` and
`{"component": {...}}`; incident `name` ≤ 255 and `body` ≤ 25,000 characters; `metadata`'s
top-level values must be objects. Not documented, and chosen here: a 420 carries `Retry-After`
(whole seconds until the window frees a slot); a `PATCH` with a `body` or a new `status` adds an
incident update; `metadata` is merged by top-level key; the 422 texts are Rails-style
("Name can't be blank"). The window is `statuspage_rate_limit` (`{"requests": 60, "window":
60}`, `null` switches it off), set through `POST /_admin/config`. JSON bodies only.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections import deque
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.sandbox.common import now_iso
from integrations.sandbox.state import SandboxState
from integrations.statuspage import limits

__all__ = ["statuspage_routes"]

PREFIX = "/statuspage/v1/pages/{page_id}"
_IMPACT = {"major_outage": "critical", "partial_outage": "major",
           "degraded_performance": "minor"}
_ORDER = ("none", "minor", "major", "critical")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _member(body: dict[str, Any], key: str) -> dict[str, Any]:
    inner = body.get(key)
    return inner if isinstance(inner, dict) else {}


def _new_id() -> str:
    return secrets.token_hex(6)


def _impact(statuses: list[str]) -> str:
    levels = [_IMPACT.get(s, "none") for s in statuses] or ["none"]
    return max(levels, key=_ORDER.index)


def statuspage_routes(state: SandboxState) -> list[Route]:
    """The routes, bound to `state`."""

    def refused(request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        key = auth[6:].strip() if auth.startswith("OAuth ") else ""
        if key not in state.statuspage_keys:
            return _error(401, "Could not authenticate")
        rule = state.statuspage_rate_limit
        now = time.monotonic()
        with state.lock:
            if rule:
                seen = state.statuspage_windows.setdefault(key, deque())
                while seen and seen[0] <= now - float(rule["window"]):
                    seen.popleft()
                if len(seen) >= int(rule["requests"]):
                    wait = math.ceil(seen[0] + float(rule["window"]) - now)
                    state.statuspage_calls.append({"at": time.time(), "method": request.method,
                                                   "path": request.url.path, "status":
                                                   state.statuspage_rate_status})
                    return JSONResponse({"message": "Rate limit exceeded"},
                                        status_code=state.statuspage_rate_status,
                                        headers={"Retry-After": str(max(wait, 1))})
                seen.append(now)
            state.statuspage_calls.append({"at": time.time(), "method": request.method,
                                           "path": request.url.path, "status": None})
        if request.path_params["page_id"] != state.statuspage_page_id:
            return _error(404, "The requested resource could not be found.")
        return None

    async def wrapped(request: Request) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(400, "The request body is not valid JSON")
        return body if isinstance(body, dict) else _error(400, "Bad request")

    def public(incident: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in incident.items() if not k.startswith("_")}
        shown["components"] = [dict(state.statuspage_components[c])
                                for c in incident["_component_ids"]
                                if c in state.statuspage_components]
        shown["incident_updates"] = list(reversed(incident["_updates"]))
        return shown

    def invalid(fields: dict[str, Any], creating: bool) -> str | None:
        name, body = fields.get("name"), fields.get("body")
        if creating and not name:
            return "Name can't be blank"
        if name is not None and len(str(name)) > limits.NAME.maximum:
            return f"Name is too long (maximum is {limits.NAME.maximum} characters)"
        if body is not None and len(str(body)) > limits.BODY.maximum:
            return f"Body is too long (maximum is {limits.BODY.maximum} characters)"
        status = fields.get("status")
        if status is not None and status not in limits.INCIDENT_STATUSES:
            return "Status is not included in the list"
        metadata = fields.get("metadata")
        if metadata is not None and not (isinstance(metadata, dict) and all(
                isinstance(v, dict) for v in metadata.values())):
            return "Metadata must be an object whose top-level values are objects"
        changes = fields.get("components") or {}
        if not isinstance(changes, dict):
            return "Components must be an object of component id to status"
        ids = list(fields.get("component_ids") or []) + list(changes)
        unknown = [c for c in ids if c not in state.statuspage_components]
        if unknown:
            return f"Component {unknown[0]} could not be found"
        bad = [s for s in changes.values() if s not in limits.COMPONENT_STATUSES]
        if bad:
            return f"Component status {bad[0]!r} is not included in the list"
        return None

    def apply(incident: dict[str, Any], fields: dict[str, Any], creating: bool) -> None:
        at = now_iso()
        changes: dict[str, str] = fields.get("components") or {}
        affected = []
        for cid, status in changes.items():
            component = state.statuspage_components[cid]
            affected.append({"code": cid, "name": component["name"],
                             "old_status": component["status"], "new_status": status})
            if component["status"] != status:
                component.update(status=status, updated_at=at)
                state.statuspage_component_changes.append(
                    {"component_id": cid, "from": affected[-1]["old_status"], "to": status,
                     "at": at})
        for cid in [*(fields.get("component_ids") or []), *changes]:
            if cid not in incident["_component_ids"]:
                incident["_component_ids"].append(cid)
        old_status = incident.get("status")
        for key in ("name", "status", "impact_override"):
            if fields.get(key) is not None:
                incident[key] = fields[key]
        if isinstance(fields.get("metadata"), dict):
            incident["metadata"] = {**incident["metadata"], **fields["metadata"]}
        incident["impact"] = incident.get("impact_override") or _impact(
            [state.statuspage_components[c]["status"] for c in incident["_component_ids"]])
        incident["updated_at"] = at
        if incident["status"] == "monitoring" and not incident.get("monitoring_at"):
            incident["monitoring_at"] = at
        incident["resolved_at"] = at if incident["status"] == "resolved" else None
        if creating or fields.get("body") is not None or incident["status"] != old_status:
            incident["_updates"].append({
                "id": _new_id(), "incident_id": incident["id"],
                "affected_components": affected or None, "body": fields.get("body") or "",
                "created_at": at, "custom_tweet": None,
                "deliver_notifications": bool(fields.get("deliver_notifications", True)),
                "display_at": at, "status": incident["status"], "tweet_id": None,
                "twitter_updated_at": None, "updated_at": at, "wants_twitter_update": False})
            state.arrived("statuspage.incident_update", incident["id"])

    async def page(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        at = now_iso()
        return JSONResponse({"id": state.statuspage_page_id, "created_at": at,
                             "updated_at": at, "name": "Firelane Sandbox",
                             "page_description": "The sandbox's Statuspage stand-in",
                             "subdomain": "firelane-sandbox", "time_zone": "Etc/UTC",
                             "url": "https://sandbox.statuspage.local",
                             "allow_page_subscribers": True, "activity_score": 0})

    async def incidents(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        if request.method == "GET":
            limit = min(int(request.query_params.get("limit", 100)), 100)
            with state.lock:
                rows = [public(i) for i in reversed(state.statuspage_incidents.values())]
            return JSONResponse(rows[:limit])
        body = await wrapped(request)
        if isinstance(body, Response):
            return body
        fields = {"status": "investigating", **_member(body, "incident")}
        with state.lock:
            if (problem := invalid(fields, creating=True)) is not None:
                return _error(422, problem)
            iid, at = _new_id(), now_iso()
            incident: dict[str, Any] = {
                "id": iid, "name": fields["name"], "status": fields["status"],
                "impact": "none", "impact_override": None, "created_at": at,
                "updated_at": at, "started_at": at, "monitoring_at": None,
                "resolved_at": None, "shortlink": f"https://sandbox.stspg.local/{iid}",
                "page_id": state.statuspage_page_id, "metadata": {},
                "postmortem_body": None, "postmortem_published_at": None,
                "scheduled_for": None, "scheduled_until": None,
                "reminder_intervals": None, "_component_ids": [], "_updates": []}
            state.statuspage_incidents[iid] = incident
            apply(incident, fields, creating=True)
            return JSONResponse(public(incident), status_code=201)

    async def incident(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        with state.lock:
            found = state.statuspage_incidents.get(request.path_params["incident_id"])
            if found is None:
                return _error(404, "The requested resource could not be found.")
            if request.method == "GET":
                return JSONResponse(public(found))
        body = await wrapped(request)
        if isinstance(body, Response):
            return body
        fields = _member(body, "incident")
        with state.lock:
            if (problem := invalid(fields, creating=False)) is not None:
                return _error(422, problem)
            apply(found, fields, creating=False)
            return JSONResponse(public(found))

    async def components(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        with state.lock:
            return JSONResponse(list(state.statuspage_components.values()))

    async def component(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        cid = request.path_params["component_id"]
        with state.lock:
            found = state.statuspage_components.get(cid)
            if found is None:
                return _error(404, "The requested resource could not be found.")
            if request.method == "GET":
                return JSONResponse(dict(found))
        body = await wrapped(request)
        if isinstance(body, Response):
            return body
        fields = _member(body, "component")
        status = fields.get("status")
        with state.lock:
            if status is not None and status not in limits.COMPONENT_STATUSES:
                return _error(422, "Status is not included in the list")
            if status is not None and status != found["status"]:
                state.statuspage_component_changes.append(
                    {"component_id": cid, "from": found["status"], "to": status,
                     "at": now_iso()})
                found.update(status=status, updated_at=now_iso())
            for key in ("name", "description"):
                if fields.get(key) is not None:
                    found[key] = fields[key]
            return JSONResponse(dict(found))

    return [Route(PREFIX, page, methods=["GET"]),
            Route(f"{PREFIX}/incidents", incidents, methods=["GET", "POST"]),
            Route(f"{PREFIX}/incidents/{{incident_id}}", incident, methods=["GET", "PATCH"]),
            Route(f"{PREFIX}/components", components, methods=["GET"]),
            Route(f"{PREFIX}/components/{{component_id}}", component,
                  methods=["GET", "PATCH"])]
