"""The PagerDuty stand-in: Events v2 `/v2/enqueue` and the REST v2 calls the integration uses.

As PagerDuty documents it: a trigger with the dedup key of a resolved incident opens a new
incident (a resolved one is never re-opened); acknowledge and resolve apply only to an open
incident with that key and only through the routing key that triggered it (else dropped)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import integrations.sandbox.limits as limits
from integrations.sandbox.common import now_iso, read_body
from integrations.sandbox.state import SandboxState

__all__ = ["pagerduty_routes"]

PD = "/pagerduty"


def _error(status: int, message: str, errors: list[str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "code": 2001,
                                   "errors": errors or []}}, status_code=status)


def _user_ref(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "type": "user_reference", "summary": user["summary"],
            "self": f"https://api.pagerduty.com/users/{user['id']}",
            "html_url": f"https://sandbox.pagerduty.local/users/{user['id']}"}


def _requester_of(users: dict[str, dict[str, Any]], email: str) -> dict[str, Any]:
    """The user reference PagerDuty puts on a note: the user whose email is the `From`
    header (an API caller without one shows as the API user)."""
    for user in users.values():
        if email and user.get("email") == email:
            return _user_ref(user)
    return {"id": "PAPIUSR", "type": "user_reference", "summary": email or "API",
            "self": "https://api.pagerduty.com/users/PAPIUSR",
            "html_url": "https://sandbox.pagerduty.local/users/PAPIUSR"}


def _public(incident: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in incident.items() if not k.startswith("_")}


def pagerduty_routes(state: SandboxState) -> list[Route]:
    """The routes, bound to `state`."""

    def log(incident: dict[str, Any], kind: str, summary: str,
            agent: dict[str, Any] | None = None, **extra: Any) -> None:
        state.pd_log_entries.append({
            "id": f"R{state.next_id():06d}", "type": f"{kind}_log_entry",
            "summary": summary, "created_at": now_iso(),
            "incident": {"id": incident["id"], "type": "incident_reference"},
            "agent": agent or {"type": "service_reference", "id": incident["service"]["id"]},
            **extra})

    def open_incident(title: str, dedup_key: str, service_id: str, urgency: str,
                      details: dict[str, Any], routing_key: str | None = None,
                      ) -> dict[str, Any]:
        number = state.next_id()
        incident: dict[str, Any] = {
                    "id": f"Q{number:06d}", "type": "incident", "incident_number": number,
                    "title": title, "status": "triggered", "urgency": urgency,
                    "incident_key": dedup_key, "created_at": now_iso(),
                    "service": {"id": service_id, "type": "service_reference"},
                    "html_url": f"https://sandbox.pagerduty.local/incidents/Q{number:06d}",
                    "notes": [], "details": details, "_routing_key": routing_key}
        state.pd_incidents[incident["id"]] = incident
        state.arrived("pagerduty.incident", title)
        log(incident, "trigger", f"Triggered: {title}")
        for entry in (e for e in state.pd_oncall if e["level"] == 1):
            user = state.pd_users[entry["user"]]
            log(incident, "notify", f"Notified {user['summary']} by email",
                user=_user_ref(user))
        return incident

    def by_key(key: str) -> dict[str, Any] | None:
        return next((i for i in state.pd_incidents.values() if i["incident_key"] == key
                     and i["status"] != "resolved"), None) or next(
            (i for i in state.pd_incidents.values() if i["incident_key"] == key), None)

    def set_status(incident: dict[str, Any], status: str, who: dict[str, Any] | None) -> None:
        if incident["status"] == status or incident["status"] == "resolved":
            return
        incident["status"] = status
        verb = {"acknowledged": "acknowledge", "resolved": "resolve"}[status]
        log(incident, verb, f"{status.title()} by {who['summary'] if who else 'API'}",
            _user_ref(who) if who else None)

    async def enqueue(request: Request) -> Response:
        body = await read_body(request)
        action, key = body.get("event_action"), body.get("dedup_key")
        if not body.get("routing_key") or action not in ("trigger", "acknowledge", "resolve"):
            return JSONResponse({"status": "invalid event", "message": "Event object is "
                                 "invalid", "errors": ["'routing_key' and a valid "
                                                       "'event_action' are required"]},
                                status_code=400)
        if (refusal := limits.pagerduty_event(body)) is not None:
            return JSONResponse(refusal, status_code=400)
        with state.lock:
            if action == "trigger":
                payload = body.get("payload") or {}
                if not payload.get("summary") or not payload.get("source") or \
                        payload.get("severity") not in ("critical", "error", "warning", "info"):
                    return JSONResponse({"status": "invalid event", "message": "Event object "
                                         "is invalid", "errors": ["payload.summary, source "
                                                                  "and severity are required"]},
                                        status_code=400)
                key = key or f"dk{state.next_id()}"
                existing = by_key(key)
                if existing is None or existing["status"] == "resolved":
                    open_incident(payload["summary"], key, f"SVC-{body['routing_key'][:6]}",
                                  "high" if payload["severity"] in ("critical", "error")
                                  else "low", payload.get("custom_details") or {},
                                  body["routing_key"])
            else:
                if not key:
                    return JSONResponse({"status": "invalid event", "message": "dedup_key is "
                                         "required", "errors": []}, status_code=400)
                found = by_key(key)
                if found is not None and found.get("_routing_key") not in (
                        None, body["routing_key"]):
                    found = None
                if found is not None:
                    set_status(found, "acknowledged" if action == "acknowledge" else
                               "resolved", None)
        return JSONResponse({"status": "success", "message": "Event processed",
                             "dedup_key": key}, status_code=202)

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization", "").startswith("Token token=")

    async def incidents(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized")
        if request.method == "GET":
            key = request.query_params.get("incident_key")
            rows = [i for i in state.pd_incidents.values()
                    if key is None or i["incident_key"] == key]
            return JSONResponse({"incidents": [_public(i) for i in rows], "limit": 100,
                                 "offset": 0,
                                 "more": False})
        if not request.headers.get("from"):
            return _error(400, "Invalid Input Provided", ["From header is required"])
        body = (await read_body(request)).get("incident", {})
        if not body.get("title") or not body.get("service", {}).get("id"):
            return _error(400, "Invalid Input Provided", ["title and service are required"])
        with state.lock:
            key = body.get("incident_key") or f"ik{state.next_id()}"
            existing = by_key(key)
            if existing is not None and existing["status"] != "resolved":
                return _error(400, "Open incident with matching dedup key already exists on "
                              "this service", [f"incident_key {key}"])
            incident = open_incident(body["title"], key, body["service"]["id"],
                                     body.get("urgency", "high"), {})
        return JSONResponse({"incident": _public(incident)}, status_code=201)

    async def incident(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized")
        found = state.pd_incidents.get(request.path_params["id"])
        if found is None:
            return _error(404, "Not Found")
        if request.method == "PUT":
            change = (await read_body(request)).get("incident", {})
            status, urgency = change.get("status"), change.get("urgency")
            if status is None and urgency is None:
                return _error(400, "Invalid Input Provided", ["status or urgency is required"])
            if status is not None and status not in ("acknowledged", "resolved"):
                return _error(400, "Invalid Input Provided", ["status"])
            if urgency is not None and urgency not in ("high", "low"):
                return _error(400, "Invalid Input Provided", ["urgency must be high or low"])
            email = request.headers.get("from", "")
            who = next((u for u in state.pd_users.values() if u["email"] == email), None)
            with state.lock:
                if status is not None:
                    set_status(found, status, who)
                if urgency is not None and urgency != found["urgency"]:
                    found["urgency"] = urgency
                    log(found, "urgency_change", f"Urgency changed to {urgency}")
        return JSONResponse({"incident": _public(found)})

    async def notes(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized")
        found = state.pd_incidents.get(request.path_params["id"])
        if found is None:
            return _error(404, "Not Found")
        if request.method == "GET":
            return JSONResponse({"notes": found["notes"]})
        content = (await read_body(request)).get("note", {}).get("content")
        if not content:
            return _error(400, "Invalid Input Provided", ["content is required"])
        with state.lock:
            note = {"id": f"N{state.next_id():06d}", "content": content,
                    "created_at": now_iso(),
                    "user": _requester_of(state.pd_users, request.headers.get("from", ""))}
            found["notes"].append(note)
            log(found, "annotate", f"Note added: {content[:60]}")
        return JSONResponse({"note": note})

    async def log_entries(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized")
        incident_id = request.path_params["id"]
        if incident_id not in state.pd_incidents:
            return _error(404, "Not Found")
        limit = int(request.query_params.get("limit", 25))
        offset = int(request.query_params.get("offset", 0))
        entries = [e for e in state.pd_log_entries if e["incident"]["id"] == incident_id]
        return JSONResponse({"log_entries": entries[offset:offset + limit], "limit": limit,
                             "offset": offset, "more": offset + limit < len(entries),
                             "total": None})

    async def oncalls(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized")
        policies = request.query_params.getlist("escalation_policy_ids[]")
        rows = [{"user": {**state.pd_users[e["user"]], "type": "user_reference"},
                 "escalation_level": e["level"],
                 "escalation_policy": {"id": e["escalation_policy"],
                                       "type": "escalation_policy_reference"},
                 "schedule": {"id": "PSCHED01", "type": "schedule_reference",
                              "summary": "Primary on-call"},
                 "start": now_iso(), "end": now_iso()}
                for e in state.pd_oncall if not policies or e["escalation_policy"] in policies]
        return JSONResponse({"oncalls": rows, "limit": 100, "offset": 0, "more": False,
                             "total": None})

    async def user(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized")
        found = state.pd_users.get(request.path_params["id"])
        return JSONResponse({"user": found}) if found else _error(404, "Not Found")

    return [
        Route(f"{PD}/v2/enqueue", enqueue, methods=["POST"]),
        Route(f"{PD}/incidents", incidents, methods=["GET", "POST"]),
        Route(f"{PD}/incidents/{{id}}", incident, methods=["GET", "PUT"]),
        Route(f"{PD}/incidents/{{id}}/notes", notes, methods=["GET", "POST"]),
        Route(f"{PD}/incidents/{{id}}/log_entries", log_entries),
        Route(f"{PD}/oncalls", oncalls),
        Route(f"{PD}/users/{{id}}", user),
    ]
