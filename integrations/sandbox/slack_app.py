"""The Slack Web API stand-in: every method answers POST and GET (slack_sdk sends GET for
`files.info` and `files.list`, POST for the rest)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import integrations.sandbox.limits as limits
from integrations.sandbox.common import read_body
from integrations.sandbox.slack_files import file_methods, upload_route
from integrations.sandbox.state import SandboxState

__all__ = ["slack_routes"]

SLACK = "/slack/api"
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _fail(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


def slack_routes(state: SandboxState, base_url: Callable[[], str]) -> list[Route]:
    """The routes, bound to `state`; `base_url` gives the sandbox's own URL (for uploads)."""

    def channel(args: dict[str, Any], key: str = "channel",
                user_dm: bool = False) -> dict[str, Any] | None:
        """The channel `args[key]` names. A user id names their DM with the app only where
        Slack allows it (`chat.postMessage`, `conversations.open`); elsewhere, as in Slack, a
        DM is named by its `D…` id and a user id is `channel_not_found`."""
        wanted = str(args.get(key, ""))
        if wanted in state.slack_users:
            if not user_dm:
                return None
            with state.lock:
                return state.slack_channels.setdefault(f"D{wanted}", {
                    "id": f"D{wanted}", "name": wanted, "is_im": True, "user": wanted,
                    "is_archived": False, "is_private": True, "created": int(time.time()),
                    "members": ["U0FIRELANE", wanted], "topic": {"value": ""},
                    "purpose": {"value": ""}, "pins": [], "bookmarks": []})
        return state.slack_channels.get(wanted)

    def ts() -> str:
        return f"{time.time():.6f}"

    async def auth_test(args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://sandbox.slack.local/", "team": "Firelane Sandbox",
                "user": "firelane", "team_id": "T0SANDBOX", "user_id": "U0FIRELANE",
                "bot_id": "B0FIRELANE"}

    async def create(args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("name", ""))
        if (refusal := limits.slack_channel_name(name)) is not None:
            return _fail(refusal)
        with state.lock:
            if any(c["name"] == name for c in state.slack_channels.values()):
                return _fail("name_taken")
            cid = f"C{state.next_id():08d}"
            state.arrived("slack.channel", name)
            state.slack_channels[cid] = {
                "id": cid, "name": name, "is_channel": True, "is_archived": False,
                "is_private": str(args.get("is_private", "0")) in ("1", "true", "True"),
                "created": int(time.time()), "members": ["U0FIRELANE"],
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
                "pins": [], "bookmarks": []}
        return {"ok": True, "channel": _public(state.slack_channels[cid])}

    async def list_(args: dict[str, Any]) -> dict[str, Any]:
        rows = [_public(c) for c in state.slack_channels.values()
                if not c["is_archived"] or str(args.get("exclude_archived")) not in ("1",
                                                                                      "true")]
        return {"ok": True, "channels": rows, "response_metadata": {"next_cursor": ""}}

    async def invite(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args)
        if found is None:
            return _fail("channel_not_found")
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if not users:
            return _fail("no_user")
        unknown = [u for u in users if u not in state.slack_users]
        if unknown:
            return _fail("user_not_found")
        with state.lock:
            new = [u for u in users if u not in found["members"]]
            if not new:
                return _fail("already_in_channel")
            found["members"].extend(new)
        return {"ok": True, "channel": _public(found)}

    async def set_topic(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args)
        if found is None:
            return _fail("channel_not_found")
        if (refusal := limits.slack_topic(str(args.get("topic", "")))) is not None:
            return _fail(refusal)
        found["topic"] = {"value": str(args.get("topic", "")), "creator": "U0FIRELANE",
                          "last_set": int(time.time())}
        return {"ok": True, "channel": _public(found)}

    async def info(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args)
        return {"ok": True, "channel": _public(found)} if found else _fail("channel_not_found")

    async def history(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args)
        if found is None:
            return _fail("channel_not_found")
        limit = int(args.get("limit", 100))
        rows = [m for m in state.slack_messages if m["channel"] == found["id"]
                and m.get("thread_ts", m["ts"]) == m["ts"]][::-1][:limit]
        meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        return {"ok": True, "messages": [_message(m, meta) for m in rows], "has_more": False,
                "pin_count": sum(1 for m in rows if m["pinned"]),
                "channel_actions_ts": None, "channel_actions_count": 0}

    async def replies(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args)
        if found is None:
            return _fail("channel_not_found")
        parent = str(args.get("ts", ""))
        rows = [m for m in state.slack_messages if m["channel"] == found["id"] and (
            m["ts"] == parent or m.get("thread_ts") == parent)]
        meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        return {"ok": True, "messages": [_message(m, meta) for m in rows], "has_more": False}

    async def archive(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args)
        if found is None:
            return _fail("channel_not_found")
        if found["is_archived"]:
            return _fail("already_archived")
        found["is_archived"] = True
        return {"ok": True}

    async def open_dm(args: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if len(users) != 1:
            return _fail("not_enough_users" if not users else "too_many_users")
        found = channel({"channel": users[0]}, user_dm=True)
        if found is None:
            return _fail("user_not_found")
        return {"ok": True, "channel": {"id": found["id"]}}

    async def post_message(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args, user_dm=True)
        if found is None:
            return _fail("channel_not_found")
        if found["is_archived"]:
            return _fail("is_archived")
        if not args.get("text") and not args.get("blocks"):
            return _fail("no_text")
        if (refusal := limits.slack_text(str(args.get("text") or ""))) is not None:
            return _fail(refusal)
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        with state.lock:
            message = {"type": "message", "channel": found["id"], "user": "U0FIRELANE",
                       "text": args.get("text", ""), "blocks": blocks or [], "ts": ts(),
                       "metadata": metadata, "pinned": False}
            if args.get("thread_ts"):
                message["thread_ts"] = str(args["thread_ts"])
            state.slack_messages.append(message)
        return {"ok": True, "channel": found["id"], "ts": message["ts"],
                "message": _message(message, with_metadata=False)}

    async def update(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args)
        if found is None:
            return _fail("channel_not_found")
        message = next((m for m in state.slack_messages if m["channel"] == found["id"]
                        and m["ts"] == str(args.get("ts", ""))), None)
        if message is None:
            return _fail("message_not_found")
        if message["user"] != "U0FIRELANE":
            return _fail("cant_update_message")
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        text = str(args.get("text") or "")
        if not text and not blocks:
            return _fail("no_text")
        if (refusal := limits.slack_text(text)) is not None:
            return _fail(refusal)
        with state.lock:
            message["text"] = text
            if blocks is not None:
                message["blocks"] = blocks
            message["edited"] = {"user": "U0FIRELANE", "ts": ts()}
        return {"ok": True, "channel": found["id"], "ts": message["ts"], "text": text,
                "message": _message(message, with_metadata=False)}

    async def react(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args)
        if found is None:
            return _fail("channel_not_found")
        message = next((m for m in state.slack_messages if m["channel"] == found["id"]
                        and m["ts"] == str(args.get("timestamp", ""))), None)
        if message is None:
            return _fail("message_not_found")
        name = str(args.get("name", ""))
        with state.lock:
            reactions = message.setdefault("reactions", [])
            existing = next((r for r in reactions if r["name"] == name), None)
            if existing is not None:
                return _fail("already_reacted")
            reactions.append({"name": name, "users": ["U0FIRELANE"], "count": 1})
        return {"ok": True}

    async def pin(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args)
        if found is None:
            return _fail("channel_not_found")
        msg = next((m for m in state.slack_messages if m["channel"] == found["id"]
                    and m["ts"] == args.get("timestamp")), None)
        if msg is None:
            return _fail("message_not_found")
        if msg["pinned"]:
            return _fail("already_pinned")
        msg["pinned"] = True
        return {"ok": True}

    async def bookmark(args: dict[str, Any]) -> dict[str, Any]:
        found = channel(args, "channel_id")
        if found is None:
            return _fail("channel_not_found")
        if not args.get("title") or args.get("type") != "link" or not args.get("link"):
            return _fail("invalid_arguments")
        with state.lock:
            mark = {"id": f"Bk{state.next_id():08d}", "channel_id": found["id"],
                    "title": args["title"], "link": args["link"], "type": "link",
                    "emoji": args.get("emoji", ""), "date_created": int(time.time())}
            found["bookmarks"].append(mark)
        return {"ok": True, "bookmark": mark}

    async def lookup_by_email(args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email", "")).lower()
        user = next((u for u in state.slack_users.values()
                     if u["profile"]["email"].lower() == email), None)
        return {"ok": True, "user": user} if user else _fail("users_not_found")

    async def user_info(args: dict[str, Any]) -> dict[str, Any]:
        user = state.slack_users.get(str(args.get("user", "")))
        return {"ok": True, "user": user} if user else _fail("user_not_found")

    methods: dict[str, Handler] = {
        "auth.test": auth_test, "conversations.create": create, "conversations.list": list_,
        "conversations.invite": invite, "conversations.setTopic": set_topic,
        "conversations.replies": replies,
        "conversations.info": info, "conversations.history": history,
        "conversations.archive": archive, "conversations.open": open_dm,
        "chat.postMessage": post_message,
        "chat.update": update, "pins.add": pin,
        "bookmarks.add": bookmark, "users.lookupByEmail": lookup_by_email,
        "users.info": user_info, "reactions.add": react, **file_methods(state, base_url),
    }

    async def dispatch(request: Request) -> Response:
        method = request.path_params["method"]
        handler = methods.get(method)
        if handler is None:
            return JSONResponse(_fail("unknown_method"), status_code=404)
        if not request.headers.get("authorization", "").startswith("Bearer xox"):
            return JSONResponse(_fail("not_authed"))
        args = {**dict(request.query_params), **await read_body(request)}
        return JSONResponse(await handler(args))

    return [Route(f"{SLACK}/{{method}}", dispatch, methods=["POST", "GET"]),
            upload_route(state)]


def _message(stored: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    """A message as Slack shows it: `pinned_to` lists channels; metadata only on request."""
    out = {k: v for k, v in stored.items() if k not in ("channel", "pinned", "metadata")}
    if stored["pinned"]:
        out["pinned_to"] = [stored["channel"]]
    if with_metadata and stored.get("metadata"):
        out["metadata"] = stored["metadata"]
    return out


def _public(found: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if k not in ("pins", "bookmarks")} | {
        "num_members": len(found["members"])}
