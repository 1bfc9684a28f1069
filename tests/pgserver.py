"""A throwaway PostgreSQL server from Debian's binaries, for tests and benchmarks.

`initdb` into a temporary directory, `postgres` on a free loopback port with its socket in the
same directory, trust authentication; stopped and deleted afterwards. As root it runs as the
`postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["find_pg_bin", "postgres_server", "stop_process"]


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


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a `postgresql+psycopg://` URL of a fresh server with an empty `firelane` DB."""
    bindir = find_pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    root = tempfile.mkdtemp(prefix="firelane-pg-")
    data = os.path.join(root, "data")
    run_as: dict[str, object] = {}
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid}
    port = _free_port()
    subprocess.run([f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "firelane",
                    "--no-sync"], check=True, capture_output=True, **run_as)  # type: ignore[call-overload]
    log_path = os.path.join(root, "postgres.log")
    log = open(log_path, "wb")  # noqa: SIM115  (the server writes to it until it stops)
    proc = subprocess.Popen(
        [f"{bindir}/postgres", "-D", data, "-p", str(port), "-k", root, "-h", "127.0.0.1",
         "-c", "fsync=off", "-c", "max_connections=200"],
        stdout=log, stderr=subprocess.STDOUT, **run_as)  # type: ignore[call-overload]
    try:
        deadline = time.monotonic() + 30
        while True:
            ok = subprocess.run([f"{bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                                capture_output=True).returncode == 0
            if ok:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(log_path, encoding="utf-8", errors="replace") as f:
                    raise RuntimeError(f"postgres did not start: {f.read()[-2000:]}")
            time.sleep(0.1)
        subprocess.run([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U",
                        "firelane", "firelane"], check=True, capture_output=True)
        yield f"postgresql+psycopg://firelane@127.0.0.1:{port}/firelane"
    finally:
        stop_process(proc)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


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
