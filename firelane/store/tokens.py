"""API tokens for the intake's HTTP API: made by `firelane tokens create`, shown once, stored
only as a SHA-256 hash (the secret is 32 random bytes, so a fast hash is enough: there is no
password to guess), scoped `read` or `write`, optionally expiring, revocable, and with the time
each was last used.

A token reads `flt_<id>_<secret>`: the id finds the row, the secret is compared in constant
time. The owner is the person the token speaks for: a change made with it is recorded as made by
the owner, verified.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from firelane.errors import ConfigError, NotFound, TokenRefused
from firelane.models import utcnow
from firelane.store.base import aware
from firelane.store.syncs import SyncOps
from firelane.store.tables import api_tokens

__all__ = ["SCOPES", "ApiToken", "Scope", "TokenOps"]

SCOPES = ("read", "write")
Scope = Literal["read", "write"]
_TOKEN = re.compile(r"^flt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LAST_USED_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class ApiToken:
    """A token as stored (never its secret)."""

    id: str
    name: str
    scope: str
    owner: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def allows(self, scope: Scope) -> bool:
        """A `write` token may also read."""
        return self.scope == "write" or scope == "read"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _token(mapping: Mapping[Any, Any]) -> ApiToken:
    data = dict(mapping)
    data.pop("secret_hash", None)
    for key in ("created_at", "expires_at", "last_used_at", "revoked_at"):
        data[key] = aware(data[key])
    return ApiToken(**data)


class TokenOps(SyncOps):
    """Make, list, revoke and check API tokens."""

    def create_token(self, name: str, scope: str, owner: str,
                     expires_in: timedelta | None = None) -> tuple[str, ApiToken]:
        """A new token: (the token text, shown once; its record)."""
        if not _NAME.match(name):
            raise ConfigError(f"token name {name!r}: use letters, digits, '.', '_' or '-' "
                              "(at most 100), starting with a letter or digit")
        if scope not in SCOPES:
            raise ConfigError(f"token scope {scope!r}: use read or write")
        if not owner.strip():
            raise ConfigError("a token needs an owner: the person its changes are made by")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = utcnow()
        row = {"id": token_id, "name": name, "scope": scope, "owner": owner.strip(),
               "secret_hash": _hash(secret), "created_at": now,
               "expires_at": now + expires_in if expires_in is not None else None,
               "last_used_at": None, "revoked_at": None}
        try:
            with self.tx() as conn:
                conn.execute(insert(api_tokens), row)
        except IntegrityError as exc:
            raise ConfigError(f"a token named {name!r} exists: revoke it or pick another "
                              "name") from exc
        return f"flt_{token_id}_{secret}", _token(row)

    def list_tokens(self) -> list[ApiToken]:
        """Every token, revoked ones included, oldest first."""
        with self.tx(write=False) as conn:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.created_at)).all()
        return [_token(r._mapping) for r in rows]

    def revoke_token(self, name: str) -> ApiToken:
        """Revoke the token `name` at once (revoking twice keeps the first time)."""
        with self.tx() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.name == name,
                                                  api_tokens.c.revoked_at.is_(None))
                         .values(revoked_at=utcnow()))
            row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
        if row is None:
            raise NotFound(f"no token named {name!r} (`firelane tokens list` shows them)")
        return _token(row._mapping)

    def check_token(self, presented: str, scope: Scope) -> ApiToken:
        """The token `presented` speaks for, if it is valid for `scope`; `TokenRefused` says
        why not. Its last use is recorded (at most once a minute)."""
        match = _TOKEN.match(presented.strip())
        if match is None:
            raise TokenRefused("malformed token (expected flt_<id>_<secret>, from "
                               "`firelane tokens create`)")
        token_id, secret = match.groups()
        with self.tx(write=False) as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            raise TokenRefused("unknown token")
        token, now = _token(row._mapping), utcnow()
        if token.revoked_at is not None:
            raise TokenRefused(f"token {token.name!r} was revoked")
        if token.expires_at is not None and token.expires_at <= now:
            when = token.expires_at.strftime("%Y-%m-%d %H:%M")
            raise TokenRefused(f"token {token.name!r} expired at {when} UTC")
        if not token.allows(scope):
            raise TokenRefused(f"token {token.name!r} has scope {token.scope}; this needs "
                               f"{scope}", status=403)
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
            with self.tx() as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                             .values(last_used_at=now))
        return token

