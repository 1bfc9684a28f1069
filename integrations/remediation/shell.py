"""`shell.run` and `shell.check`: a command as an argv list, locally or over SSH, inside the
runbook's allowlist (`shell.allow` for `shell.run`, `shell.read_only` for the diagnostics
`shell.check` runs, which no guardrail holds and dry runs run for real).

Never a shell string: template values land in argv elements, so `; rm -rf /` is one harmless
argument. argv[0] must equal an entry of the runbook's list exactly. The environment
is built from scratch: a fixed PATH, the variables the runbook's `shell.env` names (passed
through from the worker or set in `env:`), and `FIRELANE_IDEMPOTENCY_KEY`, which scripts can use
to recognise a re-run after a crash. Output is captured up to a bound and put on the timeline.
Over SSH the argv is quoted for the remote shell (`shlex.join`), the host key must already be in
the target's known_hosts, and exit status 255 (ssh's own failure) is retryable.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ActionTimeout, CommandFailed, ConfigError, VendorUnavailable
from firelane.registry import ActionContext, action
from integrations.common import cached_block
from integrations.remediation.procs import Finished, run_process

__all__ = ["SAFE_PATH", "ShellInputs", "ShellOutputs", "build_env", "check_allowed"]

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TIMELINE_BYTES = 4096


class ShellInputs(BaseModel):
    """`shell.run` and `shell.check` inputs."""

    model_config = ConfigDict(extra="forbid")
    argv: list[str] = Field(min_length=1, description="The command and its arguments")
    cwd: str | None = Field(default=None, description="Working directory")
    env: dict[str, str] = Field(default_factory=dict,
                                description="Variables to set (each named in shell.env)")
    timeout_seconds: float = Field(default=60, gt=0, le=3600)
    target: str | None = Field(default=None, description="SshTarget block: run on that host")
    expect_exit: list[int] = Field(default_factory=lambda: [0],
                                   description="Exit statuses that count as success")
    max_output_bytes: int = Field(default=65536, ge=1024, le=16 << 20)


class ShellOutputs(BaseModel):
    """What the command did."""

    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    seconds: float
    host: str
    dry_run: bool = False


def check_allowed(argv: list[str], allow: tuple[str, ...], action: str = "shell.run",
                  policy: str = "allow") -> None:
    """Refuse an executable the runbook did not list under `shell.<policy>`."""
    if argv[0] not in allow:
        raise ConfigError(f"{action}: {argv[0]!r} is not in this runbook's shell.{policy} "
                          f"({', '.join(allow) or 'empty'}); add it there to allow it")


def build_env(inputs_env: dict[str, str], allowed: tuple[str, ...], key: str) -> dict[str, str]:
    """The command's whole environment."""
    unknown = sorted(set(inputs_env) - set(allowed))
    if unknown:
        raise ConfigError(f"shell.run: env {unknown} not named in this runbook's shell.env")
    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}
    env.update({name: os.environ[name] for name in allowed if name in os.environ})
    env.update(inputs_env)
    env["FIRELANE_IDEMPOTENCY_KEY"] = key
    return env


def _ssh_argv(target: Any, argv: list[str], keyfile: Path, known: Path) -> list[str]:
    return ["ssh", "-p", str(target.port), "-i", str(keyfile), "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"ConnectTimeout={target.connect_timeout_seconds}", "-o", "LogLevel=ERROR",
            "-l", target.user, "--", target.host, shlex.join(argv)]


async def _over_ssh(inputs: ShellInputs, ctx: ActionContext, env: dict[str, str],
                    ) -> tuple[Finished, str]:
    from integrations.remediation.blocks import SshTarget

    assert inputs.target is not None
    try:
        target: Any = await cached_block(SshTarget, inputs.target)
    except ValueError as exc:
        raise ConfigError(f"no SshTarget block named {inputs.target!r}") from exc
    remote = ["env", *(f"{k}={v}" for k, v in env.items() if k != "PATH"), *inputs.argv]
    with tempfile.TemporaryDirectory(prefix="firelane-ssh-") as tmp:
        keyfile, known = Path(tmp) / "key", Path(tmp) / "known_hosts"
        keyfile.write_text(target.private_key.get_secret_value().strip() + "\n")
        keyfile.chmod(0o600)
        known.write_text(target.known_hosts.strip() + "\n")
        argv = _ssh_argv(target, remote, keyfile, known)
        done = await run_process(argv, {"PATH": SAFE_PATH}, None, inputs.timeout_seconds,
                                 inputs.max_output_bytes)
    if done.exit_code == 255:
        raise VendorUnavailable("ssh", f"{target.user}@{target.host}:{target.port}: "
                                f"{done.stderr.strip()[-500:] or 'connection failed'}")
    return done, target.host


@action("shell.run", destructive=True)
async def run(inputs: ShellInputs, ctx: ActionContext) -> ShellOutputs:
    """Run a command (argv list, allowlisted executable) locally or over SSH.

    Example: `{uses: shell.run, with: {argv: [systemctl, restart, web], timeout_seconds: 30}}`
    with `shell: {allow: [systemctl]}` at the top of the runbook.
    """
    check_allowed(inputs.argv, ctx.shell_allow)
    where = inputs.target or "local"
    if ctx.dry_run:
        build_env(inputs.env, ctx.shell_env, ctx.idempotency_key)
        ctx.emit("shell.dry_run", f"would run on {where}: {shlex.join(inputs.argv)}",
                 {"argv": inputs.argv, "target": inputs.target})
        return ShellOutputs(exit_code=None, stdout="", stderr="", truncated=False, seconds=0,
                            host=where, dry_run=True)
    return await _execute(inputs, ctx)


@action("shell.check", read_only=True)
async def check(inputs: ShellInputs, ctx: ActionContext) -> ShellOutputs:
    """Run a read-only diagnostic (argv list) locally or over SSH: argv[0] must be in the
    runbook's `shell.read_only` list. It changes nothing, so it runs in dry runs and under the
    kill switch and rate limit, without approval or the service lock; its output is evidence.

    Example: `{uses: shell.check, with: {argv: [df, -h, /var]}}` with
    `shell: {read_only: [df]}` at the top of the runbook.
    """
    check_allowed(inputs.argv, ctx.shell_read_only, "shell.check", "read_only")
    return await _execute(inputs, ctx)


async def _execute(inputs: ShellInputs, ctx: ActionContext) -> ShellOutputs:
    env = build_env(inputs.env, ctx.shell_env, ctx.idempotency_key)
    if inputs.target:
        done, host = await _over_ssh(inputs, ctx, env)
    else:
        done, host = await run_process(inputs.argv, env, inputs.cwd, inputs.timeout_seconds,
                                       inputs.max_output_bytes), "local"
    ctx.emit("shell.output", f"{shlex.join(inputs.argv)} on {host}: "
             + ("timed out" if done.timed_out else f"exit {done.exit_code}"),
             {"argv": inputs.argv, "exit_code": done.exit_code, "seconds": round(done.seconds, 3),
              "stdout": done.stdout[-TIMELINE_BYTES:], "stderr": done.stderr[-TIMELINE_BYTES:],
              "truncated": done.truncated or len(done.stdout) > TIMELINE_BYTES
              or len(done.stderr) > TIMELINE_BYTES})
    if done.timed_out:
        raise ActionTimeout(f"{inputs.argv[0]} ran past {inputs.timeout_seconds:g} s; its "
                            "process group was killed")
    if done.exit_code not in inputs.expect_exit:
        raise CommandFailed(f"{inputs.argv[0]} exited {done.exit_code}: "
                            f"{done.stderr.strip()[-300:]}")
    return ShellOutputs(exit_code=done.exit_code, stdout=done.stdout, stderr=done.stderr,
                        truncated=done.truncated, seconds=round(done.seconds, 3), host=host)
