"""`firelane sandbox`, and the embedded sandbox behind `firelane run --sandbox`."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from firelane.settings import Settings

__all__ = ["add_sandbox_command", "sandbox_for_run", "summarize_sandbox"]


@contextlib.contextmanager
def sandbox_for_run() -> Iterator[Any]:
    """Point this process's sandbox runs at a sandbox: the one named by FIRELANE_SANDBOX_URL,
    or a new embedded one for the duration (yields it, or None when one was already set)."""
    if Settings.from_env().sandbox_url:
        yield None
        return
    from integrations.common import close_pooled
    from integrations.sandbox import Sandbox

    with Sandbox() as sb:
        os.environ["FIRELANE_SANDBOX_URL"] = sb.url
        os.environ["FIRELANE_SANDBOX_CA"] = sb.ca_file
        try:
            yield sb
        finally:
            close_pooled()
            os.environ.pop("FIRELANE_SANDBOX_URL", None)
            os.environ.pop("FIRELANE_SANDBOX_CA", None)


def summarize_sandbox(sb: Any) -> str:
    """One line per vendor: what the run left in the sandbox."""
    state = sb.state.dump()
    issues = ", ".join(state["jira_issues"]) or "none"
    pages = ", ".join(f"{i['id']} ({i['status']})" for i in state["pd_incidents"].values())
    channels = ", ".join(f"#{c['name']} ({len(c['members'])} members)"
                         for c in state["slack_channels"].values())
    shared = sum(len(f["channels"]) for f in state["slack_files"].values())
    return (f"sandbox: Jira {issues} · PagerDuty {pages or 'none'} · Slack {channels or 'none'}"
            f", {len(state['slack_messages'])} messages, {shared} files shared · Zoom "
            f"{len(state['zoom_meetings'])} meetings · e-mail "
            f"{len(state.get('emails', []))} messages")


def _save_blocks(sb: Any, name: str, stop: threading.Event) -> None:
    from integrations import blocks

    for block_cls in blocks():
        if not hasattr(block_cls, "for_sandbox") or stop.is_set():
            continue
        extra = {"smtp_port": sb.smtp_port} if block_cls.__name__ == "SmtpServer" else {}
        block_cls.for_sandbox(sb.url, sb.ca_file, **extra).save(name, overwrite=True)
        print(f"saved {block_cls.__name__} block {name!r} (points at this sandbox)")


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from integrations.sandbox import Sandbox
    from integrations.sandbox.common import SANDBOX_SMTP_PASSWORD, SANDBOX_SMTP_USER

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sb = Sandbox(port=args.port)
    sb.state.zoom_daily_limit = args.zoom_daily_limit
    sb.start()
    print(f"Firelane sandbox at {sb.url} (TLS; trust {sb.ca_file})")
    for vendor, url in sb.urls().items():
        limit = (f"  ({args.zoom_daily_limit} meetings a user a UTC day, as Zoom; "
                 "--zoom-daily-limit)") if vendor == "zoom_api" else ""
        print(f"  {vendor:<11}{url}{limit}")
    print(f"  smtp       127.0.0.1:{sb.smtp_port} (STARTTLS; login {SANDBOX_SMTP_USER} / "
          f"{SANDBOX_SMTP_PASSWORD})")
    print(f"  admin      {sb.url}/_admin/state  (POST /_admin/faults to inject faults)")
    print(f"export FIRELANE_SANDBOX_URL={sb.url} FIRELANE_SANDBOX_CA={sb.ca_file}")
    if args.save_blocks and not stop.is_set():
        _save_blocks(sb, args.save_blocks, stop)
    stop.wait()
    sb.stop()
    return 0


def add_sandbox_command(sub: Any) -> None:
    """Register `firelane sandbox`."""
    cmd = sub.add_parser("sandbox", help="serve local stand-ins of Jira, PagerDuty, Slack, Zoom, "
                         "Statuspage and a mail server")
    cmd.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    cmd.add_argument("--zoom-daily-limit", type=int, default=100, metavar="N",
                     help="meetings one Zoom user may create a UTC day (default 100, Zoom's; "
                          "the benchmarks raise it: they open more incidents in minutes than a "
                          "Zoom user may host in a day)")
    cmd.add_argument("--save-blocks", metavar="NAME",
                     help="also save credentials blocks named NAME that point at it (Prefect)")
    cmd.set_defaults(fn=cmd_sandbox)
