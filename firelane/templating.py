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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from firelane.errors import TemplateError

__all__ = [
    "CONDITION_FUNCTIONS",
    "ROOTS",
    "Refs",
    "analyze",
    "compile_condition",
    "evaluate_condition",
    "has_template",
    "referenced_names",
    "referenced_roots",
    "referenced_step_members",
    "referenced_steps",
    "render_value",
    "runs_always",
]

ROOTS = frozenset({"incident", "inputs", "steps", "run"})


def _always() -> bool:
    return True


CONDITION_FUNCTIONS: dict[str, Callable[[], bool]] = {"always": _always}
"""Functions an `if:` expression may call besides the roots. `always()` is true; a step whose
`if:` calls it also runs when a step it needs failed or was skipped (GitHub Actions'
`if: always()`), so `if: always() and steps.gate.status != 'failed'` reads as "after gate,
whatever it did, unless it failed"."""

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
    """Evaluate an `if:` expression to a bool (with `CONDITION_FUNCTIONS` in scope)."""
    fn = compile_condition(expr)
    scope = {**CONDITION_FUNCTIONS, **context}
    return bool(_run(lambda: _check_strict(fn(**scope), where), where))


@lru_cache(maxsize=4096)
def runs_always(expr: str | None) -> bool:
    """The `if:` expression calls `always()`: its step waits for the steps it needs to finish
    however they finished, instead of being skipped with them. False for an expression that
    does not parse (validation reports it)."""
    if expr is None or "always" not in expr:
        return False
    text = expr.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    try:
        tree = _ENV.parse("{{ " + text + " }}")
    except TemplateSyntaxError:
        return False
    return any(isinstance(call.node, nodes.Name) and call.node.name == "always"
               for call in tree.find_all(nodes.Call))


_SIMPLE = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
_SIMPLE_PATH = re.compile(r"^\s*[a-z_][a-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\s*$")


_LITERALS = frozenset({"true", "false", "none"})


@dataclass(frozen=True)
class Refs:
    """What a template reads: top-level names, `root.X` attributes per root, and the
    `steps.X.member[.name]` paths (member `outputs`, `status` or `error`; name is the output
    read, or "" when there is none)."""

    roots: frozenset[str]
    attrs: tuple[tuple[str, str], ...]
    members: tuple[tuple[str, str, str], ...] = ()

    def names(self, root: str) -> set[str]:
        """The X of every `root.X` / `root['X']`."""
        return {attr for r, attr in self.attrs if r == root}


def _member(parts: list[str]) -> tuple[str, str, str] | None:
    if len(parts) < 3 or parts[0] != "steps":
        return None
    return parts[1], parts[2], parts[3] if len(parts) > 3 and parts[2] == "outputs" else ""


def _simple_refs(paths: list[str]) -> Refs:
    roots: set[str] = set()
    attrs: list[tuple[str, str]] = []
    members: set[tuple[str, str, str]] = set()
    for path in paths:
        parts = path.strip().split(".")
        roots.add(parts[0])
        if len(parts) > 1:
            attrs.append((parts[0], parts[1]))
        member = _member(parts)
        if member is not None:
            members.add(member)
    return Refs(frozenset(roots), tuple(attrs), tuple(sorted(members)))


def _chain(node: nodes.Node) -> list[str] | None:
    """`steps.a.outputs['key']` as ["steps", "a", "outputs", "key"]; None for anything else
    than names, attributes and constant string subscripts."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Name):
            return [node.name, *reversed(parts)]
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
        elif (isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const)
              and isinstance(node.arg.value, str)):
            parts.append(node.arg.value)
        else:
            return None
        node = node.node


def _tree_refs(tree: nodes.Node) -> Refs:
    loaded: set[str] = set()
    stored: set[str] = set()
    attrs: list[tuple[str, str]] = []
    members: set[tuple[str, str, str]] = set()
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Name):
            (loaded if node.ctx == "load" else stored).add(node.name)
            continue
        chain = _chain(node)
        if chain is None:
            continue
        if len(chain) == 2:
            attrs.append((chain[0], chain[1]))
        member = _member(chain)
        if member is not None:
            members.add(member)
    return Refs(frozenset(loaded - stored), tuple(attrs), tuple(sorted(members)))


@lru_cache(maxsize=8192)
def analyze(text: str, expression: bool = False) -> Refs:
    """Parse a template (or an `if:` expression) once and say what it reads.

    Raises `TemplateError` on syntax errors. Plain dotted paths (`{{ steps.a.outputs.id }}`,
    by far the most common shape) are read without the Jinja parser.
    """
    if expression:
        text = text.strip()
        if text.startswith("{{") and text.endswith("}}"):
            text = text[2:-2]
        if _SIMPLE_PATH.match(text) and text.strip().split(".")[0] not in _LITERALS:
            return _simple_refs([text])
        source = "{{ " + text + " }}"
    else:
        if not has_template(text):
            return Refs(frozenset(), ())
        rest = _SIMPLE.sub("", text)
        paths = _SIMPLE.findall(text)
        if not has_template(rest) and "}}" not in rest and not any(
                p.split(".")[0] in _LITERALS for p in paths):
            return _simple_refs(paths)
        source = text
    try:
        return _tree_refs(_ENV.parse(source))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"line {exc.lineno}: {exc.message}") from exc


def referenced_steps(text: str, expression: bool = False) -> set[str]:
    """Step ids read through `steps.X` or `steps['X']` in a template (or an expression)."""
    return analyze(text, expression).names("steps")


def referenced_names(text: str, root: str, expression: bool = False) -> set[str]:
    """Names read through `root.X` or `root['X']` in a template (or an expression)."""
    return analyze(text, expression).names(root)


def referenced_step_members(text: str, expression: bool = False) -> set[tuple[str, str, str]]:
    """`(step, member, output)` for every `steps.X.member[.output]` a template reads."""
    return set(analyze(text, expression).members)


def referenced_roots(text: str, expression: bool = False) -> set[str]:
    """Top-level names a template reads (to reject anything outside `ROOTS`)."""
    return set(analyze(text, expression).roots)
