"""The fault matrix's remediation rows: `http.request`, `supervisor.restart` and `shell.run` over
SSH, each run as a runbook step (`retries: 2`) through the engine, with a fault proxy in front of
a real endpoint, a real supervisord and a real sshd. One side effect each, the retry on the
timeline, and no second effect when the step is resumed with the same key. SSH has no HTTP
status, so its row has no status columns."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import integrations  # noqa: F401  (registers the actions)
from firelane.store import Store
from flows.engine.dag import run_dag
from tests.fault_proxy import FaultProxy, ProxyFault
from tests.helpers import plain_runner, prepare, statuses, step_events
from tests.remediation_fixtures import Service, SshServer
from tests.sandbox_fixtures import make_ctx, run_action

FAULTS: dict[str, dict[str, Any]] = {
    "429": {"kind": "status", "status": 429, "retry_after": 1},
    "500": {"kind": "status", "status": 500},
    "502": {"kind": "status", "status": 502},
    "503": {"kind": "status", "status": 503},
    "timeout": {"kind": "timeout"},
    "reset": {"kind": "reset"},
    "dropped": {"kind": "dropped"},
    "applied-then-500": {"kind": "applied_then_500"},
    "applied-then-lost": {"kind": "applied_then_lost"},
}
NOT_HTTP = ("timeout", "reset", "applied-then-lost")


class _Webhook(BaseHTTPRequestHandler):
    """A receiver that applies each Idempotency-Key once, as a careful API does."""

    calls: ClassVar[list[str]] = []
    applied: ClassVar[set[str]] = set()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.headers.get("Idempotency-Key", "")
        self.calls.append(key)
        self.applied.add(key)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        return None


def _run_step(store: Store, step: str, extra: str = "") -> tuple[dict[str, str], list[str]]:
    rc = prepare(store, f"version: 1\nname: fix\n{extra}steps:\n  - {step}\n")
    asyncio.run(run_dag(rc, plain_runner))
    return statuses(rc), step_events(store.timeline(rc.incident.id), "fix")


def _check(proxy_fault: ProxyFault, result: tuple[dict[str, str], list[str]]) -> None:
    states, kinds = result
    assert proxy_fault.hits == 1, "the fault never fired"
    assert states == {"fix": "succeeded"}, states
    assert kinds.count("step.retrying") == 1, kinds


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("action", ["http.request"])
@pytest.mark.fault_matrix
def test_http_request_faults(sq: Store, action: str, fault: str) -> None:
    _Webhook.calls, _Webhook.applied = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with FaultProxy(server.server_port) as proxy:
            armed = proxy.arm(ProxyFault(**FAULTS[fault]))
            url = f"http://127.0.0.1:{proxy.port}/flags/off"
            _check(armed, _run_step(sq, f"{{id: fix, uses: http.request, retries: 2, "
                                        f"retry_delay_seconds: 0, with: {{url: '{url}', "
                                        f"timeout_seconds: 1, json: {{flag: checkout}}}}}}"))
            assert len(_Webhook.applied) == 1, f"{len(_Webhook.applied)} effects"
            applied_first = fault.startswith("applied")
            assert len(_Webhook.calls) == (2 if applied_first else 1), _Webhook.calls
            resumed = make_ctx("fix")
            resumed.idempotency_key = next(iter(_Webhook.applied))
            asyncio.run(run_action("http.request", {"url": url}, resumed))
            assert len(_Webhook.applied) == 1, "a resumed step made a second effect"
    finally:
        server.shutdown()


def _spawns(service: Service) -> int:
    log = service.release_dir.parent / "supervisord.log"
    return log.read_text().count("spawned: 'web'")


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("action", ["supervisor.restart"])
@pytest.mark.fault_matrix
@pytest.mark.usefixtures("prefect_api")
def test_supervisor_restart_faults(sq: Store, service: Service, action: str,
                                   fault: str) -> None:
    from pydantic import SecretStr

    from integrations.common import forget_blocks
    from integrations.remediation.blocks import SupervisorCredentials

    SupervisorCredentials(username="ops", password=SecretStr("s3cret-rpc")).save(
        "rpc-faults", overwrite=True)
    forget_blocks()
    rpc_port = int(service.rpc_url.rsplit(":", 1)[1].split("/")[0])
    before = _spawns(service)
    with FaultProxy(rpc_port) as proxy:
        armed = proxy.arm(ProxyFault(**FAULTS[fault], match=b"supervisor.startProcess"))
        url = f"http://127.0.0.1:{proxy.port}/RPC2"
        _check(armed, _run_step(sq, f"{{id: fix, uses: supervisor.restart, retries: 2, "
                                    f"retry_delay_seconds: 0, with: {{program: web, url: '{url}',"
                                    f" credentials_block: rpc-faults, timeout_seconds: 2}}}}"))
    assert _spawns(service) == before + 1, f"{_spawns(service) - before} effects"


@pytest.mark.parametrize("fault", list(NOT_HTTP))
@pytest.mark.parametrize("action", ["shell.run (ssh)"])
@pytest.mark.fault_matrix
@pytest.mark.usefixtures("prefect_api")
def test_shell_over_ssh_faults(sq: Store, sshd: SshServer, tmp_path: Path, action: str,
                               fault: str) -> None:
    from pydantic import SecretStr

    from integrations.common import forget_blocks
    from integrations.remediation.blocks import SshTarget

    effects = tmp_path / "effects"
    effects.mkdir()
    script = tmp_path / "drain.sh"
    script.write_text(f'#!/bin/sh\necho "$FIRELANE_IDEMPOTENCY_KEY" >> {tmp_path}/calls\n'
                      f'mkdir "{effects}/$FIRELANE_IDEMPOTENCY_KEY" 2>/dev/null && sleep 1\n'
                      "exit 0\n")
    script.chmod(0o755)
    with FaultProxy(sshd.port, http=False) as proxy:
        host_key = sshd.known_hosts.split(" ", 1)[1]
        SshTarget(host="127.0.0.1", port=proxy.port, user=sshd.user,
                  private_key=SecretStr(sshd.private_key),
                  known_hosts=f"[127.0.0.1]:{proxy.port} {host_key}",
                  connect_timeout_seconds=2).save("ssh-faults", overwrite=True)
        forget_blocks()
        armed = proxy.arm(ProxyFault(**FAULTS[fault], applied=lambda: any(effects.iterdir())))
        _check(armed, _run_step(sq, f"{{id: fix, uses: shell.run, retries: 2, "
                                    f"retry_delay_seconds: 0, with: {{argv: ['{script}'], "
                                    f"target: ssh-faults, timeout_seconds: 8}}}}",
                                extra=f"shell: {{allow: ['{script}']}}\n"))
    assert len(list(effects.iterdir())) == 1, f"{len(list(effects.iterdir()))} effects"
    calls = (tmp_path / "calls").read_text().split()
    assert len(calls) == (2 if fault == "applied-then-lost" else 1), calls
