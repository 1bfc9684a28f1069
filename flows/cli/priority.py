"""CPU priority by role: the paging path (the intake, the urgent responder) above everything
else on the machine, flow runs and the Prefect work they cause below it.

On two cores a storm's responses (war rooms, flow runs, the Prefect server's API calls) can take
the CPU the next alert needs to be accepted and paged; a nice value orders them. Raising a
priority (a negative value) needs CAP_SYS_NICE (root, or systemd's `Nice=`); lowering it needs
nothing.
"""

from __future__ import annotations

import os
import sys

__all__ = ["FLOWS_NICE", "set_priority"]

FLOWS_NICE = 5
"""The CPU priority of flow runs (`respond --role flows`, `serve-flows`, the worker) and of
the Prefect server that serves them (the units' `Nice=5`)."""


def set_priority(wanted: int) -> str:
    """Give this process (its calling thread and every thread it starts after) the nice value
    `wanted`; returns what to print in the start-up line. Without the right to raise it, warns
    on stderr and keeps the current value."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if wanted == current:
        return f"CPU priority {current:+d}"
    try:
        os.setpriority(os.PRIO_PROCESS, 0, wanted)
    except PermissionError:
        print(f"warning: cannot set CPU priority {wanted:+d} (needs CAP_SYS_NICE: run as root "
              f"or set Nice={wanted} in the systemd unit); running at {current:+d}",
              file=sys.stderr, flush=True)
        return f"CPU priority {current:+d} (wanted {wanted:+d})"
    return f"CPU priority {wanted:+d}"
