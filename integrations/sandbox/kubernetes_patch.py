"""The three patch formats the Kubernetes stand-in accepts, as the API server applies them.

- `application/strategic-merge-patch+json` (what the official client sends for a dict body):
  maps merge, `null` deletes a key, lists of objects with a `name` (containers, env, ports)
  merge by name, other lists are replaced;
- `application/merge-patch+json` (RFC 7386): maps merge, `null` deletes, lists are replaced;
- `application/json-patch+json` (RFC 6902, what the client sends for a list body, and what
  `kubectl rollout undo` sends): `add`, `remove`, `replace`, `test`.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PatchError", "apply_patch"]

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class PatchError(ValueError):
    """The patch cannot be applied (the API server answers 422 or 415)."""

    def __init__(self, message: str, status: int = 422) -> None:
        self.status = status
        super().__init__(message)


def apply_patch(target: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """A new object: `target` with `patch` applied according to `content_type`."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON_PATCH:
        if not isinstance(patch, list):
            raise PatchError("json patch must be a list of operations", 400)
        return _json_patch(copy.deepcopy(target), patch)
    if not isinstance(patch, dict):
        raise PatchError("patch body must be a JSON object", 400)
    if kind == STRATEGIC:
        return _merge(copy.deepcopy(target), patch, strategic=True)
    if kind == MERGE:
        return _merge(copy.deepcopy(target), patch, strategic=False)
    raise PatchError(f"the body of the request was in an unknown format - accepted media "
                     f"types include: {JSON_PATCH}, {MERGE}, {STRATEGIC}", 415)


def _merge(target: dict[str, Any], patch: dict[str, Any], strategic: bool) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = _merge(target[key], value, strategic)
        elif strategic and isinstance(value, list) and isinstance(target.get(key), list) \
                and _named(value) and _named(target[key]):
            target[key] = _merge_by_name(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _merge_by_name(current: list[dict[str, Any]],
                   patch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [copy.deepcopy(i) for i in current]
    for item in patch:
        found = next((o for o in out if o["name"] == item["name"]), None)
        if found is None:
            out.append(copy.deepcopy(item))
        else:
            _merge(found, item, strategic=True)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"doc is missing path: {path}")
    return node


def _json_patch(doc: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("each json patch operation needs op and path", 400)
        name, path = op["op"], op["path"]
        parts = _pointer(path)
        if not parts:
            raise PatchError("json patch on the whole object is not supported")
        parent, last = _parent(doc, parts, path), parts[-1]
        if name == "test":
            current = parent.get(last) if isinstance(parent, dict) else (
                parent[int(last)] if last.isdigit() and int(last) < len(parent) else None)
            if current != op.get("value"):
                raise PatchError(f"testing value {path} failed")
        elif name in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if name == "add":
                    parent.insert(index, copy.deepcopy(op.get("value")))
                else:
                    parent[index] = copy.deepcopy(op.get("value"))
            else:
                if name == "replace" and last not in parent:
                    raise PatchError(f"replace operation does not apply: doc is missing key: "
                                     f"{path}")
                parent[last] = copy.deepcopy(op.get("value"))
        elif name == "remove":
            try:
                del parent[int(last) if isinstance(parent, list) else last]
            except (KeyError, IndexError, ValueError) as exc:
                raise PatchError(f"remove operation does not apply: doc is missing path: "
                                 f"{path}") from exc
        else:
            raise PatchError(f"unsupported json patch operation {name!r}", 400)
    return doc
