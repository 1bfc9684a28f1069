"""Remediation actions against real parts: a sample service under a real supervisord, real
processes, a real sshd on loopback."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

import integrations  # noqa: F401  (registers the actions)
from firelane.errors import (
    ActionError,
    ActionTimeout,
    CommandFailed,
    ConfigError,
    VendorRejected,
    VendorUnavailable,
)
from firelane.registry import ActionContext
from integrations.common import default_tls
from integrations.sandbox import Sandbox
from tests.remediation_fixtures import BAD, GOOD, Service, SshServer
from tests.sandbox_fixtures import make_ctx, run_action


def _ctx(step: str = "fix", allow: tuple[str, ...] = (), env: tuple[str, ...] = (),
         dry_run: bool = False) -> ActionContext:
    ctx = make_ctx(step)
    ctx.shell_allow, ctx.shell_env, ctx.dry_run = allow, env, dry_run
    return ctx


def run(name: str, inputs: dict[str, Any], ctx: ActionContext) -> Any:
    return asyncio.run(run_action(name, inputs, ctx))


def test_rollback_switches_release_restarts_and_the_service_recovers(service: Service) -> None:
    before = run("supervisor.status", {"program": "web", "url": service.unix_url}, _ctx())
    ctx = _ctx("rollback")
    out = run("release.rollback", {"release_dir": str(service.release_dir), "program": "web",
                                   "supervisor_url": service.unix_url}, ctx)
    assert (out.from_release, out.to_release, out.restarted) == (BAD, GOOD, True)
    assert service.current() == GOOD and out.pid != before.pid
    service.wait_health(200)
    assert [e.kind for e in ctx.events] == ["release.switched", "supervisor.restarted"]
    again = run("release.rollback", {"release_dir": str(service.release_dir)}, ctx)
    assert (again.from_release, again.to_release) == (BAD, GOOD) and service.current() == GOOD
    with pytest.raises(ActionError, match="nothing to roll back to"):
        run("release.rollback", {"release_dir": str(service.release_dir)}, _ctx("second"))


def test_dry_run_touches_neither_the_symlink_nor_the_process(service: Service) -> None:
    before = run("supervisor.status", {"program": "web", "url": service.unix_url}, _ctx())
    ctx = _ctx("rollback", dry_run=True)
    out = run("release.rollback", {"release_dir": str(service.release_dir), "program": "web",
                                   "supervisor_url": service.unix_url}, ctx)
    assert out.dry_run and (out.from_release, out.to_release) == (BAD, GOOD)
    restart = run("supervisor.restart", {"program": "web", "url": service.unix_url}, ctx)
    after = run("supervisor.status", {"program": "web", "url": service.unix_url}, _ctx())
    assert restart.dry_run and service.current() == BAD and after.pid == before.pid
    assert service.health() == 500
    assert not (service.release_dir / ".firelane").exists()


def test_named_release_and_refusals(service: Service) -> None:
    with pytest.raises(ActionError, match="no release 'nope'"):
        run("release.rollback", {"release_dir": str(service.release_dir), "to": "nope"}, _ctx())
    with pytest.raises(ActionError, match="already the current release"):
        run("release.rollback", {"release_dir": str(service.release_dir), "to": BAD}, _ctx())
    (service.release_dir / "plain").mkdir()
    with pytest.raises(ConfigError, match="not a symlink"):
        run("release.rollback", {"release_dir": str(service.release_dir / "plain")}, _ctx())


def test_supervisor_over_http_with_auth_and_a_process_that_ignores_sigterm(
        service: Service, prefect_api: str) -> None:
    from integrations.common import forget_blocks
    from integrations.remediation.blocks import SupervisorCredentials

    SupervisorCredentials(username="ops", password="s3cret-rpc").save(
        "sup-test", overwrite=True)
    forget_blocks()
    started = time.monotonic()
    out = run("supervisor.stop", {"program": "stubborn", "url": service.rpc_url,
                                  "credentials_block": "sup-test"}, _ctx())
    assert out.state == "STOPPED" and out.changed and time.monotonic() - started < 15
    again = run("supervisor.stop", {"program": "stubborn", "url": service.rpc_url,
                                    "credentials_block": "sup-test"}, _ctx())
    assert not again.changed
    with pytest.raises(VendorRejected, match="authentication failed"):
        run("supervisor.status", {"program": "web", "url": service.rpc_url}, _ctx())
    with pytest.raises(VendorRejected, match="BAD_NAME"):
        run("supervisor.status", {"program": "nope", "url": service.unix_url}, _ctx())


def test_supervisord_down_is_retryable_unavailability(tmp_path: Path) -> None:
    from bench.common import free_port

    for url in (f"http://127.0.0.1:{free_port()}/RPC2", f"unix://{tmp_path}/none.sock"):
        with pytest.raises(VendorUnavailable) as caught:
            run("supervisor.restart", {"program": "web", "url": url}, _ctx())
        assert caught.value.retryable


def test_shell_argv_is_never_a_shell_string_and_env_is_allowlisted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_ENV", "prod")
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    ctx = _ctx(allow=("/bin/echo", "/usr/bin/env"), env=("SERVICE_ENV",))
    out = run("shell.run", {"argv": ["/bin/echo", "; rm -rf /", "$(whoami)", "`id`"]}, ctx)
    assert out.stdout == "; rm -rf / $(whoami) `id`\n" and out.exit_code == 0
    env = run("shell.run", {"argv": ["/usr/bin/env"], "env": {"SERVICE_ENV": "canary"}}, ctx)
    assert "SERVICE_ENV=canary" in env.stdout and "SECRET_TOKEN" not in env.stdout
    assert f"FIRELANE_IDEMPOTENCY_KEY={ctx.idempotency_key}" in env.stdout
    assert ctx.events[0].details["stdout"].startswith("; rm -rf /")
    with pytest.raises(ConfigError, match=r"not in this runbook's shell\.allow"):
        run("shell.run", {"argv": ["rm", "-rf", "/tmp/x"]}, ctx)
    with pytest.raises(ConfigError, match=r"not named in this runbook's shell\.env"):
        run("shell.run", {"argv": ["/usr/bin/env"], "env": {"LD_PRELOAD": "x"}}, ctx)
    with pytest.raises(CommandFailed, match="exited 1"):
        run("shell.run", {"argv": ["/bin/false"]}, _ctx(allow=("/bin/false",)))
    dry = _ctx(allow=("/bin/echo",), dry_run=True)
    assert run("shell.run", {"argv": ["/bin/echo", "x"]}, dry).dry_run
    assert dry.events[0].kind == "shell.dry_run"


def test_shell_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"trap '' TERM; sleep 300 & echo $! > {pidfile}; wait"
    ctx = _ctx(allow=("/bin/sh",))
    started = time.monotonic()
    with pytest.raises(ActionTimeout, match="process group was killed"):
        run("shell.run", {"argv": ["/bin/sh", "-c", script], "timeout_seconds": 1}, ctx)
    assert time.monotonic() - started < 10
    child = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the background child {child} survived the timeout")


def test_shell_output_is_bounded() -> None:
    ctx = _ctx(allow=("/usr/bin/yes",))
    with pytest.raises(ActionTimeout):
        run("shell.run", {"argv": ["/usr/bin/yes"], "timeout_seconds": 0.5,
                          "max_output_bytes": 2048}, ctx)
    [event] = ctx.events
    assert event.details["truncated"] and len(event.details["stdout"]) <= 4096


def _save_target(name: str, server: SshServer, port: int | None = None) -> None:
    from pydantic import SecretStr

    from integrations.common import forget_blocks
    from integrations.remediation.blocks import SshTarget

    SshTarget(host="127.0.0.1", port=port or server.port, user=server.user,
              private_key=SecretStr(server.private_key), known_hosts=server.known_hosts,
              connect_timeout_seconds=3).save(name, overwrite=True)
    forget_blocks()


@pytest.mark.usefixtures("prefect_api")
def test_shell_over_ssh_quotes_argv_for_the_remote_shell(sshd: SshServer) -> None:
    _save_target("ssh-test", sshd)
    ctx = _ctx(allow=("echo",))
    out = run("shell.run", {"argv": ["echo", "; rm -rf /", "$(id)"], "target": "ssh-test"},
              ctx)
    assert out.stdout == "; rm -rf / $(id)\n" and out.host == "127.0.0.1"
    assert "PRIVATE KEY" not in str([e.details for e in ctx.events])


@pytest.mark.usefixtures("prefect_api")
def test_ssh_refused_and_unknown_host_key_are_errors(sshd: SshServer) -> None:
    from bench.common import free_port

    _save_target("ssh-dead", sshd, port=free_port())
    with pytest.raises(VendorUnavailable, match="ssh") as caught:
        run("shell.run", {"argv": ["echo", "x"], "target": "ssh-dead"}, _ctx(allow=("echo",)))
    assert caught.value.retryable
    _save_target("ssh-wrong-key", SshServer(sshd.port, sshd.user, sshd.private_key,
                                            f"[127.0.0.1]:{sshd.port} ssh-ed25519 "
                                            "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"))
    with pytest.raises(VendorUnavailable, match="Host key verification failed"):
        run("shell.run", {"argv": ["echo", "x"], "target": "ssh-wrong-key"},
            _ctx(allow=("echo",)))


def test_http_check_reports_every_probe_and_fails_when_never_healthy(service: Service) -> None:
    ctx = _ctx("verify")
    with pytest.raises(ActionError, match="not healthy within 1 s"):
        run("http.check", {"url": service.health_url, "within_seconds": 1,
                           "interval_seconds": 0.2}, ctx)
    assert len(ctx.events) >= 3 and all("status 500" in e.summary for e in ctx.events)
    run("release.rollback", {"release_dir": str(service.release_dir), "program": "web",
                             "supervisor_url": service.unix_url}, _ctx("rb"))
    ok = run("http.check", {"url": service.health_url, "within_seconds": 20,
                            "interval_seconds": 0.2, "body_contains": GOOD,
                            "healthy_probes": 2}, _ctx("verify2"))
    assert ok.healthy and ok.last_status == 200 and ok.probes >= 2


def test_http_request_expect_status_and_dry_run(service: Service) -> None:
    with pytest.raises(ActionError, match="answered 500") as caught:
        run("http.request", {"method": "GET", "url": service.health_url}, _ctx())
    assert caught.value.retryable
    ok = run("http.request", {"method": "GET", "url": service.health_url,
                              "expect_status": [500]}, _ctx())
    assert ok.status == 500 and "broken" in ok.body
    assert run("http.request", {"url": service.health_url}, _ctx(dry_run=True)).dry_run


def test_http_actions_share_one_tls_context_that_still_verifies(sandbox: Sandbox) -> None:
    default_tls.cache_clear()
    for _ in range(2):
        with pytest.raises(VendorUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            run("http.request", {"method": "GET", "url": f"{sandbox.url}/healthz"}, _ctx())
    with pytest.raises(ActionError, match="CERTIFICATE_VERIFY_FAILED"):
        run("http.check", {"url": f"{sandbox.url}/healthz", "within_seconds": 0.5,
                           "interval_seconds": 0.2}, _ctx("verify"))
    assert default_tls.cache_info().misses == 1
