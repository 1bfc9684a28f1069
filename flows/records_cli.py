"""`firelane timeline` and `firelane action-items`, registered without importing Prefect (the
commands import their flows when they run, so `validate` and `--plan` stay offline)."""

from __future__ import annotations

import argparse
from typing import Any

from firelane.settings import Settings

__all__ = ["add_records_commands"]


def _timeline(args: argparse.Namespace, settings: Settings) -> int:
    from flows.report_flow import cmd_timeline

    return cmd_timeline(args, settings)


def _action_items(args: argparse.Namespace, settings: Settings) -> int:
    from flows.action_items import cmd_action_items

    return cmd_action_items(args, settings)


def add_records_commands(sub: Any) -> None:
    """Register `firelane timeline` and `firelane action-items`."""
    cmd = sub.add_parser("timeline", help="an incident's timeline from every source")
    cmd.add_argument("incident", help="INC-12, 12 or the incident id")
    cmd.add_argument("--format", choices=["text", "md", "html", "json"], default="text")
    cmd.add_argument("--tz", default="UTC", help="IANA time zone to show times in")
    cmd.add_argument("--output", help="write to this file instead of stdout")
    cmd.add_argument("--offline", action="store_true",
                     help="only what the store holds (no PagerDuty, Slack or Jira calls)")
    cmd.set_defaults(fn=_timeline)
    items = sub.add_parser("action-items", help="postmortem action items")
    acts = items.add_subparsers(dest="action", required=True)
    add = acts.add_parser("add", help="add an item (and its Jira issue)")
    add.add_argument("incident")
    add.add_argument("title")
    add.add_argument("--owner", help="owner's email (Slack reminders go to it)")
    add.add_argument("--due", help="2026-12-01, or +7d")
    lst = acts.add_parser("list", help="items, of one incident or all")
    lst.add_argument("incident", nargs="?")
    items.set_defaults(fn=_action_items)
