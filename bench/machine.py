"""What else ran on the machine during a benchmark, read from Linux `/proc`.

Absolute timings here move by 2x with other work on the two cores, so every result file records
the load average before and after the run and the processes that used the most CPU in between,
each marked as the benchmark's own (this process or a descendant) or not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Snapshot", "environment", "snapshot"]

_PROC = Path("/proc")
_TOP = 8


@dataclass(frozen=True)
class Snapshot:
    """Load average and every process's CPU ticks, parent and command line at one moment."""

    at: str
    load_average: tuple[float, float, float]
    ticks: dict[int, int] = field(default_factory=dict)
    parents: dict[int, int] = field(default_factory=dict)
    commands: dict[int, str] = field(default_factory=dict)


def snapshot() -> Snapshot:
    """The machine now (empty process tables where `/proc` cannot be read)."""
    load = os.getloadavg()
    ticks: dict[int, int] = {}
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            head, rest = (entry / "stat").read_text().rsplit(")", 1)
            fields = rest.split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, ValueError, IndexError):
            continue
        pid = int(entry.name)
        ticks[pid] = int(fields[11]) + int(fields[12])
        parents[pid] = int(fields[1])
        commands[pid] = cmdline or head.split("(", 1)[-1]
    return Snapshot(at=datetime.now(UTC).isoformat(timespec="seconds"),
                    load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
                    ticks=ticks, parents=parents, commands=commands)


def _ours(pid: int, parents: dict[int, int], root: int) -> bool:
    seen: set[int] = set()
    while pid not in seen and pid > 1:
        if pid == root:
            return True
        seen.add(pid)
        pid = parents.get(pid, 0)
    return False


def environment(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """The record a result file keeps: CPUs, load average before and after, and the processes
    that used the most CPU between the two snapshots (processes that ended before `after` are
    not seen)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {pid: t - before.ticks.get(pid, 0) for pid, t in after.ticks.items()}
    busiest = sorted((p for p in used if used[p] > 0), key=lambda p: -used[p])[:_TOP]
    me = os.getpid()
    return {
        "cpus": os.cpu_count(),
        "load_average_before": list(before.load_average),
        "load_average_after": list(after.load_average),
        "started": before.at,
        "busiest_processes": [
            {"pid": pid, "command": after.commands[pid][:100],
             "cpu_seconds": round(used[pid] / tick, 2),
             "ours": _ours(pid, after.parents, me)} for pid in busiest],
        "note": "load average over 1, 5 and 15 minutes; CPU seconds between the two "
                "snapshots; `ours` is this benchmark's process or one it started; "
                "processes that ended before the results were written are not listed",
    }
