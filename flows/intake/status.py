"""The status page on the intake: `GET /status` (HTML), `/status/status.json` and
`/status/feed.atom`.

Public (no token) and read-only: they show what the static page shows and nothing more (never
a private incident, an internal update, or one awaiting approval). Each answer carries
`Cache-Control: public, max-age=30` and a weak `ETag` over what the page says, and a request
whose `If-None-Match` matches gets `304 Not Modified`. The snapshot is read from the store at
most once per `cache_seconds`, so a crowd refreshing the page during an outage costs the store
one query set every few seconds, not one per reader. A service catalog that never validated
makes them answer 503 rather than a page without its components.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from firelane.catalog import Catalog
from firelane.errors import ConfigError
from firelane.models import utcnow
from firelane.store import Store
from flows.records.status_page import (
    Snapshot,
    content_tag,
    render_atom,
    render_html,
    render_json,
    status_snapshot,
)

__all__ = ["CACHE_CONTROL", "add_status_routes"]

CACHE_CONTROL = "public, max-age=30"
_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json",
          "atom": "application/atom+xml; charset=utf-8"}


@dataclass
class _Cached:
    snapshot: Snapshot
    tag: str
    taken: float


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == etag.removeprefix("W/")
               for t in header.split(","))


def add_status_routes(app: FastAPI, store: Store, catalog: Callable[[], Catalog],
                      cache_seconds: float = 2.0) -> None:
    """Mount the status page routes (GET and HEAD). `catalog` gives the catalog in force
    (re-read as it changes); feed links use its `status_page.public_url`, else this intake's
    own `/status/` URL."""
    cached: list[_Cached] = []
    lock = asyncio.Lock()

    async def current() -> _Cached:
        async with lock:
            if cached and time.monotonic() - cached[0].taken < cache_seconds:
                return cached[0]
            snap = await asyncio.to_thread(status_snapshot, store, catalog(), utcnow())
            fresh = _Cached(snap, content_tag(snap), time.monotonic())
            cached[:] = [fresh]
            return fresh

    async def answer(request: Request, kind: str) -> Response:
        try:
            found = await current()
        except ConfigError as exc:
            return JSONResponse({"error": f"the status page is unavailable: {exc}"},
                                status_code=503, headers={"Retry-After": "30"})
        etag = f'W/"{kind}-{found.tag}"'
        headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag,
                   "X-Content-Type-Options": "nosniff"}
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        snap = found.snapshot
        if kind == "html":
            body = render_html(snap, "/status/")
        elif kind == "json":
            body = render_json(snap)
        else:
            body = render_atom(snap, snap.public_url or str(request.url_for("status_page")))
        data = body.encode("utf-8")
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return Response(status_code=200, headers=headers, media_type=_TYPES[kind])
        return Response(data, headers=headers, media_type=_TYPES[kind])

    @app.api_route("/status", methods=["HEAD"], include_in_schema=False)
    @app.get("/status", response_class=Response, name="status_page", tags=["status page"])
    async def status_page(request: Request) -> Response:
        """The public status page (HTML): components, incidents, maintenance, history."""
        return await answer(request, "html")

    @app.api_route("/status/", methods=["GET", "HEAD"], response_class=Response,
                   include_in_schema=False)
    @app.api_route("/status/index.html", methods=["GET", "HEAD"], response_class=Response,
                   include_in_schema=False)
    async def status_index(request: Request) -> Response:
        return await answer(request, "html")

    @app.api_route("/status/status.json", methods=["HEAD"], include_in_schema=False)
    @app.get("/status/status.json", response_class=Response, tags=["status page"])
    async def status_json(request: Request) -> Response:
        """The status page as a `firelane.status/v1` JSON document."""
        return await answer(request, "json")

    @app.api_route("/status/feed.atom", methods=["HEAD"], include_in_schema=False)
    @app.get("/status/feed.atom", response_class=Response, tags=["status page"])
    async def status_feed(request: Request) -> Response:
        """The status page's Atom feed: one entry per published public update."""
        return await answer(request, "atom")
