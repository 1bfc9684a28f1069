"""`POST /slack/interactions`: the Approve/Reject buttons of approval requests, and the "Add to
timeline" message shortcut (callback id `add_to_timeline`), which records a war-room message as
a note on its incident's timeline.

Slack signs every request (`X-Slack-Signature`, v0 HMAC-SHA256 over `v0:<timestamp>:<body>`
with the app's signing secret; requests older than 5 minutes are refused), so this is the one
path that proves who decided: the decision is recorded as `slack:<user id>`, and the request
message is replaced by the decision, without its buttons. With `approvers`
named, a user outside them is refused (and the refusal is on the timeline).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from slack_sdk.signature import Clock, SignatureVerifier

from firelane.commands import Actor, IncidentCommands
from firelane.errors import AlertRejected, ApprovalRefused, FirelaneError, NotFound
from firelane.inputs import execution_context
from firelane.models import Approval
from firelane.registry import ActionContext
from firelane.store import Store
from flows.intake.bodies import read_bounded
from flows.runs.approvals import decide
from flows.runs.slack_approvals import APPROVE, REJECT, show_decision

__all__ = ["ADD_TO_TIMELINE", "add_slack_routes", "add_to_timeline", "message_shortcut",
           "parse_interaction", "verified_body"]

log = logging.getLogger("firelane.intake")


def parse_interaction(body: bytes) -> tuple[str, str, str, str, str | None]:
    """(user id, user name, action id, value, channel id) of a `block_actions` payload;
    ValueError when the body is not one."""
    form = parse_qs(body.decode("utf-8"))
    if "payload" not in form:
        raise ValueError("no payload field: not an interaction (slash commands and events "
                         "are not handled here)")
    payload = json.loads(form["payload"][0])
    if payload.get("type") != "block_actions" or not payload.get("actions"):
        raise ValueError(f"not a block_actions payload (type {payload.get('type')!r})")
    user, first = payload["user"], payload["actions"][0]
    channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get(
        "channel_id")
    return (str(user["id"]), str(user.get("username") or user.get("name") or ""),
            str(first["action_id"]), str(first.get("value") or ""),
            str(channel) if channel else None)


ADD_TO_TIMELINE = "add_to_timeline"


def message_shortcut(body: bytes) -> tuple[str, str, str, str, str] | None:
    """(user id, user name, channel id, message text, message ts) of an "Add to timeline"
    message shortcut; None for any other payload."""
    try:
        form = parse_qs(body.decode("utf-8"))
        payload = json.loads(form["payload"][0])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
    if payload.get("type") != "message_action" or payload.get("callback_id") != ADD_TO_TIMELINE:
        return None
    user, message = payload.get("user") or {}, payload.get("message") or {}
    return (str(user.get("id", "")), str(user.get("username") or user.get("name") or ""),
            str((payload.get("channel") or {}).get("id", "")), str(message.get("text", "")),
            str(message.get("ts", "")))


def add_to_timeline(store: Store, user: str, name: str, channel: str, text: str,
                    ts: str) -> dict[str, Any]:
    """Record a war-room message as a note on its incident's timeline (the person who used
    the shortcut, verified by Slack's signature); answered to them only."""
    incident_id = store.incident_for_channel(channel) if channel else None
    if incident_id is None:
        return {"response_type": "ephemeral", "text": "Not added: this channel is no "
                "incident's war room"}
    by = Actor(name=f"@{name}" if name else f"slack:{user}", via="slack", verified=True,
               ref=user)
    try:
        done = IncidentCommands(store).note(incident_id, text, by)
    except FirelaneError as exc:
        return {"response_type": "ephemeral", "text": f"Not added: {exc}"}
    return {"response_type": "ephemeral", "text": f"Added to the timeline of "
            f"INC-{done.incident.number} (message {ts})"}


async def _approval_context(store: Store, approval: Approval, suffix: str) -> ActionContext:
    """A context with the Slack credentials (and sandbox flag) of the approval's runbook."""
    execution = await asyncio.to_thread(store.get_execution, approval.execution_id)
    incident = await asyncio.to_thread(store.get_incident, approval.incident_id)
    return execution_context(execution, incident, approval.step_id,
                             f"approval-{approval.id}-{suffix}")


async def _email(store: Store, approval: Approval, user: str) -> str | None:
    """The deciding user's email, through the Slack credentials of the approval's runbook."""
    from integrations.slack.actions import user_email

    try:
        return await user_email(user, await _approval_context(store, approval, "whois"))
    except Exception as exc:
        log.warning("could not read the email of Slack user %s: %s", user, exc)
        return None


SecretSource = str | Callable[[], str | None] | None


async def verified_body(request: Request, signing_secret: SecretSource, clock: Clock | None,
                        max_body_bytes: int) -> bytes | JSONResponse:
    """The request's body if Slack signed it with the signing secret in force (within 5
    minutes), else the answer to give: 404 when no secret is configured, 413 when too big,
    401 when the signature is bad or stale."""
    secret = signing_secret() if callable(signing_secret) else signing_secret
    if not secret:
        return JSONResponse({"error": "Slack is not configured: set slack_signing_secret in "
                             "the intake configuration"}, 404)
    try:
        body = await read_bounded(request, max_body_bytes)
    except AlertRejected as exc:
        return JSONResponse({"error": str(exc)}, exc.status)
    if not SignatureVerifier(secret, clock or Clock()).is_valid(
            body, request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature")):
        return JSONResponse({"error": "bad or stale X-Slack-Signature"}, 401)
    return body


def add_slack_routes(app: FastAPI, store: Store,
                     signing_secret: SecretSource,
                     clock: Clock | None = None, max_body_bytes: int = 1 << 20) -> None:
    """Mount the interaction endpoint (answers 404 when no signing secret is configured;
    bodies over `max_body_bytes` are refused before they are read whole). A callable
    `signing_secret` is asked on each request, so a configuration reload takes effect."""

    @app.post("/slack/interactions")
    async def interactions(request: Request) -> Any:
        """Slack's interactivity callback (Approve/Reject buttons)."""
        body = await verified_body(request, signing_secret, clock, max_body_bytes)
        if isinstance(body, JSONResponse):
            return body
        shortcut = message_shortcut(body)
        if shortcut is not None:
            return await asyncio.to_thread(add_to_timeline, store, *shortcut)
        try:
            user, name, action_id, approval_id, _ = parse_interaction(body)
        except (KeyError, ValueError, json.JSONDecodeError) as exc:
            return JSONResponse({"error": f"unreadable interaction payload: {exc}"}, 400)
        if action_id not in (APPROVE, REJECT):
            return {"text": "ignored: not a Firelane approval button"}
        try:
            approval = await asyncio.to_thread(store.get_approval, approval_id)
        except NotFound:
            return JSONResponse({"error": f"no approval {approval_id!r}"}, 404)
        aliases: tuple[str, ...] = ()
        if any("@" in a for a in approval.approvers):
            email = await _email(store, approval, user)
            aliases = (email,) if email else ()
        try:
            decided, won = await decide(store, approval, action_id == APPROVE, user,
                                        f"via Slack by @{name}" if name else "via Slack",
                                        how="slack", aliases=aliases)
        except ApprovalRefused as exc:
            return {"response_type": "ephemeral", "text": f"Not accepted: {exc}"}
        if not won:
            return {"response_type": "ephemeral", "text": f"Too late: {decided.step_id} was "
                    f"already {decided.status} by {decided.decided_by}"}
        text = f"{decided.step_id} {decided.status} by <@{user}>"
        await show_decision(store, decided, await _approval_context(store, decided, "decided"))
        return {"response_type": "in_channel", "text": text}
