"""How the `firelane` commands meet Prefect: which need a server, and what reaches the terminal.

Without an API URL, Prefect's client starts a temporary server (4 to 11 s) in whichever process
asks, and a long-running command (`serve`, `respond`) would keep it for its whole life and
could leave it behind. So: a command that always needs a server (it resumes flow runs, serves
deployments or saves blocks) says so in one line before doing anything; `run` and `resume`
keep the temporary server they are documented to start (it stops when they exit); every other
command may not start one, and the few paths that would still reach Prefect fail with the same
one line (`no_api_message`).

Prefect logs flow and task run INFO lines to the terminal through its console handler; the CLI
raises that handler to WARNING unless `-v`, so Firelane's own lines stay readable. The API
handler is untouched: the Prefect UI still shows every line of a run.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["no_api_message", "prefect_missing", "quiet_prefect", "server_need",
           "temporary_server_note"]

EPHEMERAL_OK = frozenset({"run", "resume"})


def server_need(args: argparse.Namespace) -> str | None:
    """What in this command line needs a Prefect server, or None."""
    command = args.command
    if command in ("respond", "serve-flows", "worker"):
        return f"firelane {command}"
    if command == "approve":
        return "firelane approve (it resumes the paused flow run)"
    if command == "serve" and not args.no_respond:
        return "firelane serve (its responses are Prefect flow runs; with --no-respond it " \
            "needs none)"
    if command == "sandbox" and args.save_blocks:
        return "firelane sandbox --save-blocks"
    if command == "action-items" and args.action == "add":
        return "firelane action-items add"
    if command == "incidents" and args.action == "status" and args.report \
            and args.to in ("resolved", "closed"):
        return f"firelane incidents status {args.to} (its report is a Prefect flow run; " \
            "--no-report skips it)"
    return None


def no_api_message(what: str = "this command") -> str:
    """The one line that says what is missing and how to set it."""
    return (f"{what} needs a Prefect server and PREFECT_API_URL is not set: export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (`prefect server start` serves it; "
            "`make demo DEMO_ARGS=--keep` leaves one at http://127.0.0.1:4310/api)")


def _api_url_set() -> bool:
    if os.environ.get("PREFECT_API_URL"):
        return True
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def prefect_missing(args: argparse.Namespace) -> str | None:
    """The one-line complaint when this command needs a Prefect server and none is set (the
    Prefect profile's `PREFECT_API_URL` counts too). Commands other than `run` and `resume`
    are kept from starting a temporary server."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    what = server_need(args)
    if what is not None:
        return None if _api_url_set() else no_api_message(what)
    if args.command not in EPHEMERAL_OK:
        os.environ["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "false"
    return None


def temporary_server_note(args: argparse.Namespace) -> str | None:
    """For `run` and `resume` without a Prefect server: one line saying why the next seconds
    go to starting a temporary one, and how to use a real one instead."""
    if args.command not in EPHEMERAL_OK or getattr(args, "plan", False) or _api_url_set():
        return None
    return ("PREFECT_API_URL is not set: starting a temporary Prefect server for this run "
            "(a few seconds; it stops when the run ends). Set PREFECT_API_URL to see the run "
            "in your Prefect UI.")


def quiet_prefect(verbose: bool) -> None:
    """Prefect's console handler at WARNING unless `verbose` (set before Prefect is imported,
    which is when it reads its logging configuration; child processes inherit it)."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
