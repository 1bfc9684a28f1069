"""Templating: native types, strictness, the sandbox, and alert text staying data."""

from __future__ import annotations

from typing import Any

import pytest

from firelane.errors import TemplateError
from firelane.templating import (
    evaluate_condition,
    referenced_roots,
    referenced_steps,
    render_value,
)

CTX: dict[str, Any] = {
    "incident": {"title": "DB down {{ 7*7 }}", "severity": "SEV1", "number": 7,
                 "labels": {"team": "{{ run }}"}},
    "inputs": {"service": "web", "count": 3, "hosts": ["a", "b"]},
    "steps": {"ticket": {"status": "succeeded", "outputs": {"key": "OPS-1"}, "error": None}},
    "run": {"execution_id": "e1"},
}


def test_whole_expression_keeps_native_type() -> None:
    assert render_value("{{ inputs.count }}", CTX) == 3
    assert render_value("  {{ inputs.hosts }} ", CTX) == ["a", "b"]
    assert render_value({"n": ["{{ inputs.count + 1 }}"]}, CTX) == {"n": [4]}


def test_mixed_text_renders_to_string() -> None:
    assert render_value("inc-{{ incident.number }}-{{ inputs.service }}", CTX) == "inc-7-web"
    assert render_value("{{ inputs.count }}{{ inputs.count }}", CTX) == "33"


def test_alert_text_is_data_not_template() -> None:
    assert render_value("{{ incident.title }}", CTX) == "DB down {{ 7*7 }}"
    assert render_value("t: {{ incident.title }}", CTX) == "t: DB down {{ 7*7 }}"
    assert render_value("{{ incident.labels.team }}", CTX) == "{{ run }}"


def test_missing_values_are_errors_not_empty_strings() -> None:
    with pytest.raises(TemplateError, match="nope"):
        render_value("x {{ inputs.nope }}", CTX, "steps.a.with.x")
    with pytest.raises(TemplateError, match=r"steps\.a\.with\.x"):
        render_value("{{ inputs.nope }}", CTX, "steps.a.with.x")


def test_sandbox_blocks_internals_and_mutation() -> None:
    with pytest.raises(TemplateError):
        render_value("{{ ''.__class__.__mro__[1].__subclasses__() }}", CTX)
    with pytest.raises(TemplateError):
        render_value("{{ inputs.hosts.append('c') }}", CTX)
    assert CTX["inputs"]["hosts"] == ["a", "b"]


def test_syntax_error_is_template_error() -> None:
    with pytest.raises(TemplateError, match="template"):
        render_value("{{ inputs.service ", CTX)


def test_conditions_are_compiled_not_rendered() -> None:
    assert evaluate_condition("incident.severity in ['SEV1', 'SEV2']", CTX)
    assert not evaluate_condition("inputs.count > 5", CTX)
    assert evaluate_condition("{{ steps.ticket.status == 'succeeded' }}", CTX)
    with pytest.raises(TemplateError):
        evaluate_condition("inputs.count >", CTX)
    with pytest.raises(TemplateError, match="missing"):
        evaluate_condition("inputs.missing", CTX)


def test_referenced_steps_and_roots_walk_the_ast() -> None:
    text = "{{ steps.ticket.outputs.key }} {{ steps['page'].status }} {{ inputs.x }}"
    assert referenced_steps(text) == {"ticket", "page"}
    assert referenced_steps("steps.bridge.outputs.url", expression=True) == {"bridge"}
    assert referenced_steps("no template steps.x") == set()
    assert referenced_roots("{% for h in inputs.hosts %}{{ h }}{% endfor %}") == {"inputs"}
    assert referenced_roots("{{ env.HOME }}") == {"env"}
    assert referenced_roots("false", expression=True) == set()
    assert referenced_roots("x {{ none }} {{ inputs.a }}") == {"inputs"}
    assert referenced_steps("{{ steps.a.outputs.b }}-{{ steps.c.status }}") == {"a", "c"}
