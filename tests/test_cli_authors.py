"""Issue 20, runbook authors: the command line as an author meets it.

`--version`, help on every option, `incidents list` with a header, times and an empty state, no
traceback on a closed pipe, action types as a reader says them and whole first sentences,
one line instead of a temporary Prefect server when `PREFECT_API_URL` is unset (and nothing
left running by a `run` that is documented to start one), and Prefect's INFO lines kept off the
terminal unless `-v`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.cli import _parser, main

ROOT = Path(__file__).resolve().parent.parent
INCIDENT = ROOT / "examples" / "incident.json"


def _firelane(*argv: str, env: dict[str, str],
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows.cli", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _without_prefect(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "FIRELANE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}",
            "PYTHONPATH": str(ROOT)}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"firelane \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def _every_action(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {c.dest: c.help for c in action._choices_actions}
            for sub, child in action.choices.items():
                yield f"{name} {sub}", helped.get(sub) or ""
                yield from _every_action(child, f"{name} {sub}")
        else:
            yield f"{name} {'/'.join(action.option_strings) or action.dest}", action.help or ""


def test_lint_warns_of_the_skip_trap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runbook = tmp_path / "guard.yaml"
    runbook.write_text("""# yaml-language-server: $schema=./runbook.schema.json
version: 1
name: guard
description: d
steps:
  - {id: diagnose, uses: core.note, with: {message: looked}}
  - {id: guard, uses: core.fail, needs: [diagnose], if: "incident.severity == 'SEV1'"}
  - {id: resolve, uses: core.note, needs: [guard], with: {message: resolved}}
""")
    assert main(["lint", str(runbook)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "1 warning, 1 hint, 0 invalid"
    assert any(line.startswith(f"{runbook}:7 steps[1].if: warning: guard is a guard") and
               "(resolve)" in line for line in lines), lines


def test_every_command_and_option_has_help() -> None:
    missing = [where for where, text in _every_action(_parser(), "firelane") if not text]
    assert missing == []


def test_incidents_list_has_a_header_times_and_an_empty_state(
        firelane_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    from firelane.models import IncidentDraft, Severity
    from firelane.store import open_store

    assert main(["incidents", "list"]) == 0
    assert capsys.readouterr().out.startswith("no incidents yet (declare one with")
    store = open_store(firelane_env)
    store.declare_incident(IncidentDraft(title="disk full", severity=Severity.SEV3,
                                         service="db"))
    assert main(["incidents", "list", "--status", "resolved"]) == 0
    assert capsys.readouterr().out == "no resolved incidents\n"
    assert main(["incidents", "list"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["INCIDENT", "SEV", "STATUS", "DECLARED", "(UTC)", "UPDATED",
                              "(UTC)", "SERVICE", "TITLE"]
    assert re.fullmatch(r"INC-1 +SEV3 declared +\d{4}-\d\d-\d\d \d\d:\d\d "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d db +disk full", row), row
    assert row.index("declared") == header.index("STATUS")
    assert row.index("db ") == header.index("SERVICE")


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "actions"], cwd=ROOT,
                            env=_without_prefect(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert err == ""


def test_action_types_read_as_a_reader_says_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["actions", "http.check"]) == 0
    out = capsys.readouterr().out
    assert "  body_contains: string or null, optional  Text the body must contain\n" in out
    assert "  expect_status: array of integer, optional\n" in out
    assert "  within_seconds: number, default 60  Keep probing this long\n" in out
    assert "  last_status: integer or null\n" in out
    assert main(["actions", "http.request"]) == 0
    out = capsys.readouterr().out
    assert "  method: one of 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', default \"POST\"" \
        in out and "  json: any, optional  JSON body" in out
    assert "{'type'" not in out and "anyOf" not in out


def test_action_summaries_are_whole_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    from firelane.registry import registered_actions

    assert main(["actions"]) == 0
    entries = re.split(r"\n(?=\S)", capsys.readouterr().out.strip())
    assert len(entries) == len(registered_actions())
    for entry in entries:
        text = " ".join(entry.split()).removesuffix(" DESTRUCTIVE (dry_run, approval)")
        assert text.endswith((".", ")")), entry
    http_check = next(e for e in entries if e.startswith("http.check "))
    assert "every probe goes on the timeline." in " ".join(http_check.split())


@pytest.mark.parametrize("argv", [["respond"], ["serve", "--port", "0"], ["serve-flows"],
                                  ["approve", "INC-1", "rollback"], ["worker"],
                                  ["sandbox", "--save-blocks", "sb"],
                                  ["action-items", "add", "INC-1", "write the postmortem"],
                                  ["incidents", "status", "INC-1", "resolved"]])
def test_without_prefect_api_url_a_command_that_needs_it_says_so_in_one_line(
        tmp_path: Path, argv: list[str]) -> None:
    started = time.monotonic()
    out = _firelane(*argv, env=_without_prefect(tmp_path), timeout=30)
    assert out.returncode == 1, out.stdout + out.stderr
    assert time.monotonic() - started < 15
    [line] = out.stderr.splitlines()
    assert line.startswith(f"firelane: firelane {argv[0]}") and \
        "needs a Prefect server and PREFECT_API_URL is not set: export PREFECT_API_URL=" in line
    assert out.stdout == ""


def test_without_prefect_api_url_offline_commands_still_work(tmp_path: Path) -> None:
    env = _without_prefect(tmp_path)
    assert _firelane("incidents", "list", env=env).stdout.startswith("no incidents yet")
    assert _firelane("validate", env=env).returncode == 0
    assert _firelane("run", "sample-triage", "--incident", str(INCIDENT), "--plan",
                     env=env).returncode == 0


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (a unique PREFECT_HOME)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_run_without_prefect_api_url_leaves_no_server_behind(tmp_path: Path) -> None:
    env = _without_prefect(tmp_path)
    out = _firelane("run", "sample-triage", "--incident", str(INCIDENT), "--sandbox",
                    "--input", "settle_seconds=0", env=env, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("INC-1 sample-triage: succeeded")
    assert out.stderr.splitlines() == [
        "firelane: PREFECT_API_URL is not set: starting a temporary Prefect server for this "
        "run (a few seconds; it stops when the run ends). Set PREFECT_API_URL to see the run "
        "in your Prefect UI."]
    deadline = time.monotonic() + 10
    while _processes_with(env["PREFECT_HOME"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(env["PREFECT_HOME"]) == []


def test_prefect_info_lines_stay_off_the_terminal_unless_verbose(
        prefect_api: str, sqlite_url: str) -> None:
    env = {**os.environ, "FIRELANE_DATABASE_URL": sqlite_url, "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", None)
    argv = ["run", "sample-triage", "--incident", str(INCIDENT), "--sandbox",
            "--input", "settle_seconds=0"]
    quiet = _firelane(*argv, env=env, timeout=180)
    assert quiet.returncode == 0, quiet.stderr
    assert "| INFO" not in quiet.stderr, quiet.stderr
    assert quiet.stdout.splitlines()[-1].startswith("INC-1 sample-triage: succeeded")
    loud = _firelane("-v", *argv, env=env, timeout=180)
    assert loud.returncode == 0, loud.stderr
    assert "| INFO    | Flow run" in loud.stderr
