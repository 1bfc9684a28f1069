"""The processes `make demo` starts, and how it stops them.

Every process runs in its own session so stopping it stops its children too; their pids are kept
in `.demo/pids` so a later run (or `make demo-stop`) stops what a `--keep` run left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
BIN = Path(sys.executable).parent
APP = ROOT / "examples" / "sample_service" / "app.py"
GOOD, BAD = "2026.11.20-a1b2c3", "2026.11.23-d4e5f6"

__all__ = ["APP", "BAD", "DEMO", "GOOD", "ROOT", "Stack", "free_port", "stop_previous"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_group(pid: int, grace: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop_previous() -> list[str]:
    """Stop every process a previous demo left running; returns their names."""
    pids = DEMO / "pids"
    stopped = []
    if pids.exists():
        for line in pids.read_text().splitlines():
            name, _, pid = line.partition(" ")
            if pid.isdigit():
                _kill_group(int(pid))
                stopped.append(name)
        pids.unlink()
    return stopped


@dataclass
class Stack:
    """The demo's processes and settings."""

    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start `argv` in its own session, output to `.demo/logs/<name>.log`."""
        log = (DEMO / "logs" / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        with (DEMO / "pids").open("a") as f:
            f.write(f"{name} {proc.pid}\n")
        return proc

    def log(self, name: str) -> str:
        return (DEMO / "logs" / f"{name}.log").read_text(errors="replace")

    def wait_for(self, name: str, ready: Callable[[], bool], seconds: float) -> None:
        """Wait until `ready()`; a process that died or a timeout stops the demo with its log."""
        deadline = time.monotonic() + seconds
        while not ready():
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"{name} exited ({proc.returncode}):\n{self.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} not ready after {seconds:g} s; its log: "
                                 f"{DEMO / 'logs' / (name + '.log')}")
            time.sleep(0.1)

    def run(self, argv: list[str], timeout: float = 300) -> str:
        """Run a command to completion; a failure stops the demo with its output."""
        done = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}"
                             f"{done.stderr[-3000:]}")
        return done.stdout

    def stop(self) -> None:
        """Stop everything this run started (newest first)."""
        live = [p for p in reversed(list(self.procs.values())) if p.poll() is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            _kill_group(proc.pid, grace=2)
        (DEMO / "pids").unlink(missing_ok=True)

    def http_ok(self, url: str) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_prefect(self, port: int) -> None:
        self.start("prefect-server", [str(BIN / "prefect"), "server", "start", "--host",
                                      "127.0.0.1", "--port", str(port)])

    def start_sandbox(self) -> tuple[str, str]:
        """`firelane sandbox`; returns its URL and CA file."""
        self.start("sandbox", [str(BIN / "firelane"), "sandbox"])
        found: list[str] = []

        def ready() -> bool:
            m = re.search(r"FIRELANE_SANDBOX_URL=(\S+) FIRELANE_SANDBOX_CA=(\S+)",
                          self.log("sandbox"))
            found[:] = list(m.groups()) if m else []
            return bool(m)
        self.wait_for("sandbox", ready, 30)
        return found[0], found[1]

    @staticmethod
    def sandbox_slack(url: str, ca: str, method: str, **args: str) -> dict[str, Any]:
        """Call the sandbox's Slack Web API the way a workspace admin would (the demo makes
        the stakeholder channel that the catalog names)."""
        answer = httpx.post(f"{url}/slack/api/{method}", data=args, verify=ca, timeout=10,
                            headers={"authorization": "Bearer xoxb-demo-admin"})
        return dict(answer.json())

    def start_web_service(self, port: int) -> Path:
        """The sample web service (two releases, the good one current) under supervisord;
        returns the supervisord config."""
        if shutil.which("supervisord") is None:
            raise SystemExit("supervisord is missing: sudo apt-get install supervisor "
                             "(make demo installs it when run as root)")
        root = DEMO / "web"
        for name, health in ((GOOD, "ok"), (BAD, "broken")):
            target = root / "releases" / name
            target.mkdir(parents=True)
            shutil.copy(APP, target / "app.py")
            (target / "RELEASE_HEALTH").write_text(health)
        (root / "current").symlink_to(Path("releases") / GOOD)
        conf = DEMO / "supervisord.conf"
        conf.write_text(f"""[supervisord]
nodaemon=true
logfile={DEMO}/logs/supervisord-main.log
pidfile={DEMO}/supervisord.pid
childlogdir={DEMO}/logs

[unix_http_server]
file={DEMO}/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{DEMO}/supervisor.sock

[program:web]
command={sys.executable} {root}/current/app.py {port}
directory={root}
startsecs=1
stopwaitsecs=2
autostart=true
""")
        self.start("supervisord", ["supervisord", "-c", str(conf)])
        return conf

    def deploy_release(self, conf: Path, release: str) -> None:
        """What a deploy tool does: point `current` at `release` and restart the program."""
        root = DEMO / "web"
        tmp = root / "current.new"
        tmp.symlink_to(Path("releases") / release)
        tmp.replace(root / "current")
        self.run(["supervisorctl", "-c", str(conf), "restart", "web"], timeout=30)
