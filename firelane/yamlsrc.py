"""YAML loading that remembers where every value came from.

Runbooks and the service catalog are written by people under pressure; errors must name the file
and line. `load_yaml` returns the plain data plus a map from path tuples (`("steps", 3, "with")`)
to 1-based line numbers. Size is bounded before parsing and aliases are refused, so a hostile or
accidental "billion laughs" file fails fast instead of eating memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from firelane.errors import Problem

__all__ = [
    "MAX_YAML_BYTES",
    "Located",
    "YamlSourceError",
    "format_path",
    "load_yaml",
    "pydantic_problems",
]

MAX_YAML_BYTES = 1_000_000

PathKey = tuple[str | int, ...]


@dataclass
class Located:
    """Parsed YAML data and the line of every path in it."""

    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    file: str = "<string>"

    def line_of(self, path: PathKey) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return None

    def problem(self, path: PathKey, message: str) -> Problem:
        """A `Problem` at `path` in this file."""
        return Problem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: PathKey) -> str:
    """`("steps", 3, "with", "channel")` → `steps[3].with.channel`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class YamlSourceError(ValueError):
    """Unreadable YAML, with the file and (when known) the line."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.problem = Problem(file, line, "", message)
        super().__init__(str(self.problem))


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(
                "while composing", None,
                "aliases (*name) are not allowed in Firelane files; repeat the value instead",
                event.start_mark)
        return super().compose_node(parent, index)


def _walk(node: Node, path: PathKey, lines: dict[PathKey, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else str(key_node.value)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def load_yaml(text: str, file: str = "<string>") -> Located:
    """Parse `text`; raise `YamlSourceError` on syntax errors, aliases or huge input."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise YamlSourceError(file, None, f"larger than {MAX_YAML_BYTES} bytes; split it up")
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSourceError(file, mark.line + 1 if mark is not None else None,
                              f"invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise YamlSourceError(file, None, f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    lines: dict[PathKey, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return Located(data=data, lines=lines, file=file)


def pydantic_problems(located: Located, errors: list[dict[str, Any]],
                      prefix: PathKey = ()) -> list[Problem]:
    """Turn pydantic `ValidationError.errors()` into located problems."""
    problems = []
    for err in errors:
        loc: PathKey = (*prefix, *(p for p in err["loc"] if isinstance(p, str | int)))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append(located.problem(loc, msg))
    return problems
