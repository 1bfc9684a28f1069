"""deploy/: the systemd units pass `systemd-analyze verify` (binaries rewritten to this
checkout's .venv), name only real `firelane` subcommands and options, order every Firelane
process after the schema upgrade and carry the hardening; the example env file sets every
setting and parses; the Containerfile installs from the lock with hashes and copies only what
exists. No container is built here (no registry serves base images on this machine)."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from firelane.lanes import PAGING_NICE
from firelane.settings import ENV_PREFIX, Settings
from flows.cli import _parser
from flows.cli.priority import FLOWS_NICE

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
INSTALLED_BIN = "/opt/firelane/.venv/bin/"
LONG_RUNNING = {
    "firelane-intake.service": ["serve", "--responder", "external", "--config"],
    "firelane-respond-urgent@.service": ["respond", "--role", "urgent"],
    "firelane-respond-flows.service": ["respond", "--role", "flows"],
    "firelane-worker.service": ["worker"],
    "firelane-prefect-server.service": ["server", "start"],
}
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictSUIDSGID": "yes",
             "CapabilityBoundingSet": ""}


def _unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    return parser


def _exec_start(path: Path) -> list[str]:
    return shlex.split(_unit(path)["Service"]["ExecStart"])


def test_every_long_running_process_has_a_unit() -> None:
    names = {p.name for p in SERVICES}
    assert set(LONG_RUNNING) | {"firelane-db-upgrade.service"} == names
    for name, words in LONG_RUNNING.items():
        argv = _exec_start(UNITS / name)
        assert argv[0].startswith(INSTALLED_BIN)
        assert all(w in argv for w in words), (name, argv)


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_unit_runs_a_real_command_as_a_hardened_dedicated_user(path: Path) -> None:
    unit = _unit(path)
    service = unit["Service"]
    assert service["User"] in {"firelane", "prefect"} and service["Group"] == service["User"]
    assert "EnvironmentFile=/etc/firelane/firelane.env" in path.read_text(encoding="utf-8")
    for key, value in HARDENING.items():
        assert service.get(key) == value, (path.name, key)
    argv = _exec_start(path)
    binary = Path(argv[0]).name
    if binary == "firelane":
        args = _parser().parse_args(argv[1:])
        assert callable(args.fn)
    else:
        assert binary == "prefect" and argv[1:3] == ["server", "start"]
    if path.name == "firelane-db-upgrade.service":
        assert service["Type"] == "oneshot" and argv[1:] == ["db", "upgrade"]
        return
    assert service["Restart"] == "always" and float(service["RestartSec"]) >= 1
    if binary == "firelane":
        requires = unit["Unit"]["Requires"].split()
        after = unit["Unit"]["After"].split()
        assert "firelane-db-upgrade.service" in requires
        assert "firelane-db-upgrade.service" in after


def test_paging_responders_do_not_wait_for_prefect() -> None:
    unit = _unit(UNITS / "firelane-respond-urgent@.service")["Unit"]
    assert "prefect" not in unit.get("Requires", "") + unit.get("Wants", "")


def test_the_paging_path_runs_above_flow_runs_and_prefect() -> None:
    nice = {name: int(_unit(UNITS / name)["Service"]["Nice"]) for name in LONG_RUNNING}
    assert nice["firelane-intake.service"] == nice["firelane-respond-urgent@.service"] \
        == PAGING_NICE
    assert nice["firelane-respond-flows.service"] == nice["firelane-worker.service"] \
        == nice["firelane-prefect-server.service"] == FLOWS_NICE
    for name in ("firelane-intake.service", "firelane-respond-flows.service",
                 "firelane-worker.service"):
        assert _unit(UNITS / name)["Service"]["LimitNICE"] == str(PAGING_NICE), name


def test_the_prefect_server_options_exist() -> None:
    argv = _exec_start(UNITS / "firelane-prefect-server.service")
    prefect = ROOT / ".venv" / "bin" / "prefect"
    if not prefect.exists():
        pytest.skip("no .venv/bin/prefect in this checkout")
    done = subprocess.run([str(prefect), *argv[1:3], "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for option in (a for a in argv[3:] if a.startswith("--")):
        assert option in done.stdout


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    venv_bin = str(ROOT / ".venv" / "bin") + "/"
    for path in [*SERVICES, *UNITS.glob("*.target")]:
        text = path.read_text(encoding="utf-8").replace(INSTALLED_BIN, venv_bin)
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    names = [str(tmp_path / p.name) for p in SERVICES if "@" not in p.name]
    names += ["firelane-respond-urgent@1.service", "firelane.target"]
    done = subprocess.run([analyze, "verify", "--man=no", *names], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path,
                          env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def _env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def test_the_example_env_file_sets_every_setting_and_parses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env_file(DEPLOY / "firelane.env.example")
    variables = {str(f.validation_alias or ENV_PREFIX + name.upper())
                 for name, f in Settings.model_fields.items()}
    assert variables <= set(env), variables - set(env)
    assert {k for k in env if k.startswith(ENV_PREFIX)} <= variables
    assert "PREFECT_API_URL" in env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env()
    assert settings.database_url.startswith("postgresql+psycopg://")
    server = _env_file(DEPLOY / "prefect-server.env.example")
    assert {"PREFECT_SERVER_ENCRYPTION_KEY", "PREFECT_API_DATABASE_CONNECTION_URL",
            "PREFECT_SERVER_API_AUTH_STRING"} <= set(server)
    for value in [*env.values(), *server.values()]:
        assert not re.search(r"[A-Za-z0-9+/=_-]{40,}", value), "a real-looking secret"


def _instructions(path: Path) -> list[tuple[str, str]]:
    lines: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("#") and not pending:
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line.strip()]


def test_the_containerfile_installs_the_lock_with_hashes_as_non_root() -> None:
    steps = _instructions(DEPLOY / "Containerfile")
    assert steps[0] == ("FROM", "python:3.11-slim")
    installs = [cmd for op, cmd in steps if op == "RUN" and "pip install" in cmd]
    assert any("--require-hashes --no-deps -r requirements.lock" in c for c in installs)
    for cmd in installs:
        for part in cmd.split("&&"):
            if "pip install" in part:
                assert "--no-deps" in part, part
    lock_step = next(i for i, (op, cmd) in enumerate(steps) if "-r requirements.lock" in cmd)
    project_step = next(i for i, (op, cmd) in enumerate(steps)
                        if op == "RUN" and re.search(r"pip install --no-deps \.(\s|$)", cmd))
    assert lock_step < project_step
    for op, args in steps:
        if op == "COPY":
            *sources, _target = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    last_user = max(i for i, (op, _) in enumerate(steps) if op == "USER")
    assert all(op != "RUN" for op, _ in steps[last_user:])
