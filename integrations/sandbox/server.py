"""The sandbox as one ASGI app, and `Sandbox`: serve it over TLS in a thread, in-process.

Routes: `/jira/rest/api/2/...`, `/pagerduty/...` (Events v2 and REST), `/slack/api/<method>`,
`/zoom/...`, `/statuspage/v1/pages/<page_id>/...`, `/kubernetes/...` (the Kubernetes API's
apps/v1 and core/v1 paths), and `/_admin/` (`GET state` (with the
mail server's `smtp_port` and the `emails` it received), `GET arrivals?since=N` (when each
ticket, page, channel, meeting, status update and e-mail was created), `POST reset`, `POST
faults`, `DELETE faults`, `POST config` with `jira_mode`, `jira_search_lag`, `pd_oncall`,
`smtp_require_auth`, `statuspage_rate_limit` (`{"requests": n, "window": s}` or null for
none), `statuspage_rate_status` (420 or 429), `statuspage_components` (`{id: name}`),
`kubernetes` (see `kubernetes_app.configure`)).
`Sandbox` also runs the mail server (`integrations.sandbox.smtp`).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrations.sandbox.faults import FaultRule, Faults
from integrations.sandbox.jira_app import jira_routes
from integrations.sandbox.kubernetes_app import configure as configure_kubernetes
from integrations.sandbox.kubernetes_app import kubernetes_routes
from integrations.sandbox.pagerduty_app import pagerduty_routes
from integrations.sandbox.slack_app import slack_routes
from integrations.sandbox.smtp import SandboxSmtp
from integrations.sandbox.state import SandboxState, statuspage_components
from integrations.sandbox.statuspage_app import statuspage_routes
from integrations.sandbox.tls import TlsFiles, make_tls
from integrations.sandbox.zoom_app import zoom_routes

__all__ = ["Sandbox", "build_app"]


class _FaultMiddleware:
    """Injects the configured faults. A client that gave up before its body was read (its
    timeout ran out during injected latency) is no error: nothing was applied, and nobody is
    listening for an answer."""

    def __init__(self, app: ASGIApp, faults: Faults, state: SandboxState) -> None:
        self.app, self.faults, self.state = app, faults, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_admin"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        self.state.requests.append(f"{method} {path}" + (f"?{query}" if query else ""))
        self.state.client_ports.append(int((scope.get("client") or ("", 0))[1]))
        raw_send = send
        if self.state.recording:
            receive, send = _recorder(self.state, scope, receive, send)
        rule = self.faults.take(method, path)
        try:
            await self._answer(rule, scope, receive, send, raw_send)
        except ClientDisconnect:
            return

    async def _answer(self, rule: FaultRule | None, scope: Scope, receive: Receive, send: Send,
                      raw_send: Send) -> None:
        """Pass the request on, or inject `rule`."""
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.kind == "latency":
            await asyncio.sleep(rule.latency)
            await self.app(scope, receive, send)
        elif rule.kind == "status":
            headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None \
                else None
            body = {"ok": False, "error": "ratelimited"} if rule.status == 429 else \
                {"error": f"sandbox fault {rule.status}", "errorMessages": ["sandbox fault"]}
            await JSONResponse(body, rule.status, headers)(scope, receive, send)
        elif rule.kind == "reset":
            _reset(raw_send)
            await asyncio.sleep(0.01)
        elif rule.kind in ("apply_then_fail", "apply_then_reset"):
            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            if rule.kind == "apply_then_reset":
                _reset(raw_send)
                await asyncio.sleep(0.01)
                return
            await JSONResponse({"error": "sandbox fault: applied, then failed"},
                               500)(scope, receive, send)
        else:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"1000"),
                                    (b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"ok": tr', "more_body": True})
            _reset(raw_send, rst=False)
            await asyncio.sleep(0.01)


def _reset(send: Send, rst: bool = True) -> None:
    """Cut the connection behind uvicorn's `send`: a TCP RST (SO_LINGER 0), or with `rst=False`
    a close after what was sent so far (the client sees a response cut short)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionResetError("sandbox fault: connection cut")
    if not rst:
        transport.close()
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _recorder(state: SandboxState, scope: Scope, receive: Receive,
              send: Send) -> tuple[Receive, Send]:
    """Wrap receive/send so the exchange (request and response bodies) lands in
    `state.exchanges` for contract tests."""
    exchange: dict[str, Any] = {
        "method": scope["method"], "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1"),
        "request_headers": {k.decode("latin-1").lower(): v.decode("latin-1")
                            for k, v in scope.get("headers", [])},
        "request_body": b"", "status": None, "response_headers": {}, "response_body": b""}
    state.exchanges.append(exchange)

    async def recv() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            exchange["request_body"] += message.get("body", b"")
        return message

    async def snd(message: Message) -> None:
        if message["type"] == "http.response.start":
            exchange["status"] = message["status"]
            exchange["response_headers"] = {k.decode("latin-1").lower(): v.decode("latin-1")
                                            for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            exchange["response_body"] += message.get("body", b"")
        await send(message)

    return recv, snd


def build_app(state: SandboxState, faults: Faults, base_url: str = "") -> ASGIApp:
    """The sandbox app over `state`, with `faults` applied to every vendor route."""
    holder = {"base": base_url}

    async def admin_state(request: Request) -> Response:
        return JSONResponse(state.dump())

    async def admin_arrivals(request: Request) -> Response:
        since = int(request.query_params.get("since", 0))
        return JSONResponse({"arrivals": state.arrivals[since:], "next": len(state.arrivals)})

    async def admin_reset(request: Request) -> Response:
        state.reset()
        faults.clear()
        return JSONResponse({"ok": True})

    async def admin_faults(request: Request) -> Response:
        if request.method == "DELETE":
            faults.clear()
            return JSONResponse({"ok": True})
        spec = json.loads(await request.body() or b"{}")
        try:
            rule = faults.add(**spec)
        except TypeError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "rule": {k: v for k, v in vars(rule).items()}})

    async def admin_config(request: Request) -> Response:
        spec = json.loads(await request.body() or b"{}")
        if "kubernetes" in spec:
            try:
                with state.lock:
                    configure_kubernetes(state.kubernetes, spec.pop("kubernetes"))
            except (TypeError, ValueError) as exc:
                return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        allowed = {"jira_mode", "jira_search_lag", "pd_oncall", "smtp_require_auth",
                   "statuspage_rate_limit", "statuspage_rate_status", "statuspage_components"}
        unknown = set(spec) - allowed
        if unknown:
            return JSONResponse({"ok": False, "error": f"unknown settings {sorted(unknown)}"},
                                status_code=400)
        with state.lock:
            for key, value in spec.items():
                if key == "statuspage_components":
                    state.statuspage_component_names = dict(value)
                    state.statuspage_components = statuspage_components(
                        dict(value), state.statuspage_page_id)
                    continue
                setattr(state, key, value)
        return JSONResponse({"ok": True})

    routes = [
        *jira_routes(state), *pagerduty_routes(state),
        *slack_routes(state, lambda: holder["base"]), *zoom_routes(state),
        *statuspage_routes(state),
        *kubernetes_routes(state),
        Route("/_admin/state", admin_state),
        Route("/_admin/reset", admin_reset, methods=["POST"]),
        Route("/_admin/arrivals", admin_arrivals),
        Route("/_admin/faults", admin_faults, methods=["POST", "DELETE"]),
        Route("/_admin/config", admin_config, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.holder = holder
    return _FaultMiddleware(app, faults, state)


class Sandbox:
    """The sandbox served over TLS on 127.0.0.1 in a background thread, and its mail server
    (SMTP with STARTTLS on the same certificate) on `smtp_port`.

    Example:
        with Sandbox() as sb:
            print(sb.url, sb.ca_file)   # give clients the CA file
            sb.faults.add(path="/slack/api/chat.postMessage", status=429, retry_after=1)
            sb.faults.add(path="/smtp", method="DATA", status=451)
    """

    def __init__(self, port: int = 0, folder: Path | None = None, smtp_port: int = 0) -> None:
        self.state = SandboxState()
        self.faults = Faults()
        self.folder = folder or Path(tempfile.mkdtemp(prefix="firelane-sandbox-"))
        self.tls: TlsFiles = make_tls(self.folder / "tls")
        self.port = port or _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.app = build_app(self.state, self.faults, self.url)
        self.smtp = SandboxSmtp(self.state, self.faults, self.tls, smtp_port or _free_port())
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def ca_file(self) -> str:
        """The CA certificate clients must trust."""
        return str(self.tls.ca_cert)

    def urls(self) -> dict[str, str]:
        """Base URLs for each vendor, as the integrations' blocks expect them."""
        return {"jira": f"{self.url}/jira", "pagerduty": f"{self.url}/pagerduty",
                "slack": f"{self.url}/slack/api/", "zoom_api": f"{self.url}/zoom/v2",
                "zoom_oauth": f"{self.url}/zoom/oauth/token",
                "statuspage": f"{self.url}/statuspage/v1",
                "kubernetes": f"{self.url}/kubernetes"}

    @property
    def smtp_port(self) -> int:
        """The mail server's port on 127.0.0.1 (STARTTLS, optional AUTH)."""
        return self.smtp.port

    def start(self) -> Sandbox:
        """Serve until `stop()`; returns once both ports accept connections."""
        self.smtp.start()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                ssl_certfile=str(self.tls.server_cert),
                                ssl_keyfile=str(self.tls.server_key), lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True,
                                        name="firelane-sandbox")
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox could not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.smtp.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
