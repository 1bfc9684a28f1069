"""The command line: plan without Prefect, clear errors, incidents, validate, approve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main

ROOT = Path(__file__).resolve().parent.parent
INCIDENT = ROOT / "examples" / "incident.json"


def test_plan_renders_without_importing_prefect(sqlite_url: str) -> None:
    code = (
        "import sys\n"
        "from flows.cli import main\n"
        "rc = main(['run', 'sample-triage', '--incident', sys.argv[1], '--plan', '--json',"
        " '--input', 'settle_seconds=2'])\n"
        "assert 'prefect' not in sys.modules, 'plan imported prefect'\n"
        "sys.exit(rc)\n")
    env = {**os.environ, "FIRELANE_DATABASE_URL": sqlite_url, "PREFECT_API_URL": "http://0.0.0.0:9/api"}
    out = subprocess.run([sys.executable, "-c", code, str(INCIDENT)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    first_wave = {s["id"]: s for s in plan["waves"][0]}
    assert set(first_wave) == {"declare", "settle", "first_look"}
    assert first_wave["settle"]["with"] == {"seconds": 2}
    assert first_wave["declare"]["with"]["message"] == \
        "[SEV2] Checkout 5xx rate above 5% on web"
    assert plan["waves"][1][0]["with"]["message"].startswith("<at run time:")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists(), "plan touched the store"


def test_plan_tree_marks_parallel_waves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "sample-triage", "--incident", str(INCIDENT), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "wave 1 (run in parallel)" in out and "needs declare, settle, first_look" in out
    assert "nothing ran" in out


def test_bad_incident_file_and_inputs_are_clear(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "inc.json"
    bad.write_text('{"title": "x", "severity": "SEV9"}')
    assert main(["run", "sample-triage", "--incident", str(bad), "--plan"]) == 1
    err = capsys.readouterr().err
    assert "severity" in err and "service: Field required" in err
    bad.write_text("{nope")
    assert main(["run", "sample-triage", "--incident", str(bad), "--plan"]) == 1
    assert f"{bad}:1: invalid JSON" in capsys.readouterr().err
    assert main(["run", "sample-triage", "--incident", str(INCIDENT), "--plan",
                 "--input", "settle_seconds=soon"]) == 1
    assert "'settle_seconds' must be number" in capsys.readouterr().err
    assert main(["run", "no-such-runbook", "--incident", str(INCIDENT), "--plan"]) == 1
    assert "no runbook named 'no-such-runbook'" in capsys.readouterr().err


def test_validate_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = ROOT / "runbooks" / "sample-triage.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nsteps:\n  - {id: a, uses: core.nope}\n")
    assert main(["validate", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"ok  {good}" in captured.out and "1 valid, 1 invalid" in captured.out
    assert f"{bad}:4 steps[0].uses: no action named 'core.nope'" in captured.err


def test_incidents_and_approve_without_pending(firelane_env: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from firelane.models import IncidentDraft, Severity
    from firelane.store import open_store

    store = open_store(firelane_env)
    store.declare_incident(IncidentDraft(title="disk full", severity=Severity.SEV3,
                                         service="db"))
    assert main(["incidents", "list"]) == 0
    assert "INC-1" in capsys.readouterr().out
    assert main(["incidents", "show", "INC-1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["title"] == "disk full" and shown["timeline"][0]["kind"] == "incident.declared"
    assert main(["approve", "INC-1", "rollback"]) == 1
    assert "no pending approval (never requested)" in capsys.readouterr().err
    assert main(["incidents", "show", "INC-7"]) == 1
    assert "no incident 'INC-7'" in capsys.readouterr().err


def test_schema_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from firelane.schema import render_schema

    out = tmp_path / "schema.json"
    assert main(["schema", "--output", str(out), "--check"]) == 1
    assert "is stale: run `firelane schema`" in capsys.readouterr().err
    assert main(["schema", "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(render_schema())
    assert main(["schema", "--output", str(out), "--check"]) == 0


def test_actions_lists_and_describes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["actions"]) == 0
    listing = capsys.readouterr().out
    assert "core.wait" in listing and "test.change" in listing and "DESTRUCTIVE" in listing
    assert main(["actions", "core.wait"]) == 0
    described = capsys.readouterr().out
    assert "seconds: number, required  How long to wait" in described
    assert main(["actions", "core.wait", "--json"]) == 0
    [spec] = json.loads(capsys.readouterr().out)
    assert spec["inputs"]["seconds"]["required"] and not spec["destructive"]
    assert main(["actions", "core.wiat"]) == 1
    assert "did you mean core.wait" in capsys.readouterr().err


def test_lint_hints_and_validate_warnings(tmp_path: Path, effects_db: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rb = tmp_path / "rb.yaml"
    rb.write_text("version: 1\nname: x\nmatch: {severity: [SEV1]}\n"
                  "inputs:\n  unused: {type: string}\n"
                  "steps:\n  - {id: fix, uses: test.change, with: {name: n}}\n")
    assert main(["validate", str(rb)]) == 0
    captured = capsys.readouterr()
    assert "1 valid, 0 invalid, 1 warnings" in captured.out
    assert f"{rb}:7 steps[0].uses: warning: test.change is destructive" in captured.err
    assert main(["lint", str(rb)]) == 0
    out = capsys.readouterr().out
    assert f"{rb}:1: hint: start with '# yaml-language-server" in out
    assert f"{rb}:2 name: hint: add a description" in out
    assert f"{rb}:5 inputs.unused: hint: input 'unused' is never used" in out
    assert f"{rb}:7 steps[0].id: hint: 'fix' produces outputs" in out
