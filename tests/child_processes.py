"""Fail the test run when a process the suite started outlives it.

At start the pytest process becomes a child subreaper (Linux `PR_SET_CHILD_SUBREAPER`), so a
grandchild whose parent exited (a daemon, or a temporary Prefect server started by a `firelane`
subprocess) is re-parented to pytest instead of to init and stays visible as a descendant. When
the session ends, after every fixture has been torn down, any descendant still alive after a
short grace period is listed, killed, and the run fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

import pytest

__all__ = ["descendants", "pytest_configure", "pytest_sessionfinish"]

_PR_SET_CHILD_SUBREAPER = 36
GRACE_SECONDS = 10.0


def _parent_of(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def descendants(root: int) -> dict[int, str]:
    """Live (non-zombie) descendants of `root`, with their command lines."""
    parents = {int(p.name): _parent_of(int(p.name)) for p in Path("/proc").iterdir()
               if p.name.isdigit()}
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        current = frontier.pop()
        for pid, parent in parents.items():
            if parent == current and pid not in found:
                found[pid] = _command(pid)
                frontier.append(pid)
    return {pid: cmd for pid, cmd in found.items() if not _is_zombie(pid)}


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def pytest_configure(config: pytest.Config) -> None:
    """Adopt orphaned grandchildren so that the end-of-run check can see them."""
    if hasattr(config, "workerinput"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """List, kill and fail on any process of the suite still alive at its end."""
    deadline = time.monotonic() + GRACE_SECONDS
    left = descendants(os.getpid())
    while left and time.monotonic() < deadline:
        time.sleep(0.25)
        _reap()
        left = descendants(os.getpid())
    if not left:
        return
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _reap()
    lines = "\n".join(f"  pid {pid}: {cmd[:300]}" for pid, cmd in sorted(left.items()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = (f"{len(left)} process(es) started by the suite outlived it (killed now):\n"
               f"{lines}")
    if reporter is not None:
        reporter.write_sep("=", "processes left behind", red=True)
        reporter.write_line(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
