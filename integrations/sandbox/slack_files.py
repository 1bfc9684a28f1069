"""The Slack stand-in's files: the external upload flow (`files.getUploadURLExternal`, the
upload URL, `files.completeUploadExternal`) and the reads that find a file again
(`files.info`, `files.list`). As in Slack, a file whose upload was never completed is not
found; each completion shares the file again (a repeated completion shows as a second share,
so a client that repeats it is caught). A share is a message in the channel, as in Slack: the
initial comment as its text, the file in its `files`."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.sandbox.state import SandboxState

__all__ = ["file_methods", "upload_route"]

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _fail(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


def _public(state: SandboxState, stored: dict[str, Any]) -> dict[str, Any]:
    """A file as Slack shows it: public channels in `channels`, private ones in `groups`,
    DMs in `ims`, and `shares` by channel."""
    out = {k: v for k, v in stored.items()
           if k not in ("bytes", "channels", "share_ts", "length")}
    kinds: dict[str, list[str]] = {"channels": [], "groups": [], "ims": []}
    shares: dict[str, dict[str, list[dict[str, str]]]] = {"public": {}, "private": {}}
    for cid, ts in zip(stored["channels"], stored.get("share_ts", []), strict=True):
        found = state.slack_channels.get(cid) or {}
        kind = "ims" if found.get("is_im") else "groups" if found.get("is_private") else "channels"
        if cid not in kinds[kind]:
            kinds[kind].append(cid)
        shares["public" if kind == "channels" else "private"].setdefault(cid, []).append(
            {"ts": ts})
    return out | kinds | {"shares": shares, "size": stored["length"]}


def file_methods(state: SandboxState, base_url: Callable[[], str]) -> dict[str, Handler]:
    """The `files.*` methods, bound to `state`; `base_url` gives the sandbox's own URL."""

    async def upload_url(args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            return _fail("invalid_arguments")
        with state.lock:
            fid = f"F{state.next_id():08d}"
            state.slack_files[fid] = {"id": fid, "name": args["filename"],
                                      "length": int(args["length"]), "bytes": None,
                                      "channels": [], "title": args["filename"]}
        return {"ok": True, "file_id": fid, "upload_url": f"{base_url()}/slack/upload/{fid}"}

    async def complete(args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        items = json.loads(files) if isinstance(files, str) else files or []
        channel = str(args.get("channel_id") or "")
        if channel and channel not in state.slack_channels:
            return _fail("channel_not_found")
        stored_files = [state.slack_files.get(item.get("id", "")) for item in items]
        if not items or any(f is None or f["bytes"] is None for f in stored_files):
            return _fail("file_not_found")
        ts = f"{time.time():.6f}"
        with state.lock:
            for item, stored in zip(items, stored_files, strict=True):
                assert stored is not None
                stored["title"] = item.get("title") or stored["title"]
                stored.setdefault("created", int(time.time()))
                stored["timestamp"] = stored["created"]
                if channel:
                    stored["channels"].append(channel)
                    stored.setdefault("share_ts", []).append(ts)
            if channel:
                message = {"type": "message", "channel": channel, "user": "U0FIRELANE",
                           "text": str(args.get("initial_comment") or ""), "blocks": [],
                           "ts": ts, "metadata": None, "pinned": False, "upload": True,
                           "files": [{"id": f["id"], "name": f["name"], "title": f["title"]}
                                     for f in stored_files if f is not None]}
                if args.get("thread_ts"):
                    message["thread_ts"] = str(args["thread_ts"])
                state.slack_messages.append(message)
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]}
                                      for f in stored_files if f is not None]}

    def unread() -> dict[str, Any] | None:
        """Slack's answer to a token without `files:read` (withheld in tests)."""
        if "files:read" not in state.slack_withheld_scopes:
            return None
        return _fail("missing_scope") | {"needed": "files:read",
                                         "provided": "chat:write,files:write"}

    async def info(args: dict[str, Any]) -> dict[str, Any]:
        if (refusal := unread()) is not None:
            return refusal
        stored = state.slack_files.get(str(args.get("file", "")))
        if stored is None or "created" not in stored:
            return _fail("file_not_found")
        return {"ok": True, "file": _public(state, stored), "comments": []}

    async def list_(args: dict[str, Any]) -> dict[str, Any]:
        if (refusal := unread()) is not None:
            return refusal
        channel = args.get("channel")
        since = float(args.get("ts_from") or 0)
        count = int(args.get("count") or 100)
        found = [_public(state, f) for f in list(state.slack_files.values())
                 if "created" in f and f["created"] >= since
                 and (not channel or channel in f["channels"])]
        found.sort(key=lambda f: -f["created"])
        return {"ok": True, "files": found[:count], "paging": {
            "count": count, "total": len(found), "page": 1,
            "pages": max(1, -(-len(found) // count))}}

    return {"files.getUploadURLExternal": upload_url, "files.completeUploadExternal": complete,
            "files.info": info, "files.list": list_}


def upload_route(state: SandboxState) -> Route:
    """The upload URL `files.getUploadURLExternal` hands out (no token, as in Slack)."""

    async def receive(request: Request) -> Response:
        stored = state.slack_files.get(request.path_params["file_id"])
        if stored is None:
            return Response("unknown file", status_code=404)
        stored["bytes"] = await request.body()
        return Response("OK - " + str(len(stored["bytes"])))

    return Route("/slack/upload/{file_id}", receive, methods=["POST"])
