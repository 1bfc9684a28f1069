"""Reading a request body with a size limit, for every route that takes one.

A body is refused before it is read whole when its declared or received size passes the limit
(413), so one request cannot hold more than the limit in memory. A client that goes away before
its body is complete (a sender that timed out mid-upload) is a warning and a 400 nobody reads,
not an unhandled exception in the log: nothing from it was stored, and the sender retries.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request

from firelane.errors import AlertRejected

__all__ = ["read_bounded"]

log = logging.getLogger("firelane.intake")


async def read_bounded(request: Request, limit: int) -> bytes:
    """The whole body of `request`, at most `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise AlertRejected(f"body of {declared} bytes exceeds the limit of {limit}", 413)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise AlertRejected(f"body exceeds the limit of {limit} bytes", 413)
            chunks.append(chunk)
    except ClientDisconnect as exc:
        log.warning("%s %s: the client went away after %d bytes of its body; nothing stored",
                    request.method, request.url.path, size)
        raise AlertRejected(f"the client went away after {size} bytes of the body; nothing "
                            "was stored", 400) from exc
    return b"".join(chunks)
