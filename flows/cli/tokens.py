"""`firelane tokens create|list|revoke`: the API tokens the intake's `/api/v1/` accepts.

A token is printed once, when it is made; only its hash is stored. Changes made with it are
recorded as made by its owner, verified.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import timedelta
from typing import Any

from firelane.models import utcnow
from firelane.settings import Settings
from firelane.store import SCOPES, open_store

__all__ = ["add_tokens_command"]


def cmd_tokens(args: argparse.Namespace, settings: Settings) -> int:
    """Create, list or revoke API tokens."""
    store = open_store(settings.database_url)
    if args.action == "create":
        expires = timedelta(days=args.expires_days) if args.expires_days else None
        text, token = store.create_token(args.name, args.scope, args.owner or getpass.getuser(),
                                         expires)
        print(text)
        print(f"token {token.name!r} ({token.scope}, owner {token.owner}"
              + (f", expires {token.expires_at:%Y-%m-%d}" if token.expires_at else "")
              + "): shown once, store it now (e.g. in a secret manager)")
        return 0
    if args.action == "revoke":
        token = store.revoke_token(args.name)
        print(f"token {token.name!r} revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
        return 0
    tokens = store.list_tokens()
    if not tokens:
        print("no API tokens (make one with `firelane tokens create --name NAME --scope read`)")
        return 0
    print(f"{'NAME':<24} {'SCOPE':<6} {'OWNER':<16} {'CREATED':<17} {'LAST USED':<17} STATE")
    for t in tokens:
        state = ("revoked" if t.revoked_at else "expired" if t.expires_at
                 and t.expires_at <= utcnow() else "active")
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        print(f"{t.name:<24} {t.scope:<6} {t.owner:<16} {t.created_at:%Y-%m-%d %H:%M} "
              f"{used:<17} {state}")
    return 0


def add_tokens_command(sub: Any) -> None:
    """`firelane tokens`."""
    tok = sub.add_parser("tokens", help="API tokens for the intake's /api/v1/ (create, list, "
                         "revoke)")
    act = tok.add_subparsers(dest="action", required=True)
    create = act.add_parser("create", help="make a token and print it once")
    create.add_argument("--name", required=True, help="a unique name, e.g. grafana-oncall")
    create.add_argument("--scope", required=True, choices=SCOPES,
                        help="read: read incidents; write: also declare and change them")
    create.add_argument("--owner", default=None, help="the person changes are made by "
                        "(default: $USER)")
    create.add_argument("--expires-days", type=int, default=None, metavar="DAYS",
                        help="expire after this many days (default: never)")
    revoke = act.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("name", help="the token's name")
    act.add_parser("list", help="every token: scope, owner, created, last used, state")
    tok.set_defaults(fn=cmd_tokens)
