"""The intake service: `POST /alerts/{source}` → authenticate → parse → commit → 202.

An alert is answered only after it is committed to the store, so an accepted alert is never
lost. Bad input is a 4xx with a JSON reason, never a 500; nothing is half-stored (a request's
alerts commit in one transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from slack_sdk.signature import Clock
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Receive, Scope, Send

from firelane import audit
from firelane.catalog import serving_catalog
from firelane.commands import IncidentCommands
from firelane.errors import AlertRejected, StoreError
from firelane.library import Library
from firelane.settings import Settings
from firelane.store import Store, is_transient, note_reachable, note_unreachable, ping
from flows.intake.api import add_api_routes
from flows.intake.api_updates import add_update_routes
from flows.intake.bodies import read_bounded
from flows.intake.committer import Committer
from flows.intake.config import IntakeConfig
from flows.intake.live import LiveConfig, Snapshot
from flows.intake.metrics import IntakeMetrics
from flows.intake.pagerduty_follow import follow_pagerduty
from flows.intake.readiness import PrefectCheck
from flows.intake.rejections import RejectionLog
from flows.intake.slack_commands import add_slack_command_route
from flows.intake.slack_interactions import add_slack_routes
from flows.intake.status import add_status_routes
from flows.respond.liveness import Liveness
from flows.respond.starter import ResponseStarter
from integrations.alerts import SOURCES, SourceConfig, authenticate, parse

__all__ = ["INSECURE_BANNER", "AlertLane", "IntakeApp", "create_app", "default_cert_fetcher"]

INSECURE_BANNER = ("!!! --insecure-no-auth: this intake accepts alerts from ANYONE without "
                   "checking tokens or signatures. Local use only. !!!")

log = logging.getLogger("firelane.intake")


def default_cert_fetcher(url: str) -> bytes:
    """Fetch an SNS signing certificate (the URL was checked against the allowlist first)."""
    response = httpx.get(url, timeout=5, follow_redirects=False)
    response.raise_for_status()
    return response.content


PARSE_IN_THREAD_BYTES = 64 << 10
READY_TIMEOUT_SECONDS = 2.0


def _reject(exc: AlertRejected) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


def _store_down(exc: BaseException) -> JSONResponse:
    note_unreachable(exc)
    return JSONResponse({"error": "the incident store is unreachable; nothing was stored, "
                         "retry", "retry": True}, status_code=503,
                        headers={"Retry-After": "1"})


def _unknown_source(source: str) -> JSONResponse:
    shown = source if len(source) <= 64 else source[:64] + "..."
    return JSONResponse({"error": f"unknown source {shown!r}; use one of "
                         f"{', '.join(SOURCES)}"}, status_code=404)


def _peer(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _starter(starter: ResponseStarter | None) -> Callable[[str], None] | None:
    """How the API hands a queued execution on: wake the responders, or start it here; None
    when this intake runs no responses."""
    if starter is None:
        return None

    def start(execution_id: str) -> None:
        if starter.external:
            starter.waker.wake()
        else:
            starter.start(execution_id)
    return start


class AlertLane:
    """The alert route without the framework: `POST /alerts/{source}` goes straight to its
    handler, skipping FastAPI's routing, dependency solving and response encoding (about a
    fifth of a one-alert request's CPU in a storm). The handler is the same function the
    FastAPI route calls, so the answers are the same; `IntakeApp` sends the requests here."""

    PREFIX = "/alerts/"

    def __init__(self, receive: Callable[[str, Request], Awaitable[Response]]) -> None:
        self.handle = receive

    def source_of(self, scope: Scope) -> str | None:
        """The source a request posts an alert for, or None when it is not one."""
        path = scope.get("path", "")
        source = path[len(self.PREFIX):]
        if scope["type"] != "http" or scope["method"] != "POST" or \
                not path.startswith(self.PREFIX) or not source or "/" in source:
            return None
        return str(source)

    async def answer(self, source: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the handler; a store outage is a 503 as FastAPI's handler would make it."""
        try:
            response = await self.handle(source, Request(scope, receive))
        except (StoreError, SQLAlchemyError) as exc:
            if not is_transient(exc):
                raise
            response = _store_down(exc)
        await response(scope, receive, send)


class IntakeApp(FastAPI):
    """FastAPI, except that alerts go to `lane` (when set) before any of FastAPI's own layers:
    its middleware, exception handling and per-request telemetry check (an environment lookup
    per request) cost about a tenth of a one-alert request's time on the event loop
    (`bench/profile_intake.py`). Every other request, and the alert route's OpenAPI entry,
    stay FastAPI's."""

    lane: AlertLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lane
        source = lane.source_of(scope) if lane is not None else None
        if lane is None or source is None:
            await super().__call__(scope, receive, send)
            return
        await lane.answer(source, scope, receive, send)


def create_app(store: Store, config: IntakeConfig | LiveConfig,
               starter: ResponseStarter | None = None, insecure: bool = False,
               fetch_cert: Callable[[str], bytes] = default_cert_fetcher,
               slack_clock: Clock | None = None, settings: Settings | None = None,
               library: Library | None = None,
               rejections: RejectionLog | None = None) -> IntakeApp:
    """The ASGI app (OpenAPI docs at /docs); a `LiveConfig` and the runbook `Library`
    (default: the starter's) may be reloaded while it runs, and their refusals are counted.
    Refused requests are logged by `rejections` (default: one line per source, status and peer
    per minute).

    While it runs, the app records its heartbeat as role `intake` and, when it runs responses
    itself (a starter that is not `external`), also as role `inline`, a paging process. Settings
    default to the starter's, else to the environment's."""
    settings = settings or (starter.settings if starter is not None else Settings.from_env())
    inline = starter is not None and not starter.external
    live = config if isinstance(config, LiveConfig) else LiveConfig(config)
    committer = Committer(store, live.current.config.auto_resolve, live.current.config.policy(),
                          starter.plan if starter is not None else None,
                          wake=starter.waker.wake if starter is not None and starter.external
                          else None)

    def retune(snapshot: Snapshot) -> None:
        committer.auto_resolve, committer.policy = (snapshot.config.auto_resolve,
                                                    snapshot.config.policy())

    live.on_swap(retune)
    stale_after = 3 * (starter.settings.lease_seconds if starter is not None else 30.0)
    metrics = IntakeMetrics(store, stale_after, starter, settings.liveness_seconds)
    metrics.watch_config(live, library or (starter.library if starter is not None else None))
    rejections = rejections or RejectionLog()

    def refuse(source: str, status: int, reason: str, request: Request) -> None:
        metrics.count_rejected(source, status)
        audit.intake_refused(source, status, reason)
        rejections.refused(source, status, reason, _peer(request))
    prefect = PrefectCheck() if inline else None
    syncing: set[asyncio.Task[int]] = set()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if insecure:
            log.warning(INSECURE_BANNER)
        if starter is not None:
            resumed = starter.resume_unfinished()
            if resumed:
                log.warning("resumed %d response(s) that never finished", resumed)
        alive = Liveness(store, settings, ["intake", "inline"] if inline else ["intake"]).start()
        yield
        await alive.stop()
        committer.close()
        if syncing:
            await asyncio.wait(syncing, timeout=10)
        if starter is not None and starter.tasks:
            await asyncio.wait(starter.tasks, timeout=30)

    app = IntakeApp(title="Firelane intake", version="0.1.0", lifespan=lifespan,
                    description="Alert webhooks in; incidents and their runbooks out.")

    @app.post("/alerts/{source}", status_code=202)
    async def receive(source: str, request: Request) -> Response:
        """Accept a webhook from `source` (alertmanager, grafana, datadog, cloudwatch,
        pagerduty, generic)."""
        started = time.perf_counter()
        in_force = live.current
        sources: dict[str, SourceConfig] = in_force.sources
        if source not in SOURCES:
            refuse("unknown", 404, "unknown source", request)
            return _unknown_source(source)
        try:
            body = await read_bounded(request, in_force.config.max_body_bytes)
            headers = {k.lower(): v for k, v in request.headers.items()}
            if source == "cloudwatch":
                await asyncio.to_thread(authenticate, source, sources[source], body, headers,
                                        fetch_cert, insecure)
            else:
                authenticate(source, sources[source], body, headers, None, insecure)
            if len(body) > PARSE_IN_THREAD_BYTES:
                parsed = await asyncio.to_thread(parse, source, body, headers, sources[source])
            else:
                parsed = parse(source, body, headers, sources[source])
            if parsed.confirm_url:
                await asyncio.to_thread(fetch_cert, parsed.confirm_url)
                metrics.sns_confirmed.inc()
        except AlertRejected as exc:
            refuse(source, exc.status, str(exc), request)
            return _reject(exc)
        except httpx.HTTPError as exc:
            log.warning("cloudwatch: could not reach SNS: %s: %s", type(exc).__name__, exc)
            metrics.count_rejected(source, 503)
            return JSONResponse({"error": f"could not reach SNS ({type(exc).__name__}); "
                                 "nothing was stored, retry"}, status_code=503)
        try:
            alerts = parsed.alerts if source != "pagerduty" else await follow_pagerduty(
                store, parsed.alerts, syncing)
            accepted = await committer.accept(alerts)
        except Exception as exc:
            metrics.count_rejected(source, 503)
            if is_transient(exc):
                return _store_down(exc)
            log.error("could not store alerts from %s: %s: %s", source, type(exc).__name__, exc)
            return JSONResponse({"error": "the incident store could not commit the alerts "
                                 f"({type(exc).__name__}); nothing was stored, retry"},
                                status_code=503)
        note_reachable()
        metrics.count_accepted(source, accepted)
        if inline:
            assert starter is not None
            for item in accepted:
                if item.execution_id is not None:
                    starter.start(item.execution_id)
        metrics.intake.observe(time.perf_counter() - started)
        return Response(json.dumps({
            "alerts": [{"id": a.id, "fingerprint": a.fingerprint, "status": a.status,
                        "incident_id": a.incident_id, "deduplicated": a.deduplicated,
                        "grouped": a.grouped} for a in accepted],
            "note": parsed.note or None}).encode(), status_code=202,
            media_type="application/json")

    app.lane = AlertLane(receive)

    @app.get("/healthz")
    async def healthz() -> Any:
        """Liveness (200 while the process runs, whatever the store says) and the store
        backend."""
        return {"ok": True, "store": store.dialect, "insecure_no_auth": insecure}

    @app.get("/readyz")
    async def readyz() -> Any:
        """Readiness: 200 when the incident store answers a trivial query within
        `READY_TIMEOUT_SECONDS`, else 503 saying what is down (alerts would get 503 too).

        An intake that runs responses itself also reports the Prefect API (`prefect`: `ok`, or
        why not), checked at most every `PrefectCheck.every` seconds within
        `READY_TIMEOUT_SECONDS`. An unreachable Prefect API leaves it ready but `degraded`:
        pages still go out without Prefect, so taking the intake out of rotation would lose
        more than it saves."""
        try:
            await asyncio.wait_for(asyncio.to_thread(ping, store), READY_TIMEOUT_SECONDS)
        except TimeoutError:
            return JSONResponse({"ready": False, "down": "store", "error": "the incident store "
                                 f"did not answer within {READY_TIMEOUT_SECONDS:g} s"},
                                status_code=503)
        except Exception as exc:
            if not is_transient(exc):
                raise
            note_unreachable(exc)
            return JSONResponse({"ready": False, "down": "store",
                                 "error": f"the incident store is unreachable: "
                                 f"{type(exc).__name__}"}, status_code=503)
        note_reachable()
        if prefect is None:
            return {"ready": True, "store": store.dialect}
        state = await prefect.state(READY_TIMEOUT_SECONDS)
        return {"ready": True, "store": store.dialect, "prefect": state,
                "degraded": [] if state == "ok" else ["prefect"]}

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format (every series: docs/reference/metrics.md)."""
        page = await asyncio.to_thread(metrics.exposition)
        return Response(page, media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StoreError)
    @app.exception_handler(SQLAlchemyError)
    async def store_failed(_: Request, exc: Exception) -> Response:
        if not is_transient(exc):
            raise exc
        return _store_down(exc)

    commands = IncidentCommands(store, (lambda: starter.runbooks) if starter is not None else None,
                                sandbox=starter is not None and starter.sandbox,
                                for_responder=starter is None or starter.external)
    add_api_routes(app, store, syncing, settings.runbooks_dir, _starter(starter), commands)
    add_update_routes(app, store, commands, settings.runbooks_dir, settings.catalog_path,
                      _starter(starter))
    add_slack_routes(app, store, lambda: live.current.slack_signing_secret, slack_clock,
                     live.current.config.max_body_bytes)
    add_slack_command_route(app, store, lambda: live.current.slack_signing_secret, slack_clock,
                            live.current.config.max_body_bytes,
                            starter.plan if starter is not None else None, _starter(starter),
                            commands)
    add_status_routes(app, store, lambda: serving_catalog(settings.catalog_path))
    return app
