"""Read-only steps (issue 20): `shell.check` and the other read-only actions run under the kill
switch, the rate limit and dry runs; a dry run makes no outward side effect (coordination
steps record what they would have sent); `shell.read_only` is validated with a located error
and enforced at run time; `--plan` and `firelane actions` say READ-ONLY. Real parts: the
`run-runbook` flow on the test Prefect API, real `df`, the test vendor database."""

from __future__ import annotations

import asyncio

import pytest

from firelane.errors import RunbookValidationError
from firelane.loader import parse_runbook
from firelane.models import Incident, Severity
from firelane.registry import action, get_action
from firelane.store import Store, open_store
from firelane.validation import validate_source
from flows.cli import main
from flows.cli.plan import build_plan, format_plan
from flows.engine.dry_run import placeholder_outputs
from flows.runs.run_runbook import run_runbook_result
from integrations.remediation.shell import ShellOutputs
from tests.helpers import prepare, statuses
from tests.plugin_actions import effects

DISK = """version: 1
name: disk-full
guardrails: {max_runs_per_hour: 1}
shell: {read_only: [df]}
steps:
  - {id: disk, uses: shell.check, with: {argv: [df, -P, /]}}
  - {id: announce, uses: test.effect, needs: [disk],
     with: {name: "{{ steps.disk.outputs.stdout.splitlines()[0].split()[0] }} %(tag)s"}}
  - {id: fix, uses: test.change, needs: [announce], with: {name: "fix %(tag)s"}}
"""


@pytest.fixture
def fl_store(firelane_env: str, prefect_api: object) -> Store:
    return open_store(firelane_env)


def _run(store: Store, tag: str, dry_run: bool = False) -> tuple[dict[str, object], str]:
    rc = prepare(store, DISK % {"tag": tag}, dry_run=dry_run)
    result = asyncio.run(run_runbook_result(rc.execution.id))
    return result, rc.execution.id


def test_shell_check_runs_under_the_kill_switch(fl_store: Store) -> None:
    fl_store.add_pause("pause", "*", "erin", "freeze")
    result, execution_id = _run(fl_store, "paused")
    records = fl_store.step_records(execution_id)
    assert {k: v.status.value for k, v in records.items()} == {
        "disk": "succeeded", "announce": "succeeded", "fix": "skipped"}
    assert "Filesystem" in str((records["disk"].outputs or {})["stdout"])
    assert [n for _, n in effects()] == ["Filesystem paused"]
    outcome = result["outcome"]
    assert isinstance(outcome, dict)
    assert (outcome["kind"], outcome["guardrail"]) == ("blocked", "kill_switch")


def test_shell_check_runs_under_the_rate_limit_and_the_stop_is_not_a_success(
        fl_store: Store) -> None:
    first, _ = _run(fl_store, "first")
    assert first["status"] == "succeeded"
    second, execution_id = _run(fl_store, "second")
    records = fl_store.step_records(execution_id)
    assert records["disk"].status.value == "succeeded", \
        "a diagnostic is no remediation: the hourly limit must not hold it"
    assert records["announce"].status.value == "succeeded"
    assert records["fix"].status.value == "skipped" and "rate limit" in str(records["fix"].error)
    assert second["status"] == "failed"
    outcome = second["outcome"]
    assert isinstance(outcome, dict) and outcome["kind"] == "blocked"
    assert [n for _, n in effects()] == ["Filesystem first", "fix first", "Filesystem second"]


def test_dry_run_runs_read_only_steps_and_calls_no_vendor(fl_store: Store) -> None:
    fl_store.add_pause("pause", "*", "erin", "freeze")
    rc = prepare(fl_store, DISK.replace("guardrails: {max_runs_per_hour: 1}\n", "") % {
        "tag": "dry"} + """  - {id: follow, uses: test.effect, needs: [announce],
     with: {name: "after {{ steps.announce.outputs.name }} {{ steps.announce.outputs.created }}"}}
  - {id: look, uses: shell.check, needs: [announce],
     with: {argv: [df, "{{ steps.announce.outputs.name }}"]}}
""", dry_run=True)
    result = asyncio.run(run_runbook_result(rc.execution.id))
    assert result["status"] == "succeeded", statuses(rc)
    records = fl_store.step_records(rc.execution.id)
    disk = records["disk"].outputs or {}
    assert disk["exit_code"] == 0 and "Filesystem" in disk["stdout"] and not disk["dry_run"]
    announce = records["announce"].outputs or {}
    assert announce["dry_run"] is True
    assert announce["would_send"] == {"name": "Filesystem dry", "before_seconds": 0.0,
                                      "after_seconds": 0.0}
    follow = records["follow"].outputs or {}
    assert follow["would_send"]["name"] == "after dry-run-name False", \
        "a step reading a step that did not act reads plain, marked placeholders"
    assert (records["fix"].outputs or {})["dry_run"] is True
    look = records["look"].outputs or {}
    assert look["dry_run"] is True and look["would_send"]["argv"] == ["df", "dry-run-name"], \
        "a read-only step fed a placeholder is not run against an object that does not exist"
    assert effects() == [], "a dry run makes no outward side effect"
    kinds = [e.kind for e in fl_store.timeline(rc.incident.id) if e.step_id == "announce"]
    assert "step.dry_run" in kinds


def test_shell_check_outside_read_only_is_refused_at_validate_time() -> None:
    text = """version: 1
name: t
shell: {allow: [rm], read_only: [df]}
steps:
  - {id: look, uses: shell.check, with: {argv: [df, -h]}}
  - {id: wipe, uses: shell.check, with: {argv: [rm, -rf, /tmp/x]}}
"""
    report = validate_source(text, "t.yaml")
    [problem] = report.errors
    assert (problem.line, problem.path) == (6, "steps[1].with.argv[0]")
    assert "shell.check: 'rm' is not in this runbook's shell.read_only (df)" in problem.message
    assert "belongs in shell.read_only" in problem.message


@pytest.mark.parametrize("entry, message", [
    ("bash", "runs other commands, so it cannot be read-only"),
    ("' df'", "is not an executable name"),
])
def test_shell_read_only_list_is_validated_with_its_location(entry: str, message: str) -> None:
    text = f"""version: 1
name: t
shell:
  read_only: [df, {entry}]
steps:
  - {{id: look, uses: shell.check, with: {{argv: [df]}}}}
"""
    with pytest.raises(RunbookValidationError) as caught:
        parse_runbook(text, "t.yaml")
    [problem] = caught.value.problems
    assert problem.line == 4 and problem.path.startswith("shell.read_only")
    assert message in problem.message


def test_shell_check_outside_read_only_is_refused_at_run_time(sq: Store) -> None:
    from flows.engine.dag import run_dag
    from tests.helpers import plain_runner

    rc = prepare(sq, """version: 1
name: t
inputs: {tool: {type: string, default: touch}}
shell: {read_only: [df], allow: [touch]}
steps:
  - {id: look, uses: shell.check, with: {argv: ["{{ inputs.tool }}", /tmp/firelane-x]}}
""", dry_run=True)
    assert asyncio.run(run_dag(rc, plain_runner)) is True, "the runbook failed"
    record = sq.step_records(rc.execution.id)["look"]
    assert record.status.value == "failed"
    assert "shell.check: 'touch' is not in this runbook's shell.read_only (df)" in str(
        record.error)


def test_plan_and_actions_say_read_only(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    from firelane.loader import load_runbook

    path = Path(__file__).resolve().parent.parent / "runbooks" / "shell-remediation.yaml"
    incident = Incident(title="disk", severity=Severity.SEV3, service="web")
    given = {"host": "ops-host", "path": "/var/log/app", "older_than_days": 7}
    text = format_plan(build_plan(load_runbook(path), incident, given, dry_run=True))
    lines = {line.split(":")[0].strip("│├─ "): line for line in text.splitlines()
             if ": shell." in line}
    assert "READ-ONLY" in lines["disk_before"] and "READ-ONLY" in lines["disk_after"]
    assert "DESTRUCTIVE" in lines["clean"] and "READ-ONLY" not in lines["clean"]
    assert main(["actions"]) == 0
    listing = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert "READ-ONLY" in listing["shell.check"] and "READ-ONLY" in listing["http.check"]
    assert "READ-ONLY" not in listing["shell.run"]
    assert get_action("pagerduty.find_incident").read_only
    assert not get_action("pagerduty.trigger").read_only


def test_an_action_cannot_be_destructive_and_read_only() -> None:
    with pytest.raises(ValueError, match="both destructive and read_only"):
        @action("test.confused", destructive=True, read_only=True)
        async def confused(inputs: object, ctx: object) -> object:
            """Nope."""
            return None


def test_placeholders_follow_the_output_model() -> None:
    shell = placeholder_outputs(ShellOutputs)
    assert shell == {"exit_code": 0, "stdout": "dry-run-stdout", "stderr": "dry-run-stderr",
                     "truncated": False, "seconds": 0, "host": "dry-run-host",
                     "dry_run": False}
    ShellOutputs.model_validate(shell)
    ticket = placeholder_outputs(get_action("jira.create_issue").outputs)
    get_action("jira.create_issue").outputs.model_validate(ticket)


def test_dry_run_tells_slack_nothing_and_says_so(fl_store: Store,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELANE_PAGE_FAILURE_CHANNEL", "C0ALARMS")
    rc = prepare(fl_store, """version: 1
name: t
steps:
  - {id: stop, uses: core.fail, with: {message: "not today"}}
""", dry_run=True)
    result = asyncio.run(run_runbook_result(rc.execution.id))
    assert result["status"] == "failed"
    kinds = [e.kind for e in fl_store.timeline(rc.incident.id)]
    assert "notice.dry_run" in kinds and "notice.failed" not in kinds
    [held] = [e for e in fl_store.timeline(rc.incident.id) if e.kind == "notice.dry_run"]
    assert held.details["channels"] == ["C0ALARMS"] and "not today" in held.details["text"]
