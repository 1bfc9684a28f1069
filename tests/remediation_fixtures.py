"""Real parts for the remediation tests: a sample service with a good and a bad release under
a real supervisord, and a real sshd on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.common import free_port

HERE = Path(__file__).resolve().parent
APP = HERE.parent / "examples" / "sample_service" / "app.py"
GOOD, BAD = "20261101-0900", "20261123-0100"
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "time.sleep(10**6)")


@dataclass
class Service:
    """The sample service and its supervisord."""

    release_dir: Path
    port: int
    rpc_url: str
    unix_url: str
    supervisord: subprocess.Popen[bytes] | None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def current(self) -> str:
        return Path(os.readlink(self.release_dir / "current")).name

    def health(self) -> int | None:
        try:
            return httpx.get(self.health_url, timeout=2).status_code
        except httpx.HTTPError:
            return None

    def wait_health(self, want: int, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while self.health() != want:
            assert time.monotonic() < deadline, f"{self.health_url} never answered {want}"
            time.sleep(0.1)


def _release(root: Path, name: str, health: str) -> None:
    target = root / "releases" / name
    target.mkdir(parents=True)
    shutil.copy(APP, target / "app.py")
    (target / "RELEASE_HEALTH").write_text(health)


def _config(tmp: Path, root: Path, port: int, rpc_port: int) -> Path:
    conf = tmp / "supervisord.conf"
    conf.write_text(f"""
[supervisord]
nodaemon=true
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
user=root

[unix_http_server]
file={tmp}/supervisor.sock

[inet_http_server]
port=127.0.0.1:{rpc_port}
username=ops
password=s3cret-rpc

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:web]
command={sys.executable} {root}/current/app.py {port}
directory={root}
startsecs=1
stopwaitsecs=2
autostart=true

[program:stubborn]
command={sys.executable} -c "{STUBBORN}"
startsecs=1
stopwaitsecs=1
autostart=true
""")
    return conf


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A sample service whose current release is bad, under a running supervisord."""
    if shutil.which("supervisord") is None:
        pytest.skip("supervisord is not installed (make test installs it)")
    root = tmp_path / "web"
    _release(root, GOOD, "ok")
    _release(root, BAD, "broken")
    (root / "current").symlink_to(Path("releases") / BAD)
    port, rpc_port = free_port(), free_port()
    conf = _config(tmp_path, root, port, rpc_port)
    proc = subprocess.Popen(["supervisord", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    svc = Service(root, port, f"http://127.0.0.1:{rpc_port}/RPC2",
                  f"unix://{tmp_path}/supervisor.sock", proc)
    try:
        svc.wait_health(500)
        yield svc
    finally:
        with_group = proc.pid
        try:
            os.killpg(with_group, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(with_group, signal.SIGKILL)
            proc.wait()


@dataclass
class SshServer:
    """A real sshd on loopback and a key that may log in."""

    port: int
    user: str
    private_key: str
    known_hosts: str


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """sshd on a free loopback port, accepting one generated key for the current user."""
    if not Path("/usr/sbin/sshd").exists() or os.geteuid() != 0:
        pytest.skip("sshd tests need openssh-server and root (make test installs it; CI runs "
                    "as root)")
    tmp = tmp_path_factory.mktemp("sshd")
    for name, kind in (("host_key", "ed25519"), ("user_key", "ed25519")):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(tmp / name)],
                       check=True)
    (tmp / "authorized_keys").write_text((tmp / "user_key.pub").read_text())
    port = free_port()
    Path("/run/sshd").mkdir(exist_ok=True)
    (tmp / "sshd_config").write_text(f"""
Port {port}
ListenAddress 127.0.0.1
HostKey {tmp}/host_key
AuthorizedKeysFile {tmp}/authorized_keys
PidFile {tmp}/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
""")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(tmp / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "sshd.log", "w"))  # noqa: SIM115
    host_pub = (tmp / "host_key.pub").read_text().split()
    known = f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}"
    deadline = time.monotonic() + 20
    import socket

    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, f"sshd did not start; see {tmp}/sshd.log"
            time.sleep(0.1)
    try:
        yield SshServer(port, "root", (tmp / "user_key").read_text(), known)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
