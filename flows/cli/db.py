"""`firelane db upgrade` and `firelane db status`: the incident store's schema, explicitly."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from firelane.errors import StoreError
from firelane.settings import Settings
from firelane.store import Store

__all__ = ["STATUS_CODES", "UNREACHABLE", "add_db_command"]

STATUS_CODES = {"current": 0, "behind": 1, "newer": 2}
UNREACHABLE = 3


def _upgrade(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.database_url)
    try:
        before, after = store.migrate()
    finally:
        store.close()
    if before.current == after.current:
        print(f"incident store at {store.safe_url}: already at {after.current} (head); "
              "nothing to do")
    else:
        print(f"incident store at {store.safe_url}: upgraded {before.current or 'empty'} → "
              f"{after.current} ({len(before.pending)} migration(s))")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.database_url)
    try:
        status = store.schema_status()
    except StoreError as exc:
        print(f"firelane: {exc}", file=sys.stderr)
        return UNREACHABLE
    finally:
        store.close()
    if args.json:
        print(json.dumps({"store": store.safe_url, "current": status.current,
                          "head": status.head, "pending": list(status.pending),
                          "state": status.state}, indent=2))
        return STATUS_CODES[status.state]
    print(f"store    {store.safe_url}\ncurrent  {status.current or '(empty)'}\n"
          f"head     {status.head}\npending  {' '.join(status.pending) or '(none)'}")
    print({"current": "the schema is current",
           "behind": "the schema is behind: run `firelane db upgrade`",
           "newer": "the schema is NEWER than this Firelane: upgrade Firelane (every process "
                    "refuses to start on it)"}[status.state])
    return STATUS_CODES[status.state]


def add_db_command(sub: Any) -> None:
    """Register `firelane db upgrade` and `firelane db status`."""
    db = sub.add_parser("db", help="upgrade the incident store's schema, or show where it "
                        "stands")
    action = db.add_subparsers(dest="action", required=True)
    upgrade = action.add_parser("upgrade", help="apply pending migrations (idempotent); "
                                "refuses a schema newer than this Firelane")
    upgrade.set_defaults(fn=_upgrade)
    status = action.add_parser("status", help="current and head revision, pending migrations; "
                               "exit 0 current, 1 behind, 2 newer than this Firelane, 3 "
                               "unreadable")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(fn=_status)
