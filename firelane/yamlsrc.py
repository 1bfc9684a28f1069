"""YAML loading that remembers where every value came from.

Runbooks and the service catalog are written by people under pressure; errors must name the file
and line. `load_yaml` returns the plain data plus a map from path tuples (`("steps", 3, "with")`)
to 1-based line numbers. Size is bounded before parsing and aliases are refused, so a hostile or
accidental "billion laughs" file fails fast instead of eating memory.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from firelane.errors import Problem

__all__ = [
    "MAX_DEPTH",
    "MAX_YAML_BYTES",
    "Located",
    "YamlSourceError",
    "format_path",
    "load_yaml",
    "schema_problems",
    "unknown_key_message",
]

MAX_YAML_BYTES = 1_000_000
MAX_DEPTH = 64

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


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _line(mark: Any) -> int | None:
    return int(mark.line) + 1 if mark is not None else None


def _may_be_hazardous(text: str) -> bool:
    """Cheap string test: no '*' means no alias; few brackets and shallow indentation mean
    nesting cannot pass MAX_DEPTH. Only texts that fail it pay for the event pass."""
    if "*" in text or text.count("[") + text.count("{") > MAX_DEPTH:
        return True
    return any(len(line) - len(line.lstrip(" ")) >= MAX_DEPTH for line in text.splitlines())


def _screen(text: str, file: str) -> None:
    """One streaming pass over the events (no tree, no recursion) before anything is built:
    refuse aliases, which make alias bombs possible, and nesting deeper than MAX_DEPTH."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise YamlSourceError(file, _line(event.start_mark), "aliases (*name) are not "
                                  "allowed in Firelane files; repeat the value instead")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlSourceError(file, _line(event.start_mark),
                                      f"nested more than {MAX_DEPTH} levels deep; flatten it")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


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
    loader = _Loader(text)
    try:
        if _may_be_hazardous(text):
            _screen(text, file)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        lines: dict[PathKey, int] = {}
        if node is not None:
            _walk(node, (), lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSourceError(file, mark.line + 1 if mark is not None else None,
                              f"invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise YamlSourceError(file, None, f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return Located(data=data, lines=lines, file=file)


def _unwrap(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _keys_at(model: type[BaseModel], path: PathKey) -> list[str] | None:
    current: Any = model
    for part in path:
        current = _unwrap(current)
        origin = get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            fields = {(f.alias or n): f for n, f in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        elif origin is list and isinstance(part, int):
            current = get_args(current)[0]
        elif origin is dict and isinstance(part, str):
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted((f.alias or n) for n, f in current.model_fields.items())
    return None


def unknown_key_message(key: str, allowed: list[str] | None) -> str:
    """"unknown key 'retires'; did you mean 'retries'?" (or the list of allowed keys)."""
    if not allowed:
        return f"unknown key {key!r}; remove it"
    near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if near:
        return f"unknown key {key!r}; did you mean {near[0]!r}?"
    return f"unknown key {key!r}; allowed here: {', '.join(allowed)}"


def schema_problems(located: Located, model: type[BaseModel], errors: list[Any],
                    prefix: PathKey = ()) -> list[Problem]:
    """Pydantic errors as located problems, with "did you mean" for unknown keys. A required
    key that is missing because it was misspelt is one problem (the unknown key's), not two."""
    out: list[Problem] = []
    meant: set[PathKey] = set()
    for err in errors:
        extra: PathKey = tuple(p for p in err["loc"] if isinstance(p, str | int))
        if err["type"] == "extra_forbidden" and extra:
            near = difflib.get_close_matches(str(extra[-1]), _keys_at(model, extra[:-1]) or [],
                                             n=1, cutoff=0.6)
            meant |= {(*extra[:-1], n) for n in near}
    for err in errors:
        loc: PathKey = tuple(p for p in err["loc"] if isinstance(p, str | int))
        where = (*prefix, *loc)
        if err["type"] == "missing" and loc in meant:
            continue
        if err["type"] == "extra_forbidden" and loc:
            msg = unknown_key_message(str(loc[-1]), _keys_at(model, loc[:-1]))
        elif err["type"] == "missing" and loc:
            msg = f"required key {loc[-1]!r} is missing"
        elif err["type"] == "value_error":
            msg = str(err["msg"]).removeprefix("Value error, ")
        else:
            msg = err["msg"]
        out.append(located.problem(where, msg))
    return out
