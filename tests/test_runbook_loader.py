"""Loading runbooks: shipped ones load, references through needs, finding by name or path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firelane.errors import RunbookError, RunbookValidationError
from firelane.loader import find_runbook, load_runbook, parse_runbook

ROOT = Path(__file__).resolve().parent.parent


def test_every_shipped_runbook_loads() -> None:
    files = sorted((ROOT / "runbooks").glob("*.yaml"))
    assert files
    for path in files:
        assert load_runbook(path).runbook.name


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


def test_validation_error_lists_every_problem_in_its_message() -> None:
    with pytest.raises(RunbookValidationError) as info:
        parse_runbook("version: 1\nname: x\nsteps:\n  - {id: a, uses: core.x}\n"
                      "  - {id: a, uses: core.note, with: {message: m}}\n", "f.yaml")
    assert len(info.value.problems) == 2
    assert str(info.value).splitlines()[1] == "f.yaml:5 steps[1].id: duplicate step id 'a'"


def test_unreadable_files_are_clear(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RunbookError, match="not UTF-8"):
        load_runbook(binary)
    with pytest.raises(RunbookError, match="cannot read runbook"):
        load_runbook(tmp_path / "missing.yaml")
    for depth, says in ((65, "nested more than 64 levels deep; flatten it"),
                        (5000, "nested more than 64 levels deep|maximum nesting depth")):
        deep = tmp_path / f"deep{depth}.yaml"
        deep.write_text("x: " + "[" * depth + "]" * depth + "\n")
        with pytest.raises(RunbookValidationError) as info:
            load_runbook(deep)
        assert f"deep{depth}.yaml:1: " in str(info.value), info.value
        assert re.search(says, str(info.value)), info.value


def test_find_runbook_by_name_and_path(tmp_path: Path) -> None:
    (tmp_path / "other-file.yaml").write_text(
        "version: 1\nname: named-inside\nsteps: [{id: a, uses: core.note, with: {message: m}}]\n")
    assert find_runbook("named-inside", tmp_path).name == "other-file.yaml"
    assert find_runbook("other-file", tmp_path).name == "other-file.yaml"
    with pytest.raises(RunbookError, match="no runbook named 'nope'"):
        find_runbook("nope", tmp_path)
