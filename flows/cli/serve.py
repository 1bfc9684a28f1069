"""`firelane serve`: run the intake service."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firelane.lanes import PAGING_NICE
from firelane.settings import Settings
from firelane.store import open_store
from flows.cli.priority import set_priority

if TYPE_CHECKING:
    from flows.intake.reloading import Reloader

__all__ = ["add_serve_command", "intake_priority"]


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from firelane.library import Library
    from flows.intake.app import INSECURE_BANNER, create_app
    from flows.intake.live import LiveConfig
    from flows.intake.reloading import Reloader, notify_refusals, slack_notice
    from flows.respond.starter import ResponseStarter

    priority = set_priority(intake_priority(args))
    live = LiveConfig.load(Path(args.config) if args.config else None)
    config = live.current.config
    store = open_store(settings.database_url)
    if args.insecure_no_auth:
        print(INSECURE_BANNER, file=sys.stderr)
    library = None if args.no_respond else Library(settings.runbooks_dir, settings.catalog_path)
    responder = None if args.no_respond else ResponseStarter(
        store, settings, config.default_runbook, sandbox=args.sandbox,
        external=args.responder == "external", library=library)
    app = create_app(store, live, responder, insecure=args.insecure_no_auth, library=library)
    reloader = Reloader(live, library)
    notice = slack_notice(settings)
    if notice is not None:
        notify_refusals(reloader, notice)
    _reload_on_sighup(reloader)
    if args.reload_every > 0:
        reloader.watch(args.reload_every)
    print(f"Firelane intake on http://{args.host}:{args.port} (docs at /docs) · store "
          f"{store.safe_url}" + (" · responses against the sandbox" if args.sandbox else "")
          + f" · {priority}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", log_config=None)
    return 0


def intake_priority(args: argparse.Namespace) -> int:
    """The intake's nice value: `--nice`, else the paging path's (`PAGING_NICE`) when it only
    takes alerts in (`--responder external` or `--no-respond`: an alert must be accepted before
    it can page), else 0 (inline, it also runs the flow runs)."""
    if args.nice is not None:
        return int(args.nice)
    return PAGING_NICE if args.no_respond or args.responder == "external" else 0


def _reload_on_sighup(reloader: Reloader) -> None:
    """SIGHUP re-reads the configuration, the runbooks and the catalog in a thread (a block
    reference may call the Prefect API, which must not run inside a signal handler on the
    event loop's thread)."""
    def handler(signum: int, frame: Any) -> None:
        reloader.reload_in_thread()

    signal.signal(signal.SIGHUP, handler)


def add_serve_command(sub: Any) -> None:
    """Register `firelane serve`."""
    cmd = sub.add_parser("serve", help="run the alert intake service")
    cmd.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only)")
    cmd.add_argument("--port", type=int, default=8787, help="port to listen on (default 8787)")
    cmd.add_argument("--config", help="intake configuration (YAML)")
    cmd.add_argument("--insecure-no-auth", action="store_true",
                     help="accept alerts without checking credentials (local use only)")
    cmd.add_argument("--no-respond", action="store_true",
                     help="store and deduplicate alerts but start no runbooks")
    cmd.add_argument("--responder", choices=["inline", "external"], default="inline",
                     help="run responses in this process, or leave them to `firelane respond`")
    cmd.add_argument("--reload-every", type=float, default=2.0, metavar="SECONDS",
                     help="check the intake configuration, runbooks and catalog for changes "
                     "this often and reload them (0: only on SIGHUP)")
    cmd.add_argument("--nice", type=int, default=None,
                     help="CPU priority (nice value) of this process; default -5 with "
                          "--responder external or --no-respond (the paging path; needs "
                          "CAP_SYS_NICE, else a warning and 0), 0 inline")
    cmd.add_argument("--sandbox", action="store_true",
                     help="run responses against the sandbox (FIRELANE_SANDBOX_URL)")
    cmd.set_defaults(fn=cmd_serve)
