"""At least 30 malformed runbooks, each with the exact line and path of its problem; the JSON
Schema rejects the schema-expressible ones at the same path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from firelane.schema import render_schema
from firelane.validation import validate_source

ROOT = Path(__file__).resolve().parent.parent
H = "version: 1\nname: x\n"
NOTE = "  - {id: a, uses: core.note, with: {message: hi}}\n"

# (id, source, "line path", message fragment, JSON-Schema path or None when the schema cannot
# express the rule)
CASES: list[tuple[str, str, str, str, tuple[Any, ...] | None]] = [
    ("top-level typo", H + "descripton: d\nsteps:\n" + NOTE,
     "3 descripton", "unknown key 'descripton'; did you mean 'description'?", ()),
    ("step key typo", H + "steps:\n  - id: a\n    uses: core.note\n    with: {message: m}\n"
     "    retires: 2\n", "7 steps[0].retires", "did you mean 'retries'?", ("steps", 0)),
    ("approval key typo", H + "steps:\n  - id: a\n    uses: core.wait\n    with: {seconds: 1}\n"
     "    approval: {timeout: 5}\n", "7 steps[0].approval.timeout",
     "did you mean 'timeout_seconds'?", ("steps", 0, "approval")),
    ("missing version", "name: x\nsteps:\n" + NOTE, "1 version",
     "required key 'version' is missing", ()),
    ("wrong version", "version: 2\nname: x\nsteps:\n" + NOTE, "1 version", "Input should be 1",
     ("version",)),
    ("missing steps", H + "description: d\n", "1 steps", "required key 'steps' is missing", ()),
    ("empty steps", H + "steps: []\n", "3 steps", "at least 1 item", ("steps",)),
    ("retries not a number", H + "steps:\n  - {id: a, uses: core.note, with: {message: m}, "
     "retries: many}\n", "4 steps[0].retries", "valid integer", ("steps", 0, "retries")),
    ("retries too many", H + "steps:\n  - id: a\n    uses: core.note\n    with: {message: m}\n"
     "    retries: 50\n", "7 steps[0].retries", "less than or equal to 20",
     ("steps", 0, "retries")),
    ("negative timeout", H + "steps:\n  - id: a\n    uses: core.note\n    with: {message: m}\n"
     "    timeout_seconds: -1\n", "7 steps[0].timeout_seconds", "greater than 0",
     ("steps", 0, "timeout_seconds")),
    ("bad on_error", H + "steps:\n  - id: a\n    uses: core.note\n    with: {message: m}\n"
     "    on_error: maybe\n", "7 steps[0].on_error", "'fail' or 'continue'",
     ("steps", 0, "on_error")),
    ("kebab step id", H + "steps:\n  - id: my-step\n    uses: core.note\n    with: {message: m}\n",
     "4 steps[0].id", "snake_case", ("steps", 0, "id")),
    ("bad runbook name", "version: 1\nname: Web_Fix\nsteps:\n" + NOTE, "2 name",
     "should match pattern", ("name",)),
    ("duplicate ids", H + "steps:\n" + NOTE + NOTE, "5 steps[1].id", "duplicate step id 'a'",
     None),
    ("unknown action", H + "steps:\n  - id: a\n    uses: core.notes\n", "5 steps[0].uses",
     "no action named 'core.notes' (did you mean core.note", ("steps", 0, "uses")),
    ("needs a later step", H + "steps:\n  - id: a\n    uses: core.note\n    needs: [b]\n"
     "    with: {message: m}\n  - {id: b, uses: core.note, with: {message: m}}\n",
     "6 steps[0].needs[0]", "'b' comes later", None),
    ("needs unknown", H + "steps:\n  - id: a\n    uses: core.note\n    needs:\n      - ghost\n"
     "    with: {message: m}\n", "7 steps[0].needs[0]", "no step 'ghost' in steps", None),
    ("needs itself", H + "steps:\n  - {id: a, uses: core.note, needs: [a], with: {message: m}}"
     "\n", "4 steps[0].needs[0]", "cannot need itself", None),
    ("on_failure needs main", H + "steps:\n" + NOTE + "on_failure:\n  - id: t\n"
     "    uses: core.note\n    needs: [a]\n    with: {message: m}\n", "8 on_failure[0].needs[0]",
     "'a' is a main step", None),
    ("reads unneeded step", H + "steps:\n" + NOTE + "  - id: b\n    uses: core.note\n"
     "    with:\n      message: \"{{ steps.a.outputs.message }}\"\n",
     "8 steps[1].with.message", "'b' does not need 'a'", None),
    ("unknown root", H + "steps:\n  - id: a\n    uses: core.note\n    with:\n"
     "      message: \"{{ alert.labels }}\"\n", "7 steps[0].with.message",
     "unknown name 'alert'; templates may read only incident, inputs, run, steps",
     None),
    ("secrets root", H + "steps:\n  - id: a\n    uses: core.note\n    with:\n"
     "      message: \"{{ secrets.pd_token }}\"\n", "7 steps[0].with.message",
     "secrets live in Prefect blocks", None),
    ("template syntax", H + "steps:\n  - id: a\n    uses: core.note\n    with:\n"
     "      message: \"{{ incident.title \"\n", "7 steps[0].with.message",
     "line 1: unexpected end of template",
     None),
    ("if syntax", H + "steps:\n  - id: a\n    uses: core.note\n    with: {message: m}\n"
     "    if: \"incident.severity ==\"\n", "7 steps[0].if",
     "unexpected 'end of print statement'", None),
    ("undeclared input", H + "inputs:\n  svc: {type: string}\nsteps:\n  - id: a\n"
     "    uses: core.note\n    with: {message: \"{{ inputs.service }}\"}\n",
     "8 steps[0].with.message",
     "reads inputs.service, which is not declared under inputs: (declared: svc)", None),
    ("literal wrong type", H + "steps:\n  - id: a\n    uses: core.wait\n    with:\n"
     "      seconds: soon\n", "7 steps[0].with.seconds", "valid number",
     ("steps", 0, "with", "seconds")),
    ("literal out of range", H + "steps:\n  - id: a\n    uses: core.wait\n    with:\n"
     "      seconds: 100000\n", "7 steps[0].with.seconds", "less than or equal to 86400",
     ("steps", 0, "with", "seconds")),
    ("with key typo", H + "steps:\n  - id: a\n    uses: core.note\n    with:\n"
     "      mesage: hi\n", "7 steps[0].with.mesage", "did you mean 'message'?",
     ("steps", 0, "with")),
    ("required input missing", H + "steps:\n  - id: a\n    uses: core.note\n    with: {}\n",
     "6 steps[0].with", "core.note needs input 'message'", ("steps", 0, "with")),
    ("with not a mapping", H + "steps:\n  - id: a\n    uses: core.note\n    with: [1, 2]\n",
     "6 steps[0].with", "valid dictionary", ("steps", 0, "with")),
    ("approval on harmless step", H + "steps:\n  - id: a\n    uses: core.note\n"
     "    with: {message: m}\n    approval: {timeout_seconds: 60}\n", "7 steps[0].approval",
     "approval is only for actions with an effect", None),
    ("input type typo", H + "inputs:\n  n: {type: str}\nsteps:\n" + NOTE, "4 inputs.n.type",
     "'string'", ("inputs", "n", "type")),
    ("bad severity", H + "match:\n  severity: [SEV5]\nsteps:\n" + NOTE,
     "4 match.severity[0]", "'SEV1', 'SEV2', 'SEV3' or 'SEV4'", ("match", "severity", 0)),
    ("alias bomb", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "2", "aliases", None),
    ("yaml syntax", H + "steps: [\n", "4", "invalid YAML", None),
    ("not a mapping", "- a\n- b\n", "1", "a runbook is a YAML mapping", ()),
    ("huge file", "x: " + "y" * 1_100_000 + "\n", "", "larger than 1000000 bytes", None),
]


def _schema_paths(validator: jsonschema.protocols.Validator, data: Any) -> set[tuple[Any, ...]]:
    paths: set[tuple[Any, ...]] = set()

    def walk(errors: Any) -> None:
        for err in errors:
            paths.add(tuple(err.absolute_path))
            walk(err.context or [])

    walk(validator.iter_errors(data))
    return paths


def test_there_are_at_least_30_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(("source", "where", "fragment"),
                         [(c[1], c[2], c[3]) for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_runbook_names_line_and_path(source: str, where: str, fragment: str) -> None:
    report = validate_source(source, "rb.yaml")
    assert report.runbook is None
    line, _, path = where.partition(" ")
    prefix = f"rb.yaml:{line}" if line else "rb.yaml"
    prefix += f" {path}:" if path else ":"
    texts = [str(p) for p in report.errors]
    matching = [t for t in texts if t.startswith(prefix)]
    assert matching, f"no problem at {prefix!r}; got {texts}"
    assert any(fragment in t for t in matching), f"{fragment!r} not in {matching}"


@pytest.mark.parametrize(("source", "schema_path"),
                         [(c[1], c[4]) for c in CASES if c[4] is not None],
                         ids=[c[0] for c in CASES if c[4] is not None])
def test_schema_rejects_for_the_same_reason(source: str, schema_path: tuple[Any, ...]) -> None:
    schema = json.loads(render_schema(bundled_only=True))
    paths = _schema_paths(jsonschema.Draft202012Validator(schema), yaml.safe_load(source))
    assert schema_path in paths, f"schema errors at {sorted(map(str, paths))}"


def test_schema_accepts_every_shipped_runbook_and_is_current() -> None:
    text = render_schema(bundled_only=True)
    assert (ROOT / "runbooks" / "runbook.schema.json").read_text() == text, \
        "runbooks/runbook.schema.json is stale: run `firelane schema`"
    validator = jsonschema.Draft202012Validator(json.loads(text))
    for path in sorted((ROOT / "runbooks").glob("*.yaml")):
        assert path.read_text().startswith("# yaml-language-server: $schema=./runbook.schema.json")
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path


def test_all_problems_at_once_even_with_schema_errors() -> None:
    report = validate_source(H + "steps:\n  - {id: a, uses: core.note, with: {message: m}, "
                             "retires: 1}\n  - {id: b, uses: core.nope}\n"
                             "  - {id: c, uses: core.note, needs: [zz], with: {message: m}}\n",
                             "rb.yaml")
    texts = [str(p) for p in report.errors]
    assert len(texts) == 3
    assert texts[0].startswith("rb.yaml:4 steps[0].retires: unknown key")
    assert texts[1].startswith("rb.yaml:5 steps[1].uses: no action named 'core.nope'")
    assert texts[2].startswith("rb.yaml:6 steps[2].needs[0]: no step 'zz'")


def test_templated_values_are_checked_at_run_time_not_now() -> None:
    report = validate_source(H + "inputs:\n  s: {type: string}\nsteps:\n  - id: a\n"
                             "    uses: core.wait\n    with: {seconds: \"{{ inputs.s }}\"}\n")
    assert report.errors == [] and report.runbook is not None


def test_destructive_without_approval_warns_when_matching_sev1(effects_db: Path) -> None:
    src = ("version: 1\nname: x\nmatch: {severity: [SEV1, SEV2]}\nsteps:\n"
           "  - id: fix\n    uses: test.change\n    with: {name: n}\n"
           "  - id: gated\n    uses: test.change\n    with: {name: n}\n"
           "    approval: {timeout_seconds: 60}\n")
    report = validate_source(src, "rb.yaml")
    assert report.errors == []
    assert [str(w) for w in report.warnings] == [
        "rb.yaml:6 steps[0].uses: warning: test.change is destructive and runs without "
        "approval in a runbook that matches SEV1 incidents; add approval: "
        "{timeout_seconds: 900}"]
    assert validate_source(src.replace("SEV1, ", ""), "rb.yaml").warnings == []
