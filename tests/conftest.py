"""Shared fixtures: a real Prefect API (session-scoped), SQLite and PostgreSQL stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firelane.store import Store, open_store
from tests import plugin_actions  # noqa: F401  (registers test.effect / test.change)
from tests.pgserver import create_database, find_pg_bin, postgres_server
from tests.remediation_fixtures import service, sshd  # noqa: F401  (fixtures)
from tests.sandbox_fixtures import sandbox, sandbox_server  # noqa: F401  (fixtures)

pytest_plugins = ["tests.child_processes", "pytester", "tests.process_stack"]

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Until a test asks for `prefect_api`, Prefect calls (in this process or a subprocess) go to a
# closed port and fail, instead of starting a temporary Prefect server that a killed subprocess
# would leave behind.
NO_PREFECT_API = "http://127.0.0.1:9/api"
os.environ.setdefault("PREFECT_API_URL", NO_PREFECT_API)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect server for the whole session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        os.environ["PREFECT_API_URL"] = url
        yield url


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session (skips, or fails under make test,
    when PostgreSQL is not installed)."""
    if find_pg_bin() is None:
        if os.environ.get("FIRELANE_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL binaries are missing but FIRELANE_REQUIRE_POSTGRES is set")
        pytest.skip("PostgreSQL is not installed here (make test installs it)")
    with postgres_server() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite store URL."""
    return f"sqlite:///{tmp_path / 'firelane.db'}"


@pytest.fixture
def sq(sqlite_url: str) -> Iterator[Store]:
    """A migrated SQLite store at `sqlite_url`."""
    s = open_store(sqlite_url)
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on each backend; PostgreSQL gets a fresh schema per test."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'firelane.db'}")
        yield s
        s.close()
        return
    base: str = request.getfixturevalue("pg_url")
    from sqlalchemy import create_engine, text

    db = f"t_{os.urandom(4).hex()}"
    s = open_store(create_database(base, db))
    yield s
    s.close()
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {db} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def effects_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test "vendor" database that `test.effect` writes to."""
    path = tmp_path / "effects.db"
    monkeypatch.setenv("FIRELANE_TEST_EFFECTS", str(path))
    return path


@pytest.fixture
def firelane_env(sqlite_url: str, effects_db: Path, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> str:
    """Environment for flows run in this process: store URL, plugins, short leases."""
    monkeypatch.setenv("FIRELANE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("FIRELANE_PLUGINS", "tests.plugin_actions")
    monkeypatch.setenv("FIRELANE_LEASE_SECONDS", "2")
    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "services.yaml"))
    return sqlite_url


_MATRIX: dict[tuple[str, str], str] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Note each fault-matrix case's outcome for the summary table."""
    report = yield
    if item.get_closest_marker("fault_matrix") and report.when == "call":
        params = item.callspec.params  # type: ignore[attr-defined]
        _MATRIX[(params["action"], params["fault"])] = (
            "ok" if report.passed else "DUPLICATE/LOST" if "effects" in str(report.longrepr)
            else "FAILED")
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault matrix (action x fault → outcome) when its cases ran."""
    if not _MATRIX:
        return
    actions = sorted({a for a, _ in _MATRIX})
    faults = list(dict.fromkeys(f for _, f in _MATRIX))
    width = max(map(len, actions)) + 2
    terminalreporter.write_sep("=", "fault matrix: one side effect each, retries on the timeline")
    terminalreporter.write_line("".ljust(width) + "".join(f.ljust(18) for f in faults))
    for action in actions:
        terminalreporter.write_line(action.ljust(width) + "".join(
            _MATRIX.get((action, f), "-").ljust(18) for f in faults))
    if len(_MATRIX) < len(actions) * len(faults):
        terminalreporter.write_line("-: not applicable (SSH has no HTTP status or HTTP body)")
    bad = sum(v != "ok" for v in _MATRIX.values())
    terminalreporter.write_line(f"{len(_MATRIX)} cases, {bad} not ok")
