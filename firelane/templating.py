"""Sandboxed templating for runbook `with:` values and `if:` conditions.

Jinja2's `ImmutableSandboxedEnvironment` with `StrictUndefined`: templates cannot mutate data,
reach Python internals or silently render a missing value as an empty string. The roots are
`incident`, `inputs`, `steps` and `run`; nothing else (no environment, no secrets).

A string that is exactly one `{{ expr }}` keeps the expression's native type (a list stays a
list); mixed text renders to a string. `if:` is compiled with `compile_expression`, never rendered
then evaluated. Rendered output is never rendered again, so text that came from an alert
(`{{ 7*7 }}` in a label) stays literal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from firelane.errors import TemplateError

__all__ = [
    "ROOTS",
    "compile_condition",
    "evaluate_condition",
    "has_template",
    "referenced_roots",
    "referenced_steps",
    "render_value",
]

ROOTS = frozenset({"incident", "inputs", "steps", "run"})

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                     keep_trailing_newline=True)
_WHOLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


def has_template(text: str) -> bool:
    """True when `text` contains Jinja syntax."""
    return "{{" in text or "{%" in text or "{#" in text


def _whole_expression(text: str) -> str | None:
    match = _WHOLE.match(text)
    if match is None:
        return None
    expr = match.group("expr")
    if "{{" in expr or "}}" in expr or "{%" in expr:
        return None
    return expr


@lru_cache(maxsize=4096)
def _compile_expression(expr: str) -> Callable[..., Any]:
    try:
        return _ENV.compile_expression(expr, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"expression {expr.strip()!r}: {exc.message}") from exc


@lru_cache(maxsize=4096)
def _compile_template(text: str) -> Any:
    try:
        return _ENV.from_string(text)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template line {exc.lineno}: {exc.message}") from exc


def _run(fn: Callable[[], Any], what: str) -> Any:
    try:
        return fn()
    except UndefinedError as exc:
        raise TemplateError(f"{what}: {exc.message}") from exc
    except SecurityError as exc:
        raise TemplateError(f"{what}: not allowed in the sandbox: {exc}") from exc
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _check_strict(value: Any, what: str) -> Any:
    if isinstance(value, StrictUndefined):
        str(value)  # raises UndefinedError with the missing name
    return value


def render_value(value: Any, context: Mapping[str, Any], where: str = "value") -> Any:
    """Render every string inside `value` (recursing into lists and dicts) against `context`."""
    if isinstance(value, str):
        if not has_template(value):
            return value
        expr = _whole_expression(value)
        if expr is not None:
            fn = _compile_expression(expr)
            return _run(lambda: _check_strict(fn(**context), where), where)
        template = _compile_template(value)
        return _run(lambda: template.render(**context), where)
    if isinstance(value, list):
        return [render_value(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: render_value(v, context, f"{where}.{k}") for k, v in value.items()}
    return value


def compile_condition(expr: str) -> Callable[..., Any]:
    """Compile an `if:` expression (raises `TemplateError` on syntax errors)."""
    text = expr.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    return _compile_expression(text)


def evaluate_condition(expr: str, context: Mapping[str, Any], where: str = "if") -> bool:
    """Evaluate an `if:` expression to a bool."""
    fn = compile_condition(expr)
    return bool(_run(lambda: _check_strict(fn(**context), where), where))


def _parse(text: str, expression: bool) -> nodes.Node:
    source = "{{ " + text + " }}" if expression else text
    try:
        return _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"line {exc.lineno}: {exc.message}") from exc


def referenced_steps(text: str, expression: bool = False) -> set[str]:
    """Step ids read through `steps.X` or `steps['X']` in a template (or an expression)."""
    if expression:
        stripped = text.strip()
        if stripped.startswith("{{") and stripped.endswith("}}"):
            stripped = stripped[2:-2]
        tree = _parse(stripped, expression=True)
    elif has_template(text):
        tree = _parse(text, expression=False)
    else:
        return set()
    found: set[str] = set()
    for node in tree.find_all(nodes.Getattr):
        assert isinstance(node, nodes.Getattr)
        if isinstance(node.node, nodes.Name) and node.node.name == "steps":
            found.add(node.attr)
    for item in tree.find_all(nodes.Getitem):
        assert isinstance(item, nodes.Getitem)
        if (isinstance(item.node, nodes.Name) and item.node.name == "steps"
                and isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str)):
            found.add(item.arg.value)
    return found


def referenced_roots(text: str, expression: bool = False) -> set[str]:
    """Top-level names a template reads (to reject anything outside `ROOTS`)."""
    if not expression and not has_template(text):
        return set()
    tree = _parse(text.strip().removeprefix("{{").removesuffix("}}") if expression else text,
                  expression)
    names = list(tree.find_all(nodes.Name))
    stored = {n.name for n in names if n.ctx in ("store", "param")}
    return {n.name for n in names if n.ctx == "load"} - stored
