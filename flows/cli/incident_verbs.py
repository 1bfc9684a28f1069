"""`firelane declare` and `firelane incidents ack|severity|role|note|open`: the incident
commander's verbs on the command line, through `firelane.commands` (the same implementation the
Prefect UI's `incident-command` deployment uses).

The CLI cannot prove who is typing: changes are recorded as made by `--as` (default: the OS
user) through `cli`, marked not verified.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
from typing import Any

from pydantic import ValidationError

from firelane.commands import Actor, Changed, IncidentCommands
from firelane.errors import ConfigError
from firelane.inputs import new_execution
from firelane.loader import find_runbook, load_runbook, load_valid_runbooks
from firelane.models import IncidentDraft, Role, Severity
from firelane.settings import Settings
from firelane.store import Store, open_store

__all__ = ["add_declare_command", "add_incident_verbs", "mirror_now", "sync_now"]


def sync_now(store: Store, incident_id: str) -> str:
    """Bring the incident's page and ticket in step now; what is left stays pending for the
    responders' sweep (`firelane respond`), which retries it."""
    from flows.engine.lifecycle import drain

    try:
        asyncio.run(drain(store, incident_id))
    except Exception as exc:
        return f"page/ticket not updated yet ({type(exc).__name__}: {exc}); responders retry it"
    left = store.pending_syncs(incident_id)
    if left:
        return (f"page/ticket not updated yet ({left[-1].error or 'busy'}); "
                "responders (`firelane respond`) retry it")
    last = next((e for e in reversed(store.timeline(incident_id))
                 if e.kind.startswith("lifecycle.")), None)
    return last.summary if last is not None else "no page or ticket to update"


def _actor(args: argparse.Namespace) -> Actor:
    return Actor(name=args.as_ or getpass.getuser(), via="cli", verified=False)


def mirror_now(store: Store, incident_id: str, invite: list[str] | None = None) -> str:
    """Bring the war room's topic (and members) in step now; what it says."""
    from flows.engine.war_room import mirror_war_room

    try:
        done = asyncio.run(mirror_war_room(store, incident_id, invite))
    except Exception as exc:
        return f"war room not updated ({type(exc).__name__}: {exc})"
    return "war room topic updated" if done else "no war room updated"


def _told(store: Store, result: Changed, sync: bool = False, mirror: bool = True,
          invite: list[str] | None = None) -> int:
    incident = result.incident
    print(f"INC-{incident.number}: {result.said}" if result.changed
          else f"INC-{incident.number}: nothing to change ({result.said})")
    if sync and result.changed:
        print(sync_now(store, incident.id))
    if mirror and result.changed:
        print(mirror_now(store, incident.id, invite))
    return 0


def _labels(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--label {pair!r}: write KEY=VALUE")
        out[key.strip()] = value
    return out


def cmd_declare(args: argparse.Namespace, settings: Settings) -> int:
    """Declare an incident from flags; `--runbook` leaves its response to the responders."""
    try:
        draft = IncidentDraft(title=args.title, severity=Severity(args.severity),
                              service=args.service, description=args.description,
                              commander=args.commander, labels=_labels(args.label or []),
                              private=args.private)
    except ValidationError as exc:
        raise ConfigError("declare: " + "; ".join(
            f"--{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
    loaded = load_runbook(find_runbook(args.runbook, settings.runbooks_dir)) \
        if args.runbook else None
    store = open_store(settings.database_url)
    incident = IncidentCommands(store).declare(draft, _actor(args))
    execution = store.create_execution(new_execution(loaded, incident, {}, for_responder=True)) \
        if loaded is not None else None
    if args.json:
        data: dict[str, Any] = {"incident": incident.model_dump(mode="json"),
                                "execution_id": execution.id if execution else None}
        print(json.dumps(data, indent=2))
        return 0
    print(("Private " if incident.private else "")
          + f"INC-{incident.number} declared: [{incident.severity}] {incident.title}"
          + (f" · commander {incident.commander}" if incident.commander else ""))
    if execution is not None and loaded is not None:
        print(f"runbook {loaded.runbook.name} queued (execution {execution.id}): a responder "
              f"(`firelane respond`) runs it; `firelane incidents show INC-{incident.number}` "
              "follows it")
    return 0


def cmd_verb(args: argparse.Namespace, settings: Settings) -> int:
    """One of ack, severity, role, note, open."""
    store = open_store(settings.database_url)
    cmds = IncidentCommands(store, load_valid_runbooks(settings.runbooks_dir)[0]
                            if args.action == "severity" else None)
    if args.action == "open":
        found = cmds.open_incidents(args.limit)
        if not found:
            print("no open incidents")
        for i in found:
            print(f"INC-{i.number:<5} {i.severity} {i.status:<13} "
                  f"{i.created_at:%Y-%m-%d %H:%M} {i.service:<16} {i.title}")
        return 0
    by = _actor(args)
    if args.action == "ack":
        return _told(store, cmds.acknowledge(args.ref, by), sync=True)
    if args.action == "severity":
        result = cmds.set_severity(args.ref, Severity(args.to), by, args.reason)
        _told(store, result)
        if result.changed:
            from flows.engine.severity import follow_severity

            for line in asyncio.run(follow_severity(store, result.incident.id)):
                print(line)
        return 0
    if args.action == "role":
        return _told(store, cmds.assign(args.ref, Role(args.role), args.person, by),
                     invite=[args.person])
    return _told(store, cmds.note(args.ref, " ".join(args.text), by), mirror=False)


def _who(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="as_", metavar="NAME",
                        help="who makes the change (default: $USER; recorded as not verified)")


def add_incident_verbs(inc_sub: Any) -> None:
    """`incidents ack|severity|role|note|open` under the `incidents` command."""
    ack = inc_sub.add_parser("ack", help="acknowledge (the first to acknowledge becomes "
                             "commander unless one is set); the page follows")
    ack.add_argument("ref", help="INC-12, 12 or the incident id")
    sev = inc_sub.add_parser("severity", help="raise or lower the severity, with a reason")
    sev.add_argument("ref", help="INC-12, 12 or the incident id")
    sev.add_argument("to", choices=[s.value for s in Severity], help="the new severity")
    sev.add_argument("--reason", default="", help="why (shown on the timeline)")
    role = inc_sub.add_parser("role", help="name the commander or communicator, or add an "
                              "investigator")
    role.add_argument("ref", help="INC-12, 12 or the incident id")
    role.add_argument("role", choices=[r.value for r in Role], help="the role")
    role.add_argument("person", help="who (a name or handle)")
    note = inc_sub.add_parser("note", help="add a note to the timeline (a key event)")
    note.add_argument("ref", help="INC-12, 12 or the incident id")
    note.add_argument("text", nargs="+", help="the note")
    for parser in (ack, sev, role, note):
        _who(parser)
        parser.set_defaults(fn=cmd_verb)
    opened = inc_sub.add_parser("open", help="open incidents, the most severe first, then "
                                "the oldest")
    opened.add_argument("--limit", type=int, default=200, help="at most this many")
    opened.set_defaults(fn=cmd_verb)


def add_declare_command(sub: Any) -> None:
    """`firelane declare`: an incident from flags, no JSON file needed."""
    dec = sub.add_parser("declare", help="declare an incident by hand (and queue its runbook)")
    dec.add_argument("--title", required=True, help="what is wrong, in one line")
    dec.add_argument("--severity", required=True, choices=[s.value for s in Severity],
                     help="SEV1 is the worst")
    dec.add_argument("--service", required=True, help="the affected service (catalog name)")
    dec.add_argument("--description", default="", help="more detail")
    dec.add_argument("--commander", default=None, help="the incident commander")
    dec.add_argument("--label", action="append", metavar="KEY=VALUE", help="a label")
    dec.add_argument("--private", action="store_true", help="a security incident: private "
                     "war room, hidden from listings without access")
    dec.add_argument("--runbook", default=None,
                     help="queue this runbook for the responders (`firelane run` runs one "
                     "attended instead)")
    dec.add_argument("--json", action="store_true", help="machine-readable output")
    _who(dec)
    dec.set_defaults(fn=cmd_declare)
