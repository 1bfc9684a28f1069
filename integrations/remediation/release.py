"""`release.rollback`: point a Capistrano-style `current` symlink at the previous (or a named)
release, atomically, then restart the service through supervisord.

    <release_dir>/releases/20261101-1200/   <release_dir>/releases/20261123-0900/
    <release_dir>/current -> releases/20261123-0900

Releases sort by name (timestamps). The switch is a new symlink renamed over `current`, so
readers see the old or the new target, never neither. The step's idempotency key is recorded
in `<release_dir>/.firelane/`: a re-run after a crash does not roll back a second release, it
only finishes the restart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ActionError, ConfigError
from firelane.registry import ActionContext, action
from integrations.remediation.supervisor import ProcessInputs
from integrations.remediation.supervisor import restart as supervisor_restart

__all__ = ["RollbackInputs", "RollbackOutputs", "plan_rollback"]


class RollbackInputs(BaseModel):
    """`release.rollback` inputs."""

    model_config = ConfigDict(extra="forbid")
    release_dir: str = Field(description="Holds releases/ and the current symlink",
                             json_schema_extra={"catalog": "release_dir"})
    to: str | None = Field(default=None, description="Release name (default: the previous)")
    program: str | None = Field(default=None, description="supervisord program to restart",
                                json_schema_extra={"catalog": "supervisor.program"})
    supervisor_url: str = Field(default="unix:///var/run/supervisor.sock",
                                json_schema_extra={"catalog": "supervisor.url"})
    credentials_block: str | None = Field(
        default=None, json_schema_extra={"catalog": "supervisor.credentials_block"})


class RollbackOutputs(BaseModel):
    """What was switched."""

    from_release: str
    to_release: str
    restarted: bool
    pid: int | None = None
    dry_run: bool = False


class _Noop(ActionError):
    retryable = False


def plan_rollback(release_dir: Path, to: str | None) -> tuple[str, str]:
    """(from, to) release names; refuses what cannot be rolled back to."""
    current = release_dir / "current"
    releases = release_dir / "releases"
    if not current.is_symlink():
        raise ConfigError(f"{current} is not a symlink (expected a Capistrano-style layout)")
    now = Path(os.readlink(current)).name
    names = sorted(p.name for p in releases.iterdir() if p.is_dir()) if releases.is_dir() else []
    if to is not None:
        if to not in names:
            raise _Noop(f"no release {to!r} in {releases} (have {', '.join(names) or 'none'})")
        if to == now:
            raise _Noop(f"{to} is already the current release")
        return now, to
    older = [n for n in names if n < now]
    if not older:
        raise _Noop(f"no release older than {now} in {releases}: nothing to roll back to")
    return now, older[-1]


def preview_rollback(inputs: RollbackInputs) -> dict[str, str]:
    """The releases a rollback will switch between, read now for its approval request."""
    source, target = plan_rollback(Path(inputs.release_dir), inputs.to)
    restart = f", then restart {inputs.program}" if inputs.program else ""
    return {"switch": f"{inputs.release_dir}/current: {source} → {target}{restart}"}


def _switch(release_dir: Path, target: str) -> None:
    link = release_dir / f".current.{os.getpid()}.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(Path("releases") / target)
    os.replace(link, release_dir / "current")


@action("release.rollback", destructive=True, preview=preview_rollback)
async def rollback(inputs: RollbackInputs, ctx: ActionContext) -> RollbackOutputs:
    """Switch `current` to the previous (or `to`) release and restart the program; records
    from→to on the timeline. Refuses when there is nothing to roll back to.

    Example: `{uses: release.rollback, with: {release_dir: /srv/web, program: web}}`
    """
    root = Path(inputs.release_dir)
    marker = root / ".firelane" / f"rollback-{ctx.idempotency_key}.json"
    if marker.exists():
        done = json.loads(marker.read_text())
        source, target = done["from"], done["to"]
    else:
        source, target = plan_rollback(root, inputs.to)
        if ctx.dry_run:
            ctx.emit("release.dry_run", f"would roll back {root.name}: {source} → {target}",
                     {"from": source, "to": target})
            return RollbackOutputs(from_release=source, to_release=target, restarted=False,
                                   dry_run=True)
        marker.parent.mkdir(exist_ok=True)
        _switch(root, target)
        marker.write_text(json.dumps({"from": source, "to": target}))
        ctx.emit("release.switched", f"{root.name}: current {source} → {target}",
                 {"from": source, "to": target, "release_dir": str(root)})
    if not inputs.program:
        return RollbackOutputs(from_release=source, to_release=target, restarted=False)
    restarted = await supervisor_restart(ProcessInputs(
        program=inputs.program, url=inputs.supervisor_url,
        credentials_block=inputs.credentials_block), ctx)
    return RollbackOutputs(from_release=source, to_release=target, restarted=True,
                           pid=restarted.pid)
