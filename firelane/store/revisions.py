"""Where the store's schema stands against this code's Alembic migrations, and the upgrade.

A store is `current` (at this code's head revision), `behind` (older revisions or empty: the
pending migrations apply forward) or `newer` (its `alembic_version` names a revision this code
does not know: a newer Firelane upgraded it). Every process refuses a `newer` store with
`StoreSchemaError`; `behind` is upgraded by `firelane db upgrade`, or automatically when a
process opens the store with `open_store(url)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from firelane.errors import StoreSchemaError

__all__ = ["MIGRATIONS", "SchemaState", "SchemaStatus", "apply_migrations", "head_revision",
           "read_status", "refuse_newer"]

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("firelane.store")

SchemaState = Literal["current", "behind", "newer"]


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def _known() -> list[str]:
    """Every revision this code knows, oldest first (the history is linear)."""
    return [r.revision for r in reversed(list(_script().walk_revisions()))]


def head_revision() -> str:
    """The newest revision this code knows (`0007`, ...)."""
    head = _script().get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True)
class SchemaStatus:
    """The store's revision against this code's.

    `current` is None for an empty database; `pending` lists, oldest first, the revisions
    `firelane db upgrade` would apply (empty when current or newer).
    """

    current: str | None
    head: str
    pending: tuple[str, ...]
    state: SchemaState

    def describe(self) -> str:
        """`0006 (behind head 0007)`, for messages."""
        where = self.current or "empty (no revision)"
        if self.state == "current":
            return f"{where} (head)"
        if self.state == "behind":
            return f"{where} (behind head {self.head}: {len(self.pending)} pending)"
        return f"{where} (NEWER than head {self.head}: unknown to this Firelane)"


def read_status(conn: Connection) -> SchemaStatus:
    """Read `alembic_version` on `conn` (no alembic_version table: an empty store)."""
    heads = MigrationContext.configure(conn).get_current_heads()
    known = _known()
    head = head_revision()
    unknown = [h for h in heads if h not in known]
    if unknown or len(heads) > 1:
        return SchemaStatus(",".join(heads), head, (), "newer")
    current = heads[0] if heads else None
    done = known.index(current) + 1 if current else 0
    pending = tuple(known[done:])
    return SchemaStatus(current, head, pending, "behind" if pending else "current")


def refuse_newer(status: SchemaStatus, where: str) -> None:
    """Raise `StoreSchemaError` when the store's schema is newer than this code."""
    if status.state != "newer":
        return
    raise StoreSchemaError(
        f"the incident store at {where} is at schema revision {status.current}, which this "
        f"Firelane does not know (its newest is {status.head}): a newer Firelane upgraded the "
        "database. Upgrade Firelane on this host to the version that ran `firelane db "
        "upgrade`; do not downgrade the database (`firelane db status` shows where it stands)",
        revision=status.current or "", head=status.head)


def apply_migrations(conn: Connection, where: str) -> tuple[SchemaStatus, SchemaStatus]:
    """Upgrade the schema on `conn` to head; return the status before and after.

    The caller holds the transaction (and on PostgreSQL the advisory lock), so two processes
    never migrate at once. Logs one INFO line when a migration was applied.
    """
    from alembic import command
    from alembic.config import Config

    before = read_status(conn)
    refuse_newer(before, where)
    if before.state == "current":
        return before, before
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    after = read_status(conn)
    log.info("migrated the incident store at %s from %s to %s", where,
             before.current or "empty", after.current)
    return before, after
