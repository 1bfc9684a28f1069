"""The Jira REST v2 stand-in, as the `jira` client uses it (CLIENTS.md §3)."""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import integrations.sandbox.limits as limits
from integrations.sandbox.common import now_iso, read_body
from integrations.sandbox.state import SandboxState

__all__ = ["jira_routes"]

API = "/jira/rest/api/2"
WORKFLOW: dict[str, list[tuple[str, str]]] = {
    "To Do": [("21", "In Progress"), ("31", "Done")],
    "In Progress": [("31", "Done"), ("11", "To Do")],
    "Done": [("11", "To Do")],
}
LINK_TYPES = [{"id": "10000", "name": "Relates", "inward": "relates to",
               "outward": "relates to"},
              {"id": "10001", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"}]
FIELDS = ["summary", "description", "labels", "status", "project", "issuetype", "duedate",
          "assignee", "created", "updated", "comment", "attachment", "issuelinks"]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"errorMessages": [message], "errors": {}}, status_code=status)


PRIORITIES = ({"id": "1", "name": "Highest"}, {"id": "2", "name": "High"},
              {"id": "3", "name": "Medium"}, {"id": "4", "name": "Low"},
              {"id": "5", "name": "Lowest"})


def _priority(value: Any) -> dict[str, str] | str:
    """The site's priority `value` names (by id or name), or Jira's own refusal text."""
    if not isinstance(value, dict):
        return "Specify the Priority (id or name) in the string format"
    for known in PRIORITIES:
        if value.get("id") == known["id"] or str(value.get("name", "")).lower() == \
                known["name"].lower():
            return dict(known)
    return "The priority selected is invalid."


def _view(issue: dict[str, Any], base: str) -> dict[str, Any]:
    fields = {k: v for k, v in issue["fields"].items()}
    fields["comment"] = {"comments": issue["comments"], "total": len(issue["comments"]),
                         "maxResults": len(issue["comments"]), "startAt": 0}
    fields["attachment"] = issue["attachments"]
    fields["status"] = {"name": issue["status"], "id": issue["status"]}
    return {"id": issue["id"], "key": issue["key"], "self": f"{base}/issue/{issue['id']}",
            "fields": fields}


_CLAUSE = re.compile(
    r"^(?P<field>\w+)\s*(?P<op>=|!=|<=|>=|<|>|\bnot in\b|\bin\b|~)\s*(?P<value>.+)$", re.I)


def _values(raw: str) -> list[str]:
    raw = raw.strip()
    if raw.startswith("("):
        raw = raw.strip("()")
    return [v.strip().strip('"').strip("'") for v in raw.split(",") if v.strip()]


def _match(issue: dict[str, Any], clause: str) -> bool:
    m = _CLAUSE.match(clause.strip())
    if m is None:
        raise ValueError(f"unsupported JQL clause {clause!r}")
    field, op, values = m["field"].lower(), m["op"].lower(), _values(m["value"])
    if field == "project":
        actual: list[str] = [issue["fields"]["project"]["key"]]
    elif field == "labels":
        actual = issue["fields"].get("labels", [])
    elif field == "status":
        actual = [issue["status"]]
    elif field == "duedate":
        due = str(issue["fields"].get("duedate") or "") or None
        if due is None:
            return False
        target = time.strftime("%Y-%m-%d") if values[0].lower() in ("now()", "now") else values[0]
        return bool({"<": due < target, "<=": due <= target, ">": due > target,
                     ">=": due >= target, "=": due == target}.get(op, False))
    elif field == "key":
        actual = [issue["key"]]
    else:
        raise ValueError(f"unsupported JQL field {field!r}")
    hit = any(v.lower() in (a.lower() for a in actual) for v in values)
    return not hit if op in ("!=", "not in") else hit


def _search(state: SandboxState, jql: str) -> list[dict[str, Any]]:
    jql = re.split(r"\border by\b", jql, flags=re.I)[0]
    clauses = [c for c in re.split(r"\s+and\s+", jql, flags=re.I) if c.strip()]
    return [i for i in state.visible_issues() if all(_match(i, c) for c in clauses)]


def jira_routes(state: SandboxState) -> list[Route]:
    """The routes, bound to `state`."""

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/") + API

    def issue_or_404(key: str) -> dict[str, Any] | None:
        found = state.jira_issues.get(key)
        if found is None:
            found = next((i for i in state.jira_issues.values() if i["id"] == key), None)
        return found

    async def server_info(request: Request) -> Response:
        return JSONResponse({"baseUrl": str(request.base_url) + "jira", "version": "9.12.0",
                             "versionNumbers": [9, 12, 0], "deploymentType": state.jira_mode,
                             "buildNumber": 9120000, "serverTitle": "Firelane sandbox Jira"})

    async def myself(request: Request) -> Response:
        return JSONResponse({"name": "firelane", "accountId": "5b10a2844c20165700ede21g",
                             "displayName": "Firelane", "emailAddress": "firelane@example.com",
                             "active": True})

    async def fields(request: Request) -> Response:
        return JSONResponse([{"id": f, "key": f, "name": f.capitalize(), "custom": False,
                              "schema": {"type": "string"}} for f in FIELDS])

    async def project(request: Request) -> Response:
        key = request.path_params["key"]
        pid = state.jira_projects.get(key) or next(
            (k for k, v in state.jira_projects.items() if v == key), None)
        if pid is None:
            return _error(404, f"No project could be found with key '{key}'.")
        real_key = key if key in state.jira_projects else pid
        return JSONResponse({"id": state.jira_projects[real_key], "key": real_key,
                             "name": real_key.title(), "issueTypes": [{"name": "Incident"},
                                                                      {"name": "Task"}]})

    async def create_issue(request: Request) -> Response:
        fields_in = (await read_body(request)).get("fields", {})
        proj = fields_in.get("project", {})
        key = proj.get("key") or next((k for k, v in state.jira_projects.items()
                                       if v == str(proj.get("id"))), None)
        if key not in state.jira_projects:
            return _error(400, "project: valid project is required")
        if not fields_in.get("summary"):
            return JSONResponse({"errorMessages": [], "errors": {
                "summary": "You must specify a summary of the issue."}}, status_code=400)
        if (refusal := limits.jira_summary(fields_in["summary"])) is not None:
            return JSONResponse(refusal, status_code=400)
        with state.lock:
            number = sum(1 for i in state.jira_issues.values()
                         if i["fields"]["project"]["key"] == key) + 1
            issue_id = str(10000 + state.next_id())
            issue_key = f"{key}-{number}"
            stored = {k: v for k, v in fields_in.items()}
            stored.setdefault("priority", dict(PRIORITIES[2]))
            stored["project"] = {"key": key, "id": state.jira_projects[key]}
            stored.setdefault("labels", [])
            stored["created"] = stored["updated"] = now_iso()
            state.arrived("jira.issue", str(fields_in.get("summary")))
            state.jira_issues[issue_key] = {
                "id": issue_id, "key": issue_key, "fields": stored, "status": "To Do",
                "comments": [], "attachments": [], "remotelinks": [], "transitions": [],
                "_indexed_at": time.time()}
        return JSONResponse({"id": issue_id, "key": issue_key,
                             "self": f"{base(request)}/issue/{issue_id}"}, status_code=201)

    async def issue(request: Request) -> Response:
        found = issue_or_404(request.path_params["key"])
        if found is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        if request.method == "PUT":
            update = (await read_body(request)).get("fields", {})
            refused = sorted(set(update) & {"status", "resolution"})
            if refused:
                return JSONResponse({"errorMessages": [], "errors": {
                    f: f"Field '{f}' cannot be set. It is not on the appropriate screen, or "
                       "unknown." for f in refused}}, status_code=400)
            if "summary" in update and (refusal := limits.jira_summary(update["summary"])):
                return JSONResponse(refusal, status_code=400)
            if "priority" in update:
                chosen = _priority(update["priority"])
                if isinstance(chosen, str):
                    return JSONResponse({"errorMessages": [], "errors": {"priority": chosen}},
                                        status_code=400)
                update["priority"] = chosen
            with state.lock:
                found["fields"].update(update)
                found["fields"]["updated"] = now_iso()
            return Response(status_code=204)
        view = _view(found, base(request))
        if "changelog" in request.query_params.get("expand", ""):
            view["changelog"] = {"startAt": 0, "total": len(found["transitions"]), "histories": [
                {"id": str(n), "created": t["at"], "author": {"displayName": "Firelane"},
                 "items": [{"field": "status", "fromString": t["from"], "toString": t["to"]}]}
                for n, t in enumerate(found["transitions"])]}
        return JSONResponse(view)

    async def comments(request: Request) -> Response:
        found = issue_or_404(request.path_params["key"])
        if found is None:
            return _error(404, "Issue does not exist")
        if request.method == "GET":
            return JSONResponse({"comments": found["comments"], "startAt": 0,
                                 "maxResults": 1000, "total": len(found["comments"])})
        body = (await read_body(request)).get("body")
        if not isinstance(body, str) or not body:
            return _error(400, "Comment body can not be empty!")
        with state.lock:
            comment = {"id": str(state.next_id()), "body": body, "created": now_iso(),
                       "author": {"name": "firelane", "displayName": "Firelane"},
                       "self": f"{base(request)}/issue/{found['id']}/comment"}
            found["comments"].append(comment)
        return JSONResponse(comment, status_code=201)

    async def transitions(request: Request) -> Response:
        found = issue_or_404(request.path_params["key"])
        if found is None:
            return _error(404, "Issue does not exist")
        available = WORKFLOW[found["status"]]
        if request.method == "GET":
            return JSONResponse({"transitions": [{"id": tid, "name": to, "to": {"name": to}}
                                                 for tid, to in available]})
        wanted = str((await read_body(request)).get("transition", {}).get("id"))
        target = next((to for tid, to in available if tid == wanted), None)
        if target is None:
            return _error(400, f"Transition id '{wanted}' is not valid for this issue.")
        with state.lock:
            found["transitions"].append({"from": found["status"], "to": target,
                                         "at": now_iso()})
            found["status"] = target
        return Response(status_code=204)

    async def search(request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(await read_body(request))
        try:
            hits = _search(state, str(params.get("jql", "")))
        except ValueError as exc:
            return _error(400, str(exc))
        start, size = int(params.get("startAt", 0)), int(params.get("maxResults", 50))
        page = [_view(i, base(request)) for i in hits[start:start + size]]
        body: dict[str, Any] = {"issues": page, "maxResults": size}
        if request.url.path.endswith("/jql"):
            body["isLast"] = start + size >= len(hits)
        else:
            body.update({"startAt": start, "total": len(hits)})
        return JSONResponse(body)

    async def link_types(request: Request) -> Response:
        return JSONResponse({"issueLinkTypes": LINK_TYPES})

    async def issue_link(request: Request) -> Response:
        body = await read_body(request)
        name = body.get("type", {}).get("name")
        inward, outward = (body.get(k, {}).get("key") for k in ("inwardIssue", "outwardIssue"))
        if name not in {t["name"] for t in LINK_TYPES}:
            return _error(404, f"No issue link type with name '{name}' found.")
        if issue_or_404(str(inward)) is None or issue_or_404(str(outward)) is None:
            return _error(404, "Issue does not exist")
        with state.lock:
            state.jira_links.append({"type": name, "inward": inward, "outward": outward})
        return Response(status_code=201)

    async def attachments(request: Request) -> Response:
        found = issue_or_404(request.path_params["key"])
        if found is None:
            return _error(404, "Issue does not exist")
        if request.headers.get("x-atlassian-token") != "no-check":
            return _error(403, "XSRF check failed")
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error(400, "no file in the multipart body")
        data = await upload.read()
        with state.lock:
            meta = {"id": str(state.next_id()), "filename": upload.filename, "size": len(data),
                    "mimeType": upload.content_type or "application/octet-stream",
                    "created": now_iso()}
            meta["content"] = f"{base(request)}/attachment/content/{meta['id']}"
            found["attachments"].append(meta)
        return JSONResponse([meta])

    async def remotelinks(request: Request) -> Response:
        found = issue_or_404(request.path_params["key"])
        if found is None:
            return _error(404, "Issue does not exist")
        if request.method == "GET":
            return JSONResponse(found["remotelinks"])
        body = await read_body(request)
        with state.lock:
            link = {"id": state.next_id(), "object": body.get("object", {})}
            found["remotelinks"].append(link)
        return JSONResponse({"id": link["id"], "self": f"{base(request)}/remotelink"},
                            status_code=201)

    async def applinks(request: Request) -> Response:
        return Response(status_code=404)

    return [
        Route(f"{API}/serverInfo", server_info),
        Route(f"{API}/myself", myself),
        Route(f"{API}/field", fields),
        Route(f"{API}/project/{{key}}", project),
        Route(f"{API}/issue", create_issue, methods=["POST"]),
        Route(f"{API}/issue/{{key}}", issue, methods=["GET", "PUT"]),
        Route(f"{API}/issue/{{key}}/comment", comments, methods=["GET", "POST"]),
        Route(f"{API}/issue/{{key}}/transitions", transitions, methods=["GET", "POST"]),
        Route(f"{API}/issue/{{key}}/attachments", attachments, methods=["POST"]),
        Route(f"{API}/issue/{{key}}/remotelink", remotelinks, methods=["GET", "POST"]),
        Route(f"{API}/search", search, methods=["GET", "POST"]),
        Route(f"{API}/search/jql", search, methods=["GET", "POST"]),
        Route(f"{API}/issueLinkType", link_types),
        Route(f"{API}/issueLink", issue_link, methods=["POST"]),
        Route("/jira/rest/applinks/latest/listApplicationlinks", applinks),
    ]
