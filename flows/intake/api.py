"""The incident HTTP API on the intake, `/api/v1/`: list, declare, read and change incidents,
add notes. Every route needs an API token (`Authorization: Bearer flt_...`, made by `firelane
tokens create`): `read` to read, `write` to change. A change is made by the token's owner,
through `api`, verified (the token proves who it speaks for), with `firelane.commands`, the same
implementation the CLI and the Prefect UI use.

`GET /incidents/{ref}` (the route older clients use) needs a read token too: incident numbers
are sequential, so an open route would let anyone enumerate every incident.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from firelane.commands import Actor, Changed, IncidentCommands, allowed_next
from firelane.errors import (
    ApprovalRefused,
    ConfigError,
    InvalidTransition,
    NotFound,
    RunbookError,
    TokenRefused,
)
from firelane.inputs import new_execution
from firelane.links import incident_links
from firelane.loader import find_runbook, load_runbook
from firelane.models import TITLE_MAX, Incident, IncidentDraft, IncidentStatus, Role, Severity
from firelane.runbook import LoadedRunbook
from firelane.store import ApiToken, Store
from firelane.store.tokens import Scope

__all__ = ["Reader", "Writer", "add_api_routes", "incident_view", "visible"]

_BEARER = HTTPBearer(auto_error=False, description="An API token from `firelane tokens create`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


class DeclareBody(BaseModel):
    """A new incident."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    severity: Severity
    service: str = Field(min_length=1, max_length=200)
    description: str = ""
    commander: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    private: bool = Field(default=False, description="A security incident (needs a token "
                          "with private access)")
    runbook: str | None = Field(default=None, description="Queue this runbook for the "
                                "responders")


class ChangeBody(BaseModel):
    """Changes to apply, in this order: status, severity, roles. `reason` goes with the status
    and severity changes. Acknowledging makes the token's owner commander when none is set."""

    model_config = ConfigDict(extra="forbid")
    status: IncidentStatus | None = None
    severity: Severity | None = None
    reason: str = ""
    commander: str | None = None
    communicator: str | None = None
    investigators: list[str] = Field(default_factory=list, description="People to add")


class DecisionBody(BaseModel):
    """A decision on a step waiting for approval."""

    model_config = ConfigDict(extra="forbid")
    approve: bool
    reason: str = ""


class NoteBody(BaseModel):
    """A note for the timeline."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)


def visible(store: Store, ref: str, token: ApiToken) -> Incident:
    """The incident `ref`, if `token` may see it: a private incident is "not found" for a
    token without private access (its existence is not told either)."""
    found = store.get_incident(ref)
    if found.private and not token.private_access:
        raise NotFound(f"no incident {ref!r} (give its number, INC-number or id)")
    return found


def incident_view(store: Store, found: Incident) -> dict[str, Any]:
    """An incident with its links, alerts, executions and timeline (what `GET` answers)."""
    events = store.timeline(found.id)
    return {**found.model_dump(mode="json"),
            "sandbox_links": [v.kind for v in incident_links(found, events) if v.sandbox],
            "marks": list(store.run_marks([found.id])[found.id]),
            "alerts": [a.model_dump(mode="json", exclude={"raw"})
                       for a in store.alerts_of(found.id)],
            "executions": [e.model_dump(mode="json", exclude={"runbook_source"})
                           for e in store.list_executions(found.id)],
            "timeline": [e.model_dump(mode="json") for e in events]}


async def _check(request: Request, credentials: HTTPAuthorizationCredentials | None,
                 scope: Scope) -> ApiToken:
    if credentials is None:
        raise TokenRefused("this needs an API token: `Authorization: Bearer flt_...` (make one "
                           "with `firelane tokens create`)")
    store: Store = request.app.state.firelane_store
    return await asyncio.to_thread(store.check_token, credentials.credentials, scope)


async def _reader(request: Request, credentials: Credentials) -> ApiToken:
    return await _check(request, credentials, "read")


async def _writer(request: Request, credentials: Credentials) -> ApiToken:
    return await _check(request, credentials, "write")


Reader = Annotated[ApiToken, Depends(_reader)]
Writer = Annotated[ApiToken, Depends(_writer)]


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def add_api_routes(app: FastAPI, store: Store, syncing: set[asyncio.Task[int]],
                   runbooks_dir: Path, start: Callable[[str], None] | None = None,
                   commands: IncidentCommands | None = None) -> None:
    """Mount the incident API. A status change brings the page and ticket in step in the
    background (tasks kept in `syncing`; the responders' sweep takes over if this process
    dies first). Declaring with a `runbook` records a pending execution of it (from
    `runbooks_dir`) and hands it to `start` (wake the responders, or run it here); without
    `start` this intake refuses to queue runbooks. `commands` (default: without runbooks)
    says which runbooks a severity change may start; what it starts goes to `start`."""
    cmds = commands or IncidentCommands(store)
    app.state.firelane_store = store

    mirroring: set[asyncio.Task[bool]] = set()

    def sync(incident_id: str) -> None:
        from flows.engine.lifecycle import drain

        task = asyncio.create_task(drain(store, incident_id))
        syncing.add(task)
        task.add_done_callback(syncing.discard)

    async def follow(incident_id: str, invite: list[str], severity: bool) -> bool:
        from flows.engine.severity import follow_severity
        from flows.engine.war_room import mirror_war_room

        if severity:
            await follow_severity(store, incident_id)
        return await mirror_war_room(store, incident_id, invite)

    def mirror(incident_id: str, invite: list[str], severity: bool = False) -> None:
        task = asyncio.create_task(follow(incident_id, invite, severity))
        mirroring.add(task)
        task.add_done_callback(mirroring.discard)

    @app.exception_handler(TokenRefused)
    async def refused(_: Request, exc: TokenRefused) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(NotFound)
    async def missing(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(InvalidTransition)
    async def conflict(_: Request, exc: InvalidTransition) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(ConfigError)
    async def invalid(_: Request, exc: ConfigError) -> JSONResponse:
        return _error(422, str(exc))

    @app.get("/incidents/{ref}", tags=["incidents"])
    async def legacy_incident(ref: str, token: Reader) -> Any:
        """An incident (the same as `GET /api/v1/incidents/{ref}`)."""
        found = await asyncio.to_thread(visible, store, ref, token)
        return await asyncio.to_thread(incident_view, store, found)

    @app.get("/api/v1/incidents", tags=["incidents"])
    async def list_incidents(
            token: Reader, status: Annotated[list[IncidentStatus] | None, Query()] = None,
            severity: Severity | None = None, service: str | None = None,
            open: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 50,
            offset: Annotated[int, Query(ge=0)] = 0) -> Any:
        """Incidents, newest first; `open=true`: the open ones, most severe then oldest
        first. Filters combine; page with `limit` and `offset`."""
        statuses = status or (list(IncidentStatus)[:3] if open else None)
        found = await asyncio.to_thread(store.find_incidents, statuses, severity, service,
                                        limit, offset, open, token.private_access)
        return {"incidents": [i.model_dump(mode="json") for i in found], "limit": limit,
                "offset": offset, "next_offset": offset + limit if len(found) == limit
                else None}

    @app.post("/api/v1/incidents", status_code=201, tags=["incidents"])
    async def declare(body: DeclareBody, token: Writer) -> Any:
        """Declare an incident (and queue `runbook` for the responders)."""
        draft = IncidentDraft.model_validate(body.model_dump(exclude={"runbook"}))
        by = Actor(token.owner, "api", verified=True)
        if draft.private and not token.private_access:
            raise TokenRefused(f"token {token.name!r} has no private access: it cannot "
                               "declare a private incident", status=403)
        loaded = None
        if body.runbook is not None:
            if start is None:
                raise ConfigError("this intake runs no responses, so it cannot queue a "
                                  "runbook: declare without `runbook`")
            loaded = next((r for r in cmds.runbooks if r.runbook.name == body.runbook), None) \
                or await asyncio.to_thread(_runbook, body.runbook, runbooks_dir)
        incident = await asyncio.to_thread(cmds.declare, draft, by)
        execution_id = None
        if loaded is not None and start is not None:
            execution = await asyncio.to_thread(store.create_execution, new_execution(
                loaded, incident, {}, for_responder=True))
            execution_id = execution.id
            start(execution_id)
        return {**incident.model_dump(mode="json"), "execution_id": execution_id}

    @app.get("/api/v1/incidents/{ref}", tags=["incidents"])
    async def show(ref: str, token: Reader) -> Any:
        """An incident with its links, alerts, executions and timeline."""
        found = await asyncio.to_thread(visible, store, ref, token)
        return await asyncio.to_thread(incident_view, store, found)

    @app.patch("/api/v1/incidents/{ref}", tags=["incidents"])
    async def change(ref: str, body: ChangeBody, token: Writer) -> Any:
        """Change status, severity or roles; each change once on the timeline."""
        by = Actor(token.owner, "api", verified=True)
        await asyncio.to_thread(visible, store, ref, token)
        done = await asyncio.to_thread(_apply, cmds, ref, body, by)
        if not done:
            raise ConfigError("nothing to change: give status, severity, commander, "
                              "communicator or investigators")
        incident = done[-1].incident
        if body.status is not None and done[0].changed:
            sync(incident.id)
        if any(c.changed for c in done):
            mirror(incident.id, [p for p in (body.commander, body.communicator,
                                             *body.investigators) if p],
                   severity=body.severity is not None)
        for execution_id in (x for c in done for x in c.executions):
            if start is not None:
                start(execution_id)
        return {**incident.model_dump(mode="json"), "allowed_next": allowed_next(incident),
                "changes": [{"changed": c.changed, "said": c.said} for c in done]}

    @app.post("/api/v1/incidents/{ref}/approvals/{step}", tags=["approvals"])
    async def approval(ref: str, step: str, body: DecisionBody, token: Writer) -> Any:
        """Approve or reject a step waiting for approval, as the token's owner (a verified
        decision: it counts where the step names `approvers`, if the owner is one)."""
        return await _decide(store, ref, step, body, token)

    @app.post("/api/v1/incidents/{ref}/notes", status_code=201, tags=["incidents"])
    async def note(ref: str, body: NoteBody, token: Writer) -> Any:
        """Add a note to the incident's timeline."""
        by = Actor(token.owner, "api", verified=True)
        await asyncio.to_thread(visible, store, ref, token)
        done = await asyncio.to_thread(cmds.note, ref, body.text, by)
        return {"incident": f"INC-{done.incident.number}", "said": done.said}


async def _decide(store: Store, ref: str, step: str, body: DecisionBody,
                  token: ApiToken) -> dict[str, Any]:
    from flows.runs.approvals import decide

    incident = await asyncio.to_thread(visible, store, ref, token)
    pending = [a for a in await asyncio.to_thread(store.approvals_for, incident.id, step)
               if a.status == "pending"]
    if not pending:
        raise NotFound(f"INC-{incident.number} step {step!r} has no pending approval")
    try:
        approval, won = await decide(store, pending[0], body.approve, token.owner, body.reason,
                                     how="api")
    except ApprovalRefused as exc:
        raise TokenRefused(str(exc), status=403) from exc
    if not won:
        raise InvalidTransition(f"too late: {step} was already {approval.status} by "
                                f"{approval.decided_by}")
    return {"incident": f"INC-{incident.number}", "step": step, "status": approval.status,
            "decided_by": approval.decided_by}


def _runbook(name: str, folder: Path) -> LoadedRunbook:
    try:
        return load_runbook(find_runbook(name, folder))
    except RunbookError as exc:
        raise ConfigError(f"runbook {name!r}: {exc}") from exc


def _apply(cmds: IncidentCommands, ref: str, body: ChangeBody, by: Actor) -> list[Changed]:
    done: list[Changed] = []
    if body.status is IncidentStatus.ACKNOWLEDGED:
        done.append(cmds.acknowledge(ref, by))
    elif body.status is not None:
        done.append(cmds.set_status(ref, body.status, by, body.reason))
    if body.severity is not None:
        done.append(cmds.set_severity(ref, body.severity, by, body.reason))
    for role, person in ((Role.COMMANDER, body.commander),
                         (Role.COMMUNICATOR, body.communicator),
                         *((Role.INVESTIGATOR, p) for p in body.investigators)):
        if person is not None:
            done.append(cmds.assign(ref, role, person, by))
    return done
