"""`firelane db upgrade|status` and the schema rule, on real SQLite and PostgreSQL: an empty store
upgrades to head, `status` exits 0/1/2 for current/behind/newer, and every way of opening a
store whose revision is unknown (newer than this code) refuses with `StoreSchemaError`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from firelane.errors import StoreSchemaError
from firelane.store import Store, open_store, shared_store
from firelane.store.revisions import MIGRATIONS, head_revision
from flows.cli import main
from tests.pgserver import create_database

ROOT = Path(__file__).resolve().parent.parent
NEWER = "9999_from_the_future"
HEAD = head_revision()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables), on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    base: str = request.getfixturevalue("pg_url")
    db = f"m_{os.urandom(4).hex()}"
    yield create_database(base, db)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {db} WITH (FORCE)"))
    admin.dispose()


def _alembic(url: str, verb: str, revision: str) -> None:
    """Run `alembic stamp|upgrade <revision>` on `url` through the project's env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    store = Store(url)
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, verb)(config, revision)
    store.close()


def _stamp_unknown(url: str) -> None:
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": NEWER})
    store.close()


def _db(url: str, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setenv("FIRELANE_DATABASE_URL", url)
    return main(["db", *argv])


def _tables(url: str) -> set[str]:
    store = Store(url)
    names = set(inspect(store.engine).get_table_names())
    store.close()
    return names


def test_upgrade_from_empty_applies_every_migration_once(
        empty_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    assert _db(empty_url, monkeypatch, "status") == 1
    assert "(empty)" in capsys.readouterr().out
    with caplog.at_level(logging.INFO, logger="firelane.store"):
        assert _db(empty_url, monkeypatch, "upgrade") == 0
    assert f"upgraded empty → {HEAD} ({int(HEAD)} migration(s))" in capsys.readouterr().out
    applied = [r.getMessage() for r in caplog.records if r.name == "firelane.store"]
    assert len(applied) == 1 and applied[0].endswith(f"from empty to {HEAD}")
    assert {"incidents", "executions", "digests", "report_runs"} <= _tables(empty_url)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="firelane.store"):
        assert _db(empty_url, monkeypatch, "upgrade") == 0
    assert "already at" in capsys.readouterr().out
    assert not [r for r in caplog.records if r.name == "firelane.store"]
    assert _db(empty_url, monkeypatch, "status") == 0
    assert "the schema is current" in capsys.readouterr().out


def test_upgrade_from_an_older_revision_applies_only_the_pending_ones(
        empty_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _alembic(empty_url, "upgrade", "0005")
    assert "digests" not in _tables(empty_url)
    assert _db(empty_url, monkeypatch, "status", "--json") == 1
    pending = [f"{n:04d}" for n in range(6, int(HEAD) + 1)]
    assert json.loads(capsys.readouterr().out)["pending"] == pending
    assert _db(empty_url, monkeypatch, "upgrade") == 0
    assert f"upgraded 0005 → {HEAD} ({len(pending)} migration(s))" in capsys.readouterr().out
    assert "digests" in _tables(empty_url)


def test_status_is_behind_after_stamping_an_older_revision(
        empty_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    open_store(empty_url).close()
    assert _db(empty_url, monkeypatch, "status") == 0
    capsys.readouterr()
    _alembic(empty_url, "stamp", "0004")
    assert _db(empty_url, monkeypatch, "status") == 1
    out = capsys.readouterr().out
    pending = " ".join(f"{n:04d}" for n in range(5, int(HEAD) + 1))
    assert "current  0004" in out and f"pending  {pending}" in out
    assert Store(empty_url).schema_status().state == "behind"


def test_a_newer_schema_is_status_2_and_every_opening_refuses(
        empty_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    open_store(empty_url).close()
    _stamp_unknown(empty_url)
    assert _db(empty_url, monkeypatch, "status") == 2
    assert "NEWER than this Firelane" in capsys.readouterr().out
    with pytest.raises(StoreSchemaError) as refused:
        open_store(empty_url)
    assert refused.value.revision == NEWER and refused.value.head == HEAD
    message = str(refused.value)
    assert NEWER in message and "Upgrade Firelane" in message and HEAD in message
    with pytest.raises(StoreSchemaError):
        open_store(empty_url, migrate=False).list_incidents()
    with pytest.raises(StoreSchemaError):
        shared_store(empty_url).list_incidents()
    refused_store = Store(empty_url)
    with pytest.raises(StoreSchemaError):
        refused_store.migrate()
    with pytest.raises(StoreSchemaError):
        refused_store.list_incidents()
    assert _db(empty_url, monkeypatch, "upgrade") == 1
    assert NEWER in capsys.readouterr().err
    assert Store(empty_url).schema_status().current == NEWER


def test_a_behind_store_still_upgrades_when_a_process_opens_it(sqlite_url: str) -> None:
    _alembic(sqlite_url, "upgrade", "0003")
    store = open_store(sqlite_url)
    assert store.schema_status().state == "current"
    assert store.list_incidents() == []


def test_the_intake_refuses_to_start_on_a_newer_schema(sqlite_url: str) -> None:
    open_store(sqlite_url).close()
    _stamp_unknown(sqlite_url)
    env = {**os.environ, "FIRELANE_DATABASE_URL": sqlite_url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "serve", "--insecure-no-auth", "--no-respond",
         "--port", "0"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"schema revision {NEWER}" in done.stderr
    assert "Upgrade Firelane" in done.stderr
    assert "Firelane intake on" not in done.stdout
