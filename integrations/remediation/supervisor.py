"""`supervisor.restart|start|stop|status` against a real supervisord over XML-RPC.

The connection comes from the inputs or the service catalog (`supervisor: {url, program,
credentials_block}`): `http://host:9001/RPC2` for an `inet_http_server`, or `unix:///path.sock`
for the usual Unix socket. supervisord itself escalates a stop to SIGKILL after the program's
`stopwaitsecs`, so a process that ignores SIGTERM still stops. Each action reads the process
state first and skips what is already true (starting a running process, stopping a stopped one).
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ActionError, ConfigError, VendorRejected, VendorUnavailable
from firelane.registry import ActionContext, action
from integrations.common import cached_block, in_thread

__all__ = ["ProcessInputs", "ProcessOutputs", "proxy"]

_FAULTS_REJECTED = {10: "BAD_NAME", 2: "INCORRECT_PARAMETERS", 1: "UNKNOWN_METHOD"}


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class _Transport(xmlrpc.client.Transport):
    def __init__(self, timeout: float, unix_path: str | None) -> None:
        super().__init__()
        self.timeout, self.unix_path = timeout, unix_path

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self.unix_path is not None:
            return _UnixHTTPConnection(self.unix_path, self.timeout)
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn

    def request(self, host: Any, handler: str, request_body: Any,
                verbose: bool = False) -> Any:
        """One try. The stdlib resends a request whose connection was reset, which could start
        a program twice unseen; retries belong to the step, where the timeline shows them."""
        return self.single_request(host, handler, request_body, verbose)


def proxy(url: str, username: str | None = None, password: str | None = None,
          timeout: float = 30.0) -> xmlrpc.client.ServerProxy:
    """An XML-RPC proxy for supervisord at `url` (http://... or unix:///...)."""
    parts = urlsplit(url)
    auth = f"{quote(username)}:{quote(password or '')}@" if username else ""
    if parts.scheme == "unix":
        return xmlrpc.client.ServerProxy(f"http://{auth}localhost/RPC2",
                                         transport=_Transport(timeout, parts.path))
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"supervisor url {url!r}: use http://host:port/RPC2 or unix:///path")
    return xmlrpc.client.ServerProxy(f"{parts.scheme}://{auth}{parts.netloc}"
                                     f"{parts.path or '/RPC2'}",
                                     transport=_Transport(timeout, None))


class ProcessInputs(BaseModel):
    """Which program, on which supervisord."""

    model_config = ConfigDict(extra="forbid")
    program: str = Field(description="Program (or group:name) as supervisord knows it",
                         json_schema_extra={"catalog": "supervisor.program"})
    url: str = Field(default="unix:///var/run/supervisor.sock",
                     description="supervisord XML-RPC endpoint",
                     json_schema_extra={"catalog": "supervisor.url"})
    credentials_block: str | None = Field(
        default=None, description="SupervisorCredentials block",
        json_schema_extra={"catalog": "supervisor.credentials_block"})
    timeout_seconds: float = Field(default=60, gt=0, le=3600)


class ProcessOutputs(BaseModel):
    """The program's state after the action."""

    program: str
    state: str
    pid: int
    changed: bool
    dry_run: bool = False


async def _server(inputs: ProcessInputs) -> Any:
    username = password = None
    if inputs.credentials_block:
        from integrations.remediation.blocks import SupervisorCredentials

        try:
            creds: Any = await cached_block(SupervisorCredentials, inputs.credentials_block)
        except ValueError as exc:
            raise ConfigError(f"no SupervisorCredentials block named "
                              f"{inputs.credentials_block!r}") from exc
        username, password = creds.username, creds.password.get_secret_value()
    return proxy(inputs.url, username, password, inputs.timeout_seconds).supervisor


async def _call(inputs: ProcessInputs, method: str, *args: Any) -> Any:
    server = await _server(inputs)
    try:
        return await in_thread(getattr(server, method), *args)
    except xmlrpc.client.Fault as fault:
        name = _FAULTS_REJECTED.get(fault.faultCode)
        if name:
            raise VendorRejected("supervisor", f"{method}({inputs.program}): {name}: "
                                 f"{fault.faultString}") from fault
        raise ActionError(f"supervisor {method}({inputs.program}): {fault.faultString}") \
            from fault
    except xmlrpc.client.ProtocolError as exc:
        if exc.errcode == 401:
            raise VendorRejected("supervisor", f"{inputs.url}: authentication failed",
                                 401) from exc
        raise VendorUnavailable("supervisor", f"{inputs.url}: HTTP {exc.errcode}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise VendorUnavailable("supervisor", f"{inputs.url}: {type(exc).__name__}: {exc}") \
            from exc


async def _state(inputs: ProcessInputs) -> dict[str, Any]:
    info: dict[str, Any] = await _call(inputs, "getProcessInfo", inputs.program)
    return info


def _out(inputs: ProcessInputs, info: dict[str, Any], changed: bool,
         dry_run: bool = False) -> ProcessOutputs:
    return ProcessOutputs(program=inputs.program, state=str(info.get("statename")),
                          pid=int(info.get("pid") or 0), changed=changed, dry_run=dry_run)


@action("supervisor.status", read_only=True)
async def status(inputs: ProcessInputs, ctx: ActionContext) -> ProcessOutputs:
    """Read a program's state (RUNNING, STOPPED, FATAL, ...) and pid."""
    return _out(inputs, await _state(inputs), changed=False)


@action("supervisor.start", destructive=True)
async def start(inputs: ProcessInputs, ctx: ActionContext) -> ProcessOutputs:
    """Start a program unless it is already running."""
    before = await _state(inputs)
    if before["statename"] in ("RUNNING", "STARTING") or ctx.dry_run:
        return _out(inputs, before, changed=False, dry_run=ctx.dry_run)
    await _call(inputs, "startProcess", inputs.program, True)
    return _out(inputs, await _state(inputs), changed=True)


@action("supervisor.stop", destructive=True)
async def stop(inputs: ProcessInputs, ctx: ActionContext) -> ProcessOutputs:
    """Stop a program unless it is already stopped (supervisord SIGKILLs it after the
    program's stopwaitsecs if it ignores SIGTERM)."""
    before = await _state(inputs)
    if before["statename"] not in ("RUNNING", "STARTING", "BACKOFF") or ctx.dry_run:
        return _out(inputs, before, changed=False, dry_run=ctx.dry_run)
    await _call(inputs, "stopProcess", inputs.program, True)
    return _out(inputs, await _state(inputs), changed=True)


def _restarted_by_this_step(info: dict[str, Any], ctx: ActionContext) -> bool:
    """On a retry or resume: the program is running and started (supervisord's `start`, whole
    seconds) after this step first began, so the earlier try's start went through even though its
    answer was lost."""
    if ctx.repeat_since is None or info.get("statename") != "RUNNING":
        return False
    return int(info.get("start") or 0) >= int(ctx.repeat_since.timestamp())


@action("supervisor.restart", destructive=True)
async def restart(inputs: ProcessInputs, ctx: ActionContext) -> ProcessOutputs:
    """Stop (if running) and start a program; the pid changes.

    Example: `{uses: supervisor.restart, with: {program: web}}`
    """
    before = await _state(inputs)
    if ctx.dry_run:
        ctx.emit("supervisor.dry_run", f"would restart {inputs.program} (pid {before['pid']})")
        return _out(inputs, before, changed=False, dry_run=True)
    if _restarted_by_this_step(before, ctx):
        ctx.emit("supervisor.already_restarted",
                 f"{inputs.program} already restarted by an earlier try of this step "
                 f"(pid {before['pid']}); not restarting again", {"pid": before["pid"]})
        return _out(inputs, before, changed=True)
    if before["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
        await _call(inputs, "stopProcess", inputs.program, True)
    await _call(inputs, "startProcess", inputs.program, True)
    after = await _state(inputs)
    ctx.emit("supervisor.restarted", f"{inputs.program}: pid {before['pid']} → {after['pid']}",
             {"from_pid": before["pid"], "to_pid": after["pid"], "state": after["statename"]})
    return _out(inputs, after, changed=True)
