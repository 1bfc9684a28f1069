"""`firelane timeline` and `firelane action-items`, registered without importing Prefect (the
commands import their flows when they run, so `validate` and `--plan` stay offline)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from firelane.run_marks import describe_marks
from firelane.settings import Settings
from firelane.store import open_store
from firelane.timeparse import parse_time

__all__ = ["add_records_commands"]


def _timeline(args: argparse.Namespace, settings: Settings) -> int:
    from flows.records.report import render, zone
    from flows.runs.report import assemble

    store = open_store(settings.database_url)
    inc = store.get_incident(args.incident)
    report, _ = asyncio.run(assemble(store, inc, args.tz, args.offline))
    if args.format == "json":
        text = json.dumps([e.model_dump(mode="json") for e in report.entries], indent=2)
    elif args.format == "text":
        tz = zone(args.tz)
        head = [f"INC-{inc.number} {describe_marks(report.marks)}: not a real incident"] \
            if report.marks else []
        text = "\n".join(head + [f"{e.at.astimezone(tz):%Y-%m-%d %H:%M:%S}  {e.source:<9} "
                         f"{'*' if e.key else ' '} {e.summary}" for e in report.entries])
    else:
        text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output} ({len(report.entries)} events)")
    else:
        print(text)
    return 0


def _action_items(args: argparse.Namespace, settings: Settings) -> int:
    from flows.runs.action_items import add_action_item

    store = open_store(settings.database_url)
    if args.action == "add":
        item = asyncio.run(add_action_item(store, args.incident, args.title, args.owner,
                                           parse_time(args.due) if args.due else None))
        print(f"action item {item.id} · {item.external_key or 'no Jira issue'} · "
              f"owner {item.owner or '-'} · due {item.due:%Y-%m-%d}" if item.due else
              f"action item {item.id} · {item.external_key or 'no Jira issue'}")
        return 0
    incident = store.get_incident(args.incident).id if args.incident else None
    for item in store.list_action_items(incident_id=incident):
        due = f"{item.due:%Y-%m-%d}" if item.due else "-"
        print(f"{item.status:<5} {item.external_key or '-':<10} due {due:<10} "
              f"{item.owner or '-':<24} {item.title}")
    return 0


def add_records_commands(sub: Any) -> None:
    """Register `firelane timeline` and `firelane action-items`."""
    cmd = sub.add_parser("timeline", help="an incident's timeline from every source")
    cmd.add_argument("incident", help="INC-12, 12 or the incident id")
    cmd.add_argument("--format", choices=["text", "md", "html", "json"], default="text",
                     help="text lines (default), the Markdown or HTML report, or JSON events")
    cmd.add_argument("--tz", default="UTC", help="IANA time zone to show times in")
    cmd.add_argument("--output", help="write to this file instead of stdout")
    cmd.add_argument("--offline", action="store_true",
                     help="only what the store holds (no PagerDuty, Slack or Jira calls)")
    cmd.set_defaults(fn=_timeline)
    items = sub.add_parser("action-items", help="postmortem action items")
    acts = items.add_subparsers(dest="action", required=True)
    add = acts.add_parser("add", help="add an item (and its Jira issue)")
    add.add_argument("incident", help="INC-12, 12 or the incident id")
    add.add_argument("title", help="what has to be done")
    add.add_argument("--owner", help="owner's email (Slack reminders go to it)")
    add.add_argument("--due", help="2026-12-01, or +7d")
    lst = acts.add_parser("list", help="items, of one incident or all")
    lst.add_argument("incident", nargs="?", help="INC-12, 12 or the incident id (default: all)")
    items.set_defaults(fn=_action_items)
