"""Fail the test run when a process the suite started outlives it.

At start the run puts a marker with a unique value in its environment (`RUN_MARKER`); every
process the suite starts inherits it, and so do their own children, even after their parent
died (a temporary Prefect server left by a SIGKILLed `firelane` subprocess). When the session
ends, after every fixture has been torn down, any live process that is a descendant of pytest or
carries this run's marker is listed after a short grace period, killed, and the run fails.

Processes are found through Linux `/proc`. A subreaper would see orphans too, but it would
adopt their zombies and make a killed process look alive to the tests that check one died.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

__all__ = ["RUN_MARKER", "left_behind", "pytest_configure", "pytest_sessionfinish"]

RUN_MARKER = "FIRELANE_TEST_RUN_ID"
GRACE_SECONDS = 10.0


def _status(pid: int) -> tuple[int | None, str]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None, "X"
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


def _carries(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def left_behind(root: int, run_id: str) -> dict[int, str]:
    """Live processes, other than `root`, that descend from it or carry `run_id`."""
    marker = f"{RUN_MARKER}={run_id}".encode()
    parents: dict[int, int | None] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent, state = _status(int(entry.name))
            if state not in ("Z", "X"):
                parents[int(entry.name)] = parent
    found: set[int] = {pid for pid in parents if pid != root and _carries(pid, marker)}
    frontier = [root]
    while frontier:
        current = frontier.pop()
        for pid, parent in parents.items():
            if parent == current and pid not in found:
                found.add(pid)
                frontier.append(pid)
    found.discard(os.getpid())
    return {pid: _command(pid) for pid in found}


def pytest_configure(config: pytest.Config) -> None:
    """Mark this run's environment so its processes can be found at the end."""
    config.stash[_RUN_ID] = uuid.uuid4().hex
    os.environ[RUN_MARKER] = config.stash[_RUN_ID]


_RUN_ID = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """List, kill and fail on any process of the suite still alive at its end."""
    run_id = session.config.stash[_RUN_ID]
    deadline = time.monotonic() + GRACE_SECONDS
    left = left_behind(os.getpid(), run_id)
    while left and time.monotonic() < deadline:
        time.sleep(0.25)
        left = left_behind(os.getpid(), run_id)
    if not left:
        return
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    lines = "\n".join(f"  pid {pid}: {cmd[:300]}" for pid, cmd in sorted(left.items()))
    message = (f"{len(left)} process(es) started by the suite outlived it (killed now):\n"
               f"{lines}")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "processes left behind", red=True)
        reporter.write_line(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
