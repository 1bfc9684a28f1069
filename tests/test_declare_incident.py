"""`firelane run declare-incident --sandbox`: the war room from the CLI, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from firelane.store import open_store
from flows.cli import main
from integrations.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
INCIDENT = ROOT / "examples" / "incident.json"


@pytest.mark.usefixtures("prefect_api")
def test_war_room_from_the_cli_once(firelane_env: str, sandbox: Sandbox,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "declare-incident", "--incident", str(INCIDENT), "--sandbox"]) == 0
    out = capsys.readouterr().out
    assert "key=OPS-1 url=https://" in out and "url=https://sandbox.zoom.local/j/" in out
    state = sandbox.state.dump()
    assert list(state["jira_issues"]) == ["OPS-1"] and len(state["pd_incidents"]) == 1
    [room] = state["slack_channels"].values()
    assert room["name"] == "inc-1-web" and "U0ALICE" in room["members"]
    assert sorted(b["title"] for b in room["bookmarks"]) == [
        "PagerDuty incident", "Runbook run (Prefect)", "Ticket OPS-1", "Video bridge"]
    assert "OPS-1" in room["topic"]["value"]
    [announce] = state["slack_messages"]
    assert "OPS-1" in announce["text"] and announce["pinned"]
    store = open_store(firelane_env)
    [incident] = store.list_incidents()
    [execution] = store.list_executions(incident.id)
    assert main(["resume", execution.id]) == 0
    again = sandbox.state.dump()
    assert (len(again["jira_issues"]), len(again["pd_incidents"]), len(again["slack_channels"]),
            len(again["slack_messages"]), len(again["zoom_meetings"])) == (1, 1, 1, 1, 1)


@pytest.mark.usefixtures("prefect_api")
def test_embedded_sandbox_when_none_is_running(firelane_env: str,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("FIRELANE_SANDBOX_URL", raising=False)
    assert main(["run", "declare-incident", "--incident", str(INCIDENT), "--sandbox"]) == 0
    out = capsys.readouterr().out
    assert "sandbox: Jira OPS-1 · PagerDuty Q" in out and "#inc-1-web (2 members)" in out


@pytest.mark.usefixtures("prefect_api")
def test_sandbox_command_serves_and_saves_blocks(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from integrations.jira.block import JiraCredentials

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "sandbox", "--save-blocks",
                             "from-cli"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while not all(any(f"saved {kind}" in line for line in lines)
                      for kind in ("ZoomCredentials", "SmtpServer")):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            lines.append(proc.stdout.readline())
        url = lines[0].split(" at ")[1].split(" ")[0]
        assert JiraCredentials.load("from-cli").base_url == f"{url}/jira"  # type: ignore[union-attr]
        from integrations.email.block import SmtpServer

        smtp = next(line for line in lines if line.strip().startswith("smtp "))
        port = int(smtp.split()[1].split(":")[1])
        assert SmtpServer.load("from-cli").port == port  # type: ignore[union-attr]
        assert any(line.startswith("export FIRELANE_SANDBOX_URL=") for line in lines)
        zoom = next(line for line in lines if line.strip().startswith("zoom_api "))
        assert "(100 meetings a user a UTC day, as Zoom; --zoom-daily-limit)" in zoom
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0


def test_an_embedded_sandbox_stops_without_an_error_line(prefect_api: str,
                                                         tmp_path: Path) -> None:
    """The run's clients keep their connections to the embedded sandbox; they are closed
    before it stops, so a successful run does not end with uvicorn's "timeout graceful
    shutdown exceeded" ERROR on the terminal."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELANE_SANDBOX")}
    env.update({"PREFECT_API_URL": prefect_api, "PYTHONPATH": str(ROOT),
                "FIRELANE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}",
                "FIRELANE_CATALOG": str(tmp_path / "services.yaml")})
    out = subprocess.run([sys.executable, "-m", "flows.cli", "run", "declare-incident",
                          "--incident", str(INCIDENT), "--sandbox"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("INC-1 declare-incident: succeeded")
    assert "#inc-1-web (2 members)" in out.stdout
    assert "ERROR" not in out.stdout + out.stderr, out.stdout + out.stderr
