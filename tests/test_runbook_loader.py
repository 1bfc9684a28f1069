"""The loader rejects what the executor cannot run, naming file, line and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from firelane.errors import RunbookError, RunbookValidationError
from firelane.runbook import find_runbook, load_runbook, parse_runbook

ROOT = Path(__file__).resolve().parent.parent


def problems(text: str) -> list[str]:
    with pytest.raises(RunbookValidationError) as info:
        parse_runbook(text, "rb.yaml")
    return [str(p) for p in info.value.problems]


def test_every_shipped_runbook_loads() -> None:
    files = sorted((ROOT / "runbooks").glob("*.yaml"))
    assert files
    for path in files:
        assert load_runbook(path).runbook.name


def test_unknown_key_names_file_line_and_path() -> None:
    found = problems("""version: 1
name: x
steps:
  - id: a
    uses: core.note
    with: {message: hi}
    retires: 2
""")
    assert found == ["rb.yaml:7 steps[0].retires: unknown key; remove it or check its spelling"]


def test_all_problems_reported_at_once() -> None:
    found = problems("""version: 1
name: x
steps:
  - id: a
    uses: core.nte
  - id: a
    uses: core.note
    needs: [later]
  - id: later
    uses: core.note
    with: {message: "{{ steps.zzz.outputs.x }} {{ env.HOME }}"}
""")
    text = "\n".join(found)
    assert "rb.yaml:5 steps[0].uses: no action named 'core.nte' (did you mean core.note" in text
    assert "rb.yaml:6 steps[1].id: duplicate step id 'a'" in text
    assert "rb.yaml:8 steps[1].needs[0]: no earlier step 'later' (it comes later" in text
    assert "steps[2].with.message: reads steps.zzz but 'later' does not need 'zzz'" in text
    assert "unknown name 'env'" in text


def test_bad_step_id_and_if_syntax() -> None:
    text = "\n".join(problems("""version: 1
name: x
steps:
  - id: my-step
    uses: core.note
"""))
    assert "rb.yaml:4 steps[0].id: Value error, step ids are snake_case" in text
    assert "try 'my_step'" in text
    text = "\n".join(problems("""version: 1
name: x
steps:
  - id: ok
    uses: core.note
    with: {message: m}
    if: "inputs.x >"
"""))
    assert "rb.yaml:7 steps[0].if:" in text


def test_transitive_needs_allow_references() -> None:
    loaded = parse_runbook("""version: 1
name: x
steps:
  - {id: a, uses: core.note, with: {message: a}}
  - {id: b, uses: core.note, needs: [a], with: {message: b}}
  - {id: c, uses: core.note, needs: [b], with: {message: "{{ steps.a.outputs.message }}"}}
on_failure:
  - {id: tell, uses: core.note, with: {message: "{{ steps.c.status }}"}}
""")
    assert [s.id for s in loaded.runbook.all_steps()] == ["a", "b", "c", "tell"]
    assert len(loaded.content_hash) == 64


def test_approval_only_on_destructive_actions() -> None:
    assert any("approval is only for destructive" in p for p in problems("""version: 1
name: x
steps:
  - {id: a, uses: core.note, with: {message: a}, approval: {timeout_seconds: 5}}
"""))


def test_yaml_hazards_refused_quickly() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    assert "aliases" in problems(bomb)[0]
    assert "larger than" in problems("x: " + "y" * 1_100_000)[0]
    assert problems("version: 1\nname: [\n")[0].startswith("rb.yaml:3: invalid YAML")
    assert "a runbook is a YAML mapping" in problems("- just\n- a list\n")[0]


def test_find_runbook_by_name_and_path(tmp_path: Path) -> None:
    (tmp_path / "other-file.yaml").write_text(
        "version: 1\nname: named-inside\nsteps: [{id: a, uses: core.note, with: {message: m}}]\n")
    assert find_runbook("named-inside", tmp_path).name == "other-file.yaml"
    assert find_runbook("other-file", tmp_path).name == "other-file.yaml"
    with pytest.raises(RunbookError, match="no runbook named 'nope'"):
        find_runbook("nope", tmp_path)
