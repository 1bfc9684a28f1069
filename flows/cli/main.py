"""The `firelane` command line.

`run`, `resume`, `approve`, `incidents list|show`, and the authoring commands `validate`, `lint`,
`schema` and `actions`. Prefect is imported only by the commands that run something: the
authoring commands and `run --plan` never touch it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from firelane.commands import Actor, IncidentCommands
from firelane.errors import FirelaneError, RunbookError
from firelane.inputs import new_execution, parse_cli_inputs, resolve_inputs
from firelane.links import incident_links
from firelane.loader import find_runbook, load_runbook
from firelane.logs import logging_for
from firelane.models import Incident, IncidentDraft, IncidentStatus
from firelane.redaction import install as install_redaction
from firelane.run_marks import DRY_RUN, SANDBOX, describe_marks
from firelane.settings import Settings
from firelane.store import Store, open_store
from flows.cli.authoring import add_authoring_commands
from flows.cli.automation import add_automation_command
from flows.cli.db import add_db_command
from flows.cli.deployments import add_deployment_commands
from flows.cli.doctor import add_doctor_command
from flows.cli.incident_verbs import (
    add_declare_command,
    add_incident_verbs,
    mirror_now,
    sync_now,
)
from flows.cli.prefect_env import (
    no_api_message,
    prefect_missing,
    quiet_prefect,
    temporary_server_note,
)
from flows.cli.records import add_records_commands
from flows.cli.respond import add_respond_command
from flows.cli.sandbox import add_sandbox_command, sandbox_for_run, summarize_sandbox
from flows.cli.serve import add_serve_command
from flows.cli.status_page import add_status_page_command
from flows.cli.tokens import add_tokens_command
from flows.cli.updates import add_update_commands
from flows.engine.plugins import load_plugins

__all__ = ["main"]


def _read_incident(path: str) -> IncidentDraft:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunbookError(f"--incident {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise RunbookError(f"--incident {path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    try:
        return IncidentDraft.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}"
                             for e in exc.errors())
        raise RunbookError(f"--incident {path}: {problems} (an incident file needs title, "
                           "severity SEV1-SEV4 and service)") from exc


_LINK_KEYS = ("url", "key", "dedup_key", "name", "ts", "file_id")


def _print_rows(rows: list[dict[str, Any]], outputs: dict[str, dict[str, Any]]) -> None:
    for row in rows:
        secs = f"{row['seconds']:.2f}s" if row["seconds"] is not None else "-"
        said = row["error"] or row.get("reason")
        err = f"  {said}" if said else ""
        shown = {k: v for k, v in (outputs.get(str(row["step"])) or {}).items()
                 if k in _LINK_KEYS and v}
        links = "  " + " ".join(f"{k}={v}" for k, v in shown.items()) if shown else ""
        print(f"  {row['status']:<10} {row['step']:<24} {row['uses']:<24} {secs:>8}{err}{links}")


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    loaded = load_runbook(find_runbook(args.runbook, settings.runbooks_dir))
    draft = _read_incident(args.incident)
    given = parse_cli_inputs(args.input or [])
    if args.plan:
        from flows.cli.plan import build_plan, format_plan

        inputs = resolve_inputs(loaded, given)
        preview = Incident(title=draft.title, severity=draft.severity, service=draft.service,
                           labels=draft.labels, description=draft.description,
                           commander=draft.commander)
        plan = build_plan(loaded, preview, inputs, dry_run=args.dry_run)
        print(json.dumps(plan, indent=2) if args.json else format_plan(plan))
        return 0
    store = open_store(settings.database_url)
    resolve_inputs(loaded, given)
    incident = store.declare_incident(draft, actor=getpass.getuser())
    execution = store.create_execution(new_execution(loaded, incident, given,
                                                     dry_run=args.dry_run, sandbox=args.sandbox))
    print(f"INC-{incident.number} declared · execution {execution.id} · runbook "
          f"{loaded.runbook.name}" + (" · DRY RUN" if args.dry_run else "")
          + (" · SANDBOX" if args.sandbox else ""))
    if not args.sandbox:
        return _run_and_report(store, execution.id, args.json, args)
    with sandbox_for_run() as sb:
        return _run_and_report(store, execution.id, args.json, args,
                               (lambda: summarize_sandbox(sb)) if sb is not None else None)


def _run_and_report(store: Store, execution_id: str, as_json: bool,
                    args: argparse.Namespace | None = None,
                    before_last: Callable[[], str] | None = None) -> int:
    from flows.cli.attended import Interrupted, run_attended
    from flows.cli.outcome_line import final_line, outcome_of, rerun_of

    try:
        result = run_attended(store, execution_id)
    except Interrupted as stopped:
        print(stopped, file=sys.stderr)
        return stopped.code
    outcome = outcome_of(result)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        records = store.step_records(execution_id)
        _print_rows(result["steps"], {k: r.outputs or {} for k, r in records.items()})
        if before_last is not None:
            print(before_last())
        rerun = rerun_of(args, store.get_execution(execution_id).runbook_name)
        print(final_line(store, execution_id, outcome, rerun))
    return outcome.exit_code


def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    from flows.cli.attended import resolve_execution

    store = open_store(settings.database_url)
    execution = resolve_execution(store, args.execution)
    return _run_and_report(store, execution.id, args.json)


def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    from flows.runs.approvals import decide

    store = open_store(settings.database_url)
    incident = store.get_incident(args.incident)
    pending = [a for a in store.approvals_for(incident.id, args.step) if a.status == "pending"]
    if not pending:
        decided = store.approvals_for(incident.id, args.step)
        state = f"already {decided[0].status} by {decided[0].decided_by}" if decided else \
            "never requested"
        print(f"INC-{incident.number} step {args.step}: no pending approval ({state})",
              file=sys.stderr)
        return 1
    token = args.token or (settings.api_token.get_secret_value()
                           if settings.api_token is not None else None)
    how, by = "cli", args.as_ or getpass.getuser()
    if token:
        how, by = "token", store.check_token(token, "write").owner
    approval, won = asyncio.run(decide(store, pending[0], not args.reject, by, args.reason,
                                       how=how))
    if not won:
        print(f"too late: {approval.step_id} was already {approval.status} by "
              f"{approval.decided_by}", file=sys.stderr)
        return 1
    print(f"INC-{incident.number} {approval.step_id}: {approval.status} by {by}")
    return 0


def _incident_dict(store: Store, incident: Incident, full: bool,
                   marks: tuple[str, ...] | None = None) -> dict[str, Any]:
    data = incident.model_dump(mode="json")
    data["marks"] = list(marks if marks is not None
                         else store.run_marks([incident.id])[incident.id])
    if full:
        data["executions"] = [e.model_dump(mode="json", exclude={"runbook_source"})
                              for e in store.list_executions(incident.id)]
        events = store.timeline(incident.id)
        data["timeline"] = [e.model_dump(mode="json") for e in events]
        data["sandbox_links"] = [v.kind for v in incident_links(incident, events) if v.sandbox]
    return data


def _print_incidents(found: list[Incident], status: str | None,
                     marks: dict[str, tuple[str, ...]]) -> None:
    if not found:
        print(f"no {status} incidents" if status else
              "no incidents yet (declare one with `firelane declare`, or "
              "send an alert to `firelane serve`)")
        return
    print(f"{'INCIDENT':<9} {'SEV':<4} {'STATUS':<12} {'DECLARED (UTC)':<16} "
          f"{'UPDATED (UTC)':<16} {'SERVICE':<16} TITLE")
    for i in found:
        print(f"{f'INC-{i.number}':<9} {i.severity:<4} {i.status:<12} "
              f"{i.created_at:%Y-%m-%d %H:%M} {i.updated_at:%Y-%m-%d %H:%M} {i.service:<16} "
              f"{i.title}" + (f"  {describe_marks(marks[i.id])}" if marks.get(i.id) else ""))


def cmd_incidents(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings.database_url)
    if args.action == "status":
        by = Actor(name=args.as_ or getpass.getuser(), via="cli")
        result = IncidentCommands(store).set_status(args.ref, IncidentStatus(args.to), by,
                                                    args.reason)
        changed = result.incident
        print(f"INC-{changed.number} is {changed.status}" if result.changed
              else f"INC-{changed.number}: nothing to change ({result.said})")
        if result.changed:
            print(sync_now(store, changed.id))
            print(mirror_now(store, changed.id))
        if changed.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED) and args.report:
            from flows.runs.report import report_once

            reported = report_once(store, changed.id, args.tz)
            print("report and postmortem draft: " + ", ".join(reported["paths"]) if reported
                  else "the report of this resolution already ran")
        return 0
    if args.action == "list":
        status = IncidentStatus(args.status) if args.status else None
        found = store.list_incidents(status=status, limit=args.limit)
        marks = store.run_marks([i.id for i in found])
        if args.json:
            print(json.dumps([_incident_dict(store, i, False, marks[i.id]) for i in found],
                             indent=2))
        else:
            _print_incidents(found, args.status, marks)
        return 0
    incident = store.get_incident(args.ref)
    data = _incident_dict(store, incident, True)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"INC-{incident.number} [{incident.severity}] {incident.title}"
          + (f"  {describe_marks(data['marks'])}" if data["marks"] else "") + "\n"
          f"  status {incident.status} · service {incident.service} · "
          f"commander {incident.commander or '-'}")
    views = incident_links(incident, store.timeline(incident.id))
    print("  links" + ("" if views else " —"))
    for view in views:
        print(f"    {view.title:<18} {view.url}" + ("  (sandbox)" if view.sandbox else ""))
    for ex in data["executions"]:
        print(f"  execution {ex['id']} {ex['runbook_name']} {ex['status']}"
              + "".join(f" ({m})" for m, on in ((DRY_RUN, ex["dry_run"]),
                                                 (SANDBOX, ex["sandbox"])) if on))
    for ev in data["timeline"]:
        print(f"  {ev['at'][:23]}  {ev['kind']:<20} {ev['summary']}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="firelane", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"firelane {_version()}",
                   help="print Firelane's version and exit")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also show Prefect's own INFO log lines (hidden by default)")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a runbook for a new incident")
    run.add_argument("runbook", help="runbook name (in FIRELANE_RUNBOOKS_DIR) or file path")
    run.add_argument("--incident", required=True, help="JSON file: title, severity, service")
    run.add_argument("--input", action="append", metavar="KEY=VALUE", help="runbook input")
    run.add_argument("--plan", action="store_true", help="print the plan; run nothing")
    run.add_argument("--dry-run", action="store_true",
                     help="run, but change nothing outside: read-only steps run, every "
                     "other step reports what it would do or send")
    run.add_argument("--sandbox", action="store_true",
                     help="point integrations at the embedded sandbox")
    run.add_argument("--json", action="store_true", help="machine-readable output")
    run.set_defaults(fn=cmd_run)
    resume = sub.add_parser("resume", help="resume an execution that stopped part-way "
                            "(interrupted, crashed, or waiting with nobody running it)")
    resume.add_argument("execution", help="execution id, or INC-12 / 12 / the incident id "
                        "(its one unfinished execution)")
    resume.add_argument("--json", action="store_true", help="machine-readable output")
    resume.set_defaults(fn=cmd_resume)
    approve = sub.add_parser("approve", help="approve (or --reject) a step waiting for approval")
    approve.add_argument("incident", help="INC-12, 12 or the incident id")
    approve.add_argument("step", help="the step id waiting for approval")
    approve.add_argument("--reject", action="store_true", help="reject instead of approving")
    approve.add_argument("--reason", default="", help="why (on the timeline and in the war "
                         "room)")
    approve.add_argument("--as", dest="as_", metavar="NAME",
                         help="who decides (default: $USER; a claim, refused where the step "
                         "names approvers)")
    approve.add_argument("--token", default=None, metavar="TOKEN",
                         help="decide as the owner of this write API token (default: "
                         "$FIRELANE_API_TOKEN): the proof a step with approvers needs")
    approve.set_defaults(fn=cmd_approve)
    inc = sub.add_parser("incidents", help="list or show incidents")
    inc_sub = inc.add_subparsers(dest="action", required=True)
    lst = inc_sub.add_parser("list", help="incidents, newest first")
    lst.add_argument("--status", choices=[s.value for s in IncidentStatus],
                     help="only incidents in this status")
    lst.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    show = inc_sub.add_parser("show", help="one incident: links, executions, timeline")
    show.add_argument("ref", help="INC-12, 12 or the incident id")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    status = inc_sub.add_parser("status", help="acknowledge, mitigate, resolve, close, reopen; "
                                "resolving runs the timeline report and postmortem draft")
    status.add_argument("ref", help="INC-12, 12 or the incident id")
    status.add_argument("to", choices=[s.value for s in IncidentStatus],
                        help="the new status")
    status.add_argument("--reason", default="", help="why (on the timeline)")
    status.add_argument("--as", dest="as_", metavar="NAME", help="who (default: $USER)")
    status.add_argument("--tz", default="UTC", help="time zone of the report")
    status.add_argument("--no-report", dest="report", action="store_false",
                        help="do not run the report on resolve")
    inc.set_defaults(fn=cmd_incidents)
    add_incident_verbs(inc_sub)
    add_declare_command(sub)
    add_update_commands(sub)
    add_tokens_command(sub)
    add_authoring_commands(sub)
    add_sandbox_command(sub)
    add_serve_command(sub)
    add_respond_command(sub)
    add_automation_command(sub)
    add_deployment_commands(sub)
    add_records_commands(sub)
    add_db_command(sub)
    add_doctor_command(sub)
    add_status_page_command(sub)
    return p


_LOG_ROLES = {"serve": "intake", "serve-flows": "worker", "worker": "worker"}


def _log_role(args: argparse.Namespace) -> str | None:
    if args.command == "respond":
        return f"responder-{args.role}"
    return _LOG_ROLES.get(args.command)


def _version() -> str:
    try:
        return version("firelane")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `firelane` console script.

    Without `PREFECT_API_URL`, a command that needs a Prefect server says so in one line
    instead of starting a temporary one; Prefect's INFO lines stay off the terminal unless
    `-v` (they still reach the Prefect API and its UI). A reader that closes the pipe
    (`| head`) ends the command quietly with 141, as a shell tool killed by SIGPIPE would.
    """
    args = _parser().parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        quiet_prefect(args.verbose)
        missing = prefect_missing(args)
        if missing:
            print(f"firelane: {missing}", file=sys.stderr)
            return 1
        note = temporary_server_note(args)
        if note:
            print(f"firelane: {note}", file=sys.stderr, flush=True)
        settings = Settings.from_env()
        load_plugins(settings)
        install_redaction()
        with logging_for(_log_role(args), settings):
            code: int = args.fn(args, settings)
        sys.stdout.flush()
        return code
    except FirelaneError as exc:
        print(f"firelane: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        if not str(exc).startswith("No Prefect API URL provided"):
            raise
        print(f"firelane: {no_api_message(f'firelane {args.command}')}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
