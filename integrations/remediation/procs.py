"""Running a process safely: argv only, a clean environment, bounded output, and a timeout that
kills the whole process group (SIGTERM, a grace period, then SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass

__all__ = ["Finished", "run_process"]

KILL_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class Finished:
    """What a process did."""

    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    seconds: float
    timed_out: bool


async def _drain(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, bool]:
    kept = bytearray()
    cut = False
    while chunk := await stream.read(65536):
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
        cut = cut or len(chunk) > room
    return bytes(kept), cut


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_process(argv: list[str], env: dict[str, str], cwd: str | None, timeout: float,
                      limit: int, grace: float = KILL_GRACE_SECONDS) -> Finished:
    """Run argv (no shell) in its own session; on timeout kill the group."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    readers = asyncio.gather(_drain(proc.stdout, limit), _drain(proc.stderr, limit))
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        timed_out = True
        _kill_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            _kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    _kill_group(proc.pid, signal.SIGKILL)
    try:
        (out, out_cut), (err, err_cut) = await asyncio.wait_for(readers, grace)
    except TimeoutError:
        readers.cancel()
        out, out_cut, err, err_cut = b"", True, b"", True
    return Finished(exit_code=None if timed_out else proc.returncode,
                    stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
                    truncated=out_cut or err_cut, seconds=time.monotonic() - started,
                    timed_out=timed_out)
