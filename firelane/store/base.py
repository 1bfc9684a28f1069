"""Connection handling shared by the store's parts: engines, migrations, row conversion."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Insert, Table, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError

from firelane.errors import ConfigError, StoreError, StoreSchemaError
from firelane.lanes import PriorityLock, at_paging_priority, in_paging_lane

if TYPE_CHECKING:
    from firelane.store.revisions import SchemaStatus

__all__ = ["StoreBase", "as_stored", "aware", "json_text"]


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def json_text(value: Any) -> str:
    """A JSON column's text: orjson (about a tenth of `json.dumps`'s time; an alert has three
    encodings), falling back to `json.dumps` for what orjson refuses (integers beyond 64 bits)
    so anything the standard encoder stored before is still stored."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value)


def as_stored(value: Any) -> Any:
    """`value` as a JSON column gives it back (what a re-read would return), without the
    re-read."""
    return None if value is None else json.loads(json_text(value))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_writer_pragmas(dbapi_conn: Any, record: Any) -> None:
    """A write connection's: as any, then busy timeout 0 for good (`_begin_immediate` waits)."""
    _sqlite_pragmas(dbapi_conn, record)
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


IDLE_PING_SECONDS = 1.0
"""A pooled PostgreSQL connection back in the pool for longer than this is pinged before it is
used again (a restarted or failed-over server closed it). SQLAlchemy's `pool_pre_ping` pinged
before every transaction: one round trip in six of the intake's group commit under a storm,
where every connection is back within milliseconds."""


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection on checkout only when it idled past `IDLE_PING_SECONDS`; a dead one
    is replaced at once (`DisconnectionError`: the pool connects afresh). One that died within
    the second fails its first statement as a disconnect, which invalidates the pool; the
    callers' retries (the intake's commit request by request, the responders' `ride_out`) run
    again on a new connection."""
    def checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"the pooled connection is gone: {exc}") from exc

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def _make_engine(url: str, paging: bool = False, writer: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"FIRELANE_DATABASE_URL={url!r} is not a database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 10}, json_serializer=json_text)
        event.listen(engine, "connect", _sqlite_writer_pragmas if writer else _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_size=2 if paging else 10,
                               max_overflow=6 if paging else 10, json_serializer=json_text)
        _ping_when_idle(engine)
        return engine
    raise ConfigError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// "
                      "or postgresql+psycopg://")


def _run(conn: Connection) -> Iterator[Connection]:
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def _begin_immediate(conn: Connection, patience: float = 10.0) -> None:
    """Take SQLite's write lock on a write connection (busy timeout 0), retrying every half
    millisecond."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.0005)


class StoreBase:
    """Owns the SQLAlchemy engine; subclasses add the operations."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._engines: dict[tuple[bool, bool], Engine] = {}
        self._engines_lock = threading.Lock()
        self._writer = PriorityLock()
        self._schema_checked = False

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    def migrate(self) -> tuple[SchemaStatus, SchemaStatus]:
        """Bring the schema to the newest migration (safe to call on every start); return the
        status before and after. Raises `StoreSchemaError` when the schema is newer than this
        code, whatever the backend."""
        from firelane.store.revisions import apply_migrations

        self._schema_checked = True
        try:
            with self.tx() as conn:
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(424242)")
                return apply_migrations(conn, self.safe_url)
        except StoreSchemaError:
            self._schema_checked = False
            raise
        except SQLAlchemyError as exc:
            self._schema_checked = False
            raise StoreError(f"cannot migrate the incident store at {self.safe_url}: {exc}") \
                from exc

    def schema_status(self) -> SchemaStatus:
        """Where the schema stands against this code (`current`, `behind` or `newer`)."""
        try:
            return self._read_schema()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the schema revision of the incident store at "
                             f"{self.safe_url}: {exc}") from exc

    def _read_schema(self) -> SchemaStatus:
        from firelane.store.revisions import read_status

        with self.engine.connect() as conn:
            return read_status(conn)

    def check_schema(self) -> SchemaStatus:
        """Refuse (`StoreSchemaError`) a schema newer than this code; a store opened without
        migrating checks this before its first transaction (a database error propagates as
        the transaction's own would)."""
        from firelane.store.revisions import refuse_newer

        status = self._read_schema()
        refuse_newer(status, self.safe_url)
        self._schema_checked = True
        return status

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def _engine_for_lane(self, write: bool = False) -> Engine:
        """The engine for this work: the paging lane has its own pooled connections (a page
        never waits for a connection that war-room and flow work hold), and SQLite's write
        transactions have theirs, whose busy timeout stays 0 (`_begin_immediate` waits
        instead; setting it to 0 and back around every write cost two statements, each a
        chance for another thread to take the interpreter while the write lock is held). An
        in-memory database has one engine."""
        if self.engine.url.database in (None, "", ":memory:"):
            return self.engine
        key = (in_paging_lane(), write and self.dialect == "sqlite")
        if key == (False, False):
            return self.engine
        engine = self._engines.get(key)
        if engine is None:
            with self._engines_lock:
                engine = self._engines.get(key)
                if engine is None:
                    engine = self._engines[key] = _make_engine(self.url, *key)
        return engine

    def write_engine(self) -> Engine:
        """The engine a write transaction outside the paging lane uses (SQLite's write
        connections; the shared engine elsewhere): for tools that watch its statements."""
        return self._engine_for_lane(write=True)

    @contextmanager
    def tx(self, write: bool = True) -> Iterator[Connection]:
        """One transaction. On SQLite a writing one takes the write lock at BEGIN, so two
        processes never deadlock upgrading a read lock; readers never wait (WAL).

        SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between tries, which under a
        storm leaves a paging responder asleep while the intake commits. Writers in one
        process queue on a lock instead (paging work first: `firelane.lanes`), and a writer
        waiting for another process retries every half millisecond (`_begin_immediate`). The
        thread that takes the lock runs at the paging priority until it lets it go
        (`at_paging_priority`). Paging work has its own pooled connections
        (`_engine_for_lane`).
        """
        if not self._schema_checked:
            self.check_schema()
        engine = self._engine_for_lane(write)
        if self.dialect != "sqlite":
            with engine.connect() as conn:
                conn.begin()
                yield from _run(conn)
            return
        if not write:
            with engine.connect() as conn:
                conn.exec_driver_sql("BEGIN")
                yield from _run(conn)
            return
        with self._writer, at_paging_priority(), engine.connect() as conn:
            _begin_immediate(conn)
            yield from _run(conn)

    def _insert_new(self, table: Table, values: dict[str, Any]) -> Insert:
        """`INSERT ... ON CONFLICT DO NOTHING` of one row: its `rowcount` is 1 when the row is
        new, 0 when one with the same key was there (read it then, in the same transaction)."""
        new: Insert = (postgresql.insert(table) if self.dialect == "postgresql"
                       else sqlite.insert(table)).values(values).on_conflict_do_nothing()
        return new.execution_options(preserve_rowcount=True)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()
        for engine in list(self._engines.values()):
            engine.dispose()
