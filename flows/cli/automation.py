"""`firelane automation`: the kill switch and maintenance windows.

    firelane automation pause [SERVICE] [--until +2h|2026-11-23T18:00Z] [--reason ...]
    firelane automation resume [SERVICE]
    firelane automation maintenance SERVICE --start TIME --end TIME [--reason ...]
    firelane automation status

While a pause or window covers a service (`*`, the default, covers all), every destructive step
for it is skipped with the reason on the timeline; coordination steps (pages, tickets, channels)
still run. The state lives in the incident store, so every worker sees it at once.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from firelane.errors import ConfigError
from firelane.models import utcnow
from firelane.settings import Settings
from firelane.store import open_store
from firelane.store.guardrails import ALL_SERVICES
from firelane.timeparse import parse_time

__all__ = ["add_automation_command"]

def cmd_automation(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings.database_url)
    who = args.as_ or getpass.getuser()
    if args.action == "pause":
        until = parse_time(args.until) if args.until else None
        pause = store.add_pause("pause", args.service, who, args.reason, until=until)
        print(f"{pause.describe()}\nDestructive steps are skipped; coordination steps still run."
              f" Undo with: firelane automation resume {args.service}")
    elif args.action == "resume":
        lifted = store.lift_pauses(args.service)
        print(f"lifted {lifted} pause(s) on {args.service}" if lifted else
              f"no pause was in force on {args.service}")
    elif args.action == "maintenance":
        start, end = parse_time(args.start), parse_time(args.end)
        if end <= start:
            raise ConfigError("--end must be after --start")
        window = store.add_pause("maintenance", args.service, who, args.reason,
                                 starts_at=start, until=end)
        print(f"{window.describe()} from {start:%Y-%m-%d %H:%M} UTC")
    else:
        found = store.pauses(upcoming=True)
        now = utcnow()
        for p in found:
            state = "active" if p.starts_at <= now else f"from {p.starts_at:%Y-%m-%d %H:%M}"
            print(f"{state:<22} {p.describe()}")
        if not found:
            print("automation runs everywhere: no pause and no maintenance window")
    return 0


def add_automation_command(sub: Any) -> None:
    """Register `firelane automation`."""
    cmd = sub.add_parser("automation", help="kill switch and maintenance windows for "
                         "destructive steps")
    acts = cmd.add_subparsers(dest="action", required=True)
    pause = acts.add_parser("pause", help="stop destructive steps now")
    pause.add_argument("service", nargs="?", default=ALL_SERVICES,
                       help="one service (default: all)")
    pause.add_argument("--until", help="+30m, +2h, +1d or an ISO 8601 time (default: until "
                       "resumed)")
    pause.add_argument("--reason", default="", help="why (shown to whoever is blocked)")
    resume = acts.add_parser("resume", help="lift the pause")
    resume.add_argument("service", nargs="?", default=ALL_SERVICES,
                        help="the service whose pause to lift (default: the pause of all)")
    window = acts.add_parser("maintenance", help="schedule a maintenance window")
    window.add_argument("service", help="the service under maintenance")
    window.add_argument("--start", required=True, help="+30m or an ISO 8601 time")
    window.add_argument("--end", required=True, help="+3h or an ISO 8601 time")
    window.add_argument("--reason", default="", help="why (shown to whoever is blocked)")
    acts.add_parser("status", help="pauses and windows in force or scheduled")
    for parser in (pause, resume, window):
        parser.add_argument("--as", dest="as_", metavar="NAME",
                            help="who does this (default: $USER)")
    cmd.set_defaults(fn=cmd_automation, as_=None)
