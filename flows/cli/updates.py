"""`firelane update INC-n` (tell stakeholders where the incident stands) and `firelane updates
INC-n` (what they were told), through `IncidentCommands.post_update`: the same verb as the HTTP
API, `/incident update` in Slack and the `incident.update` action.

An update is recorded at once and delivered by the `stakeholder-update` runbook, which a
responder (`firelane respond`) runs: internal updates go to the affected services' stakeholder
channels and lists; a public one waits for approval (Prefect UI, Slack, `firelane approve`)
unless it may publish alone, then reaches the status page and public subscribers.
"""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

from pydantic import ValidationError

from firelane.catalog import serving_catalog
from firelane.commands import Actor, IncidentCommands
from firelane.errors import ConfigError, NotFound
from firelane.loader import load_valid_runbooks
from firelane.settings import Settings
from firelane.store import Store, open_store
from firelane.updates import Audience, UpdateDraft, UpdateStatus, affected_of, parse_affected

__all__ = ["add_update_commands"]


def cmd_update(args: argparse.Namespace, settings: Settings) -> int:
    """Post one update."""
    try:
        draft = UpdateDraft(status=UpdateStatus(args.status), message=" ".join(args.message),
                            affected=parse_affected(args.affected or []),
                            audience=Audience.PUBLIC if args.public else Audience.INTERNAL,
                            publish_alone=args.publish_alone)
    except ValidationError as exc:
        raise ConfigError("update: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
    store = open_store(settings.database_url)
    cmds = IncidentCommands(store, load_valid_runbooks(settings.runbooks_dir)[0])
    by = Actor(name=args.as_ or getpass.getuser(), via="cli", verified=False)
    posted = cmds.post_update(args.ref, draft, by, serving_catalog(settings.catalog_path))
    if args.json:
        print(json.dumps({"update": posted.update.model_dump(mode="json"),
                          "execution_id": posted.execution_id}, indent=2))
        return 0
    print(posted.said)
    print(f"delivery queued (execution {posted.execution_id}): a responder (`firelane "
          "respond`) sends it" + ("; approve it in the Prefect UI, Slack or with `firelane "
                                  "approve`" if posted.update.state == "awaiting_approval"
                                  else ""))
    return 0


def cmd_updates(args: argparse.Namespace, settings: Settings) -> int:
    """List an incident's updates, oldest first."""
    store = open_store(settings.database_url)
    incident = store.get_incident(args.ref)
    found = store.list_updates(incident.id)
    if args.json:
        print(json.dumps([{**u.model_dump(mode="json"),
                            "delivery": _delivery(store, u.execution_id)} for u in found],
                          indent=2))
        return 0
    if any(_delivery(store, u.execution_id) == "delivery FAILED" for u in found):
        print(f"a delivery failed: `firelane incidents show INC-{incident.number}` shows "
              "which step and why")
    if not found:
        print(f"INC-{incident.number} has no updates yet: `firelane update INC-"
              f"{incident.number} --status investigating --message ...`")
    for u in found:
        affected = ", ".join(f"{s} ({i.value})" for s, i in affected_of(u, incident).items())
        print(f"#{u.seq:<3} {u.created_at:%Y-%m-%d %H:%M} {u.audience:<8} {u.status:<13} "
              f"{u.state:<17} {_delivery(store, u.execution_id):<22} {affected}: {u.message}")
    return 0


def _delivery(store: Store, execution_id: str | None) -> str:
    """Where the update's delivery stands: its `stakeholder-update` run's status."""
    if execution_id is None:
        return "delivery not queued"
    try:
        run = store.get_execution(execution_id)
    except NotFound:
        return "delivery not found"
    if run.status.value == "failed":
        return "delivery FAILED"
    return {"succeeded": "delivered", "pending": "delivery queued"}.get(
        run.status.value, f"delivery {run.status.value}")


def add_update_commands(sub: Any) -> None:
    """Register `update` and `updates`."""
    up = sub.add_parser("update", help="tell stakeholders where an incident stands (status "
                        "page, stakeholder channels and lists)")
    up.add_argument("ref", help="INC-12, 12 or the incident id")
    up.add_argument("--status", required=True, choices=[s.value for s in UpdateStatus],
                    help="where the response stands")
    up.add_argument("--message", required=True, nargs="+",
                    help="what people should know, even 'we are still investigating'")
    up.add_argument("--affected", action="append", metavar="SERVICE[=IMPACT]",
                    help="an affected service and its impact (degraded, partial_outage, "
                    "major_outage); default: the incident's service, degraded")
    up.add_argument("--public", action="store_true",
                    help="for the status page and public subscribers (waits for approval "
                    "unless --publish-alone or the catalog allows it)")
    up.add_argument("--publish-alone", action="store_true",
                    help="a public update goes out without approval (recorded with who "
                    "posted it)")
    up.add_argument("--as", dest="as_", metavar="NAME",
                    help="who posts it (default: $USER; recorded as not verified)")
    up.add_argument("--json", action="store_true", help="machine-readable output")
    up.set_defaults(fn=cmd_update)
    ls = sub.add_parser("updates", help="the updates stakeholders got for an incident")
    ls.add_argument("ref", help="INC-12, 12 or the incident id")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(fn=cmd_updates)
