"""`POST /slack/interactions`: the Approve/Reject buttons of approval requests.

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

from firelane.errors import AlertRejected, ApprovalRefused, NotFound
from firelane.inputs import execution_context
from firelane.models import Approval
from firelane.registry import ActionContext
from firelane.store import Store
from flows.intake.bodies import read_bounded
from flows.runs.approvals import decide
from flows.runs.slack_approvals import APPROVE, REJECT, show_decision

__all__ = ["add_slack_routes", "parse_interaction"]

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


def add_slack_routes(app: FastAPI, store: Store,
                     signing_secret: str | Callable[[], str | None] | None,
                     clock: Clock | None = None, max_body_bytes: int = 1 << 20) -> None:
    """Mount the interaction endpoint (answers 404 when no signing secret is configured;
    bodies over `max_body_bytes` are refused before they are read whole). A callable
    `signing_secret` is asked on each request, so a configuration reload takes effect."""

    @app.post("/slack/interactions")
    async def interactions(request: Request) -> Any:
        """Slack's interactivity callback (Approve/Reject buttons)."""
        secret = signing_secret() if callable(signing_secret) else signing_secret
        verifier = SignatureVerifier(secret, clock or Clock()) if secret else None
        if verifier is None:
            return JSONResponse({"error": "Slack interactions are not configured: set "
                                 "slack_signing_secret in the intake configuration"}, 404)
        try:
            body = await read_bounded(request, max_body_bytes)
        except AlertRejected as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        if not verifier.is_valid(body, request.headers.get("x-slack-request-timestamp"),
                                 request.headers.get("x-slack-signature")):
            return JSONResponse({"error": "bad or stale X-Slack-Signature"}, 401)
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
