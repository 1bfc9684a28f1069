"""A throwaway PostgreSQL server from Debian's binaries, for tests and benchmarks.

`initdb` into a temporary directory, `postgres` on a free loopback port with its socket in the
same directory, trust authentication; stopped and deleted afterwards. As root it runs as the
`postgres` user (PostgreSQL refuses to run as root). `restartable_postgres()` also lets a test
stop the server (a fast shutdown: clients are disconnected) and start it again on the same data
directory and port, as a database restart or failover looks to its clients.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

__all__ = ["PostgresServer", "find_pg_bin", "postgres_server", "restartable_postgres",
           "stop_process"]


def find_pg_bin() -> str | None:
    """The newest installed PostgreSQL bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class PostgresServer:
    """One cluster in a temporary directory; `start()` and `stop()` as often as needed."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix="firelane-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.root, "postgres.log")
        self._log: IO[bytes] | None = None
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._run_as = {"user": user.pw_uid, "group": user.pw_gid}
        subprocess.run([f"{bindir}/initdb", "-D", self.data, "-A", "trust", "-U", "firelane",
                        "--no-sync"], check=True, capture_output=True, **self._run_as)

    @property
    def url(self) -> str:
        """The `postgresql+psycopg://` URL of the `firelane` database."""
        return f"postgresql+psycopg://firelane@127.0.0.1:{self.port}/firelane"

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections."""
        self.proc = self._postmaster(self.data, self.port)

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT): open sessions are terminated, the port closes."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def start_standby(self) -> None:
        """Clone the running server (`pg_basebackup -R`) into a hot standby streaming from it
        on a port of its own (`failover()` moves it to this server's port)."""
        self.standby_data = os.path.join(self.root, "standby")
        self.standby_port = _free_port()
        subprocess.run([f"{self.bindir}/pg_basebackup", "-D", self.standby_data, "-h",
                        "127.0.0.1", "-p", str(self.port), "-U", "firelane", "-R", "-X",
                        "stream", "--no-sync", "--checkpoint=fast"], check=True,
                       capture_output=True, **self._run_as)
        self.standby = self._postmaster(self.standby_data, self.standby_port)

    def failover(self, read_only_seconds: float) -> None:
        """The primary stops (fast shutdown: its last WAL reaches the standby first); the
        standby comes up at the primary's address still read-only, as a standby does until
        it is promoted, for `read_only_seconds`, and is then promoted. Clients see dropped
        connections, then a server that refuses writes, then a new primary at the same
        address with every committed transaction."""
        self.stop()
        self.standby.send_signal(signal.SIGINT)
        self.standby.wait(timeout=30)
        self.data = self.standby_data
        auto = os.path.join(self.data, "postgresql.auto.conf")
        with open(auto, encoding="utf-8") as f:
            kept = [line for line in f if not line.startswith("primary_conninfo")]
        with open(auto, "w", encoding="utf-8") as f:
            f.writelines(kept)
        self.start()
        time.sleep(read_only_seconds)
        subprocess.run([f"{self.bindir}/pg_ctl", "promote", "-w", "-D", self.data],
                       check=True, capture_output=True, **self._run_as)

    def _postmaster(self, data: str, port: int) -> subprocess.Popen[bytes]:
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115  (written until close())
        proc = subprocess.Popen(
            [f"{self.bindir}/postgres", "-D", data, "-p", str(port), "-k", self.root,
             "-h", "127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=self._log, stderr=subprocess.STDOUT, **self._run_as)
        deadline = time.monotonic() + 30
        while subprocess.run([f"{self.bindir}/pg_isready", "-h", "127.0.0.1", "-p",
                              str(port)], capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(self.log_path, encoding="utf-8", errors="replace") as f:
                    raise RuntimeError(f"postgres did not start: {f.read()[-2000:]}")
            time.sleep(0.1)
        return proc

    def close(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        self.stop()
        standby: subprocess.Popen[bytes] | None = getattr(self, "standby", None)
        if standby is not None and standby.poll() is None:
            stop_process(standby)
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def restartable_postgres() -> Iterator[PostgresServer]:
    """A fresh running server with an empty `firelane` database, deleted afterwards."""
    bindir = find_pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    try:
        server.start()
        subprocess.run([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U",
                        "firelane", "firelane"], check=True, capture_output=True)
        yield server
    finally:
        server.close()


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a `postgresql+psycopg://` URL of a fresh server with an empty `firelane` DB."""
    with restartable_postgres() as server:
        yield server.url


def create_database(server_url: str, name: str) -> str:
    """Create (or recreate) database `name` on the server of `server_url`; returns its
    `postgresql+psycopg://` URL (swap in `+asyncpg` for the Prefect server)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
