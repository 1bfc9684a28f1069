"""A file shared to a Slack channel once: Slack's external upload flow called a step at a time
(`files.getUploadURLExternal`, the bytes to the upload URL, `files.completeUploadExternal`),
so that only the last call, the one that shares the file, needs guarding.

Slack's upload takes no idempotency key. The first two calls have no visible effect (Slack
never shows a file whose upload was not completed), so they are retried as they are. The
third shares the file: when its answer is lost (a timeout, a dropped connection, a 5xx) the
next try first asks `files.info`, by the file id the first call gave, whether the file is in
the channel already. A step run again (`ctx.repeat_since`) first looks in the channel
(`files.list`) for a file of the same name and title created since its first try. Both
reads need the `files:read` scope; a token without it (`missing_scope`) cannot look, so the
upload goes ahead as before this module and the timeline says that it may show twice.
`files_upload_v2` repeats all three calls on any failure and shared a chart twice after a
read timeout; this module replaces it for every upload Firelane makes.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from firelane.errors import VendorRejected, VendorUnavailable
from firelane.registry import ActionContext
from integrations.common import in_thread, retrying, vendor_error
from integrations.slack.api import call

__all__ = ["Uploaded", "upload_once"]

T = TypeVar("T")


@dataclass(frozen=True)
class Uploaded:
    """The shared file's id; `created` is False when an earlier try of the step shared it."""

    file_id: str
    created: bool


async def upload_once(ctx: ActionContext, client: Any, channel: str, filename: str,
                      data: bytes, title: str, comment: str | None,
                      look_back: bool = True) -> Uploaded:
    """Share `data` as `filename` in `channel` (with `comment` as its message), once.
    `look_back=False` skips the look for an earlier try's file: the caller knows there was
    none (it claimed the effect first)."""
    since = ctx.repeat_since
    if since is not None and look_back:
        earlier = await retrying(lambda: _unless_unreadable(
            ctx, _earlier(client, channel, filename, title, since), None), ctx)
        if earlier is not None:
            return Uploaded(earlier, created=False)
    got = await retrying(lambda: call(client.files_getUploadURLExternal, filename=filename,
                                      length=len(data)), ctx)
    file_id, url = str(got["file_id"]), str(got["upload_url"])
    await retrying(lambda: in_thread(_send, client, url, data), ctx)
    tried = False

    async def share() -> None:
        nonlocal tried
        if tried and await _unless_unreadable(ctx, _in_channel(client, file_id, channel),
                                              False):
            return
        tried = True
        await call(client.files_completeUploadExternal, files=[{"id": file_id, "title": title}],
                   channel_id=channel, initial_comment=comment)

    await retrying(share, ctx)
    return Uploaded(file_id, created=True)


def _send(client: Any, url: str, data: bytes) -> None:
    """POST the bytes to Slack's upload URL as `slack_sdk` does: no token, urllib's form
    content type, any 200 is success."""
    handlers: list[Any] = [urllib.request.HTTPSHandler(context=client.ssl)]
    if client.proxy:
        handlers.append(urllib.request.ProxyHandler({"http": client.proxy,
                                                     "https": client.proxy}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with opener.open(request, timeout=client.timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise vendor_error("slack", exc.code, f"file upload refused: HTTP {exc.code}",
                           exc.headers.get("Retry-After")) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise VendorUnavailable("slack", f"file upload: {type(exc).__name__}: {exc}") from exc


async def _unless_unreadable(ctx: ActionContext, look: Awaitable[T], blind: T) -> T:
    """`look`'s answer, or `blind` when the token may not read files (`missing_scope`)."""
    try:
        return await look
    except VendorRejected as exc:
        if "missing_scope" not in str(exc):
            raise
        ctx.emit("integration.unchecked", "slack: could not look for an earlier upload of this "
                 "step (the token lacks the files:read scope; add it to the Slack app): "
                 "uploading, so the file may show twice", {"vendor": "slack",
                                                           "needed": "files:read"})
        return blind


def _shared_to(found: dict[str, Any]) -> set[str]:
    shares = found.get("shares") or {}
    return {*(found.get("channels") or []), *(found.get("groups") or []),
            *(found.get("ims") or []), *(shares.get("public") or {}),
            *(shares.get("private") or {})}


async def _in_channel(client: Any, file_id: str, channel: str) -> bool:
    try:
        got = await call(client.files_info, file=file_id)
    except VendorRejected as exc:
        if "file_not_found" in str(exc):
            return False
        raise
    return channel in _shared_to(got["file"])


async def _earlier(client: Any, channel: str, filename: str, title: str,
                   since: datetime) -> str | None:
    got = await call(client.files_list, channel=channel, ts_from=str(int(since.timestamp())),
                     count=100)
    for found in got.get("files") or []:
        if found.get("name") == filename and found.get("title") == title:
            return str(found["id"])
    return None
