"""Check recorded sandbox exchanges against the vendors' published API descriptions.

Reads `../shared/specs/` where it is (never copied into the project). Each vendor path is mapped
to its spec: Jira v2 → v3 (ADF-typed `description`/`body` skipped), PagerDuty Events and REST,
Slack's Swagger 2.0 file (methods answer POST, so the path alone picks the operation; the three
methods missing from it are checked against the java-slack-sdk sample shapes), Zoom's OAS3.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jsonschema
import yaml

SPECS = Path(__file__).resolve().parent.parent.parent / "shared" / "specs"
ADF = frozenset({"description", "body", "environment"})


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _nullable(v) for k, v in node.items()}
        if out.pop("nullable", False) and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


@dataclass
class Spec:
    """One API description, with its operations indexed by path template."""

    doc: dict[str, Any]
    swagger2: bool
    ops: list[tuple[re.Pattern[str], str, str, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def load(cls, relative: str) -> Spec:
        path = SPECS / relative
        text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        spec = cls(_nullable(doc), "swagger" in doc)
        for template, item in doc["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(template)
                                              .replace(r"\{", "{").replace(r"\}", "}")) + "$")
            for method, op in item.items():
                if method in ("get", "post", "put", "delete", "patch"):
                    spec.ops.append((pattern, method.upper(), template, op))
        return spec

    def find(self, method: str, path: str, any_method: bool = False,
             ) -> tuple[str, dict[str, Any]] | None:
        hits = [(t, op) for pat, m, t, op in self.ops if pat.match(path)
                and (any_method or m == method)]
        exact = [h for h in hits if "{" not in h[0]]
        best = exact or hits
        return best[0] if best else None

    def errors(self, schema: dict[str, Any], instance: Any) -> list[str]:
        root = {**schema, "components": self.doc.get("components", {}),
                "definitions": self.doc.get("definitions", {})}
        validator = jsonschema.Draft4Validator(root)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:160]}"
                for e in validator.iter_errors(instance)]


@cache
def spec(relative: str) -> Spec:
    """A spec, loaded once."""
    return Spec.load(relative)


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if k not in ADF}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


@dataclass
class Verdict:
    """The check of one exchange."""

    vendor: str
    operation: str | None
    problems: list[str]


def _route(ex: dict[str, Any]) -> tuple[str, Spec | None, str, bool]:
    path = ex["path"]
    if path.startswith("/jira/rest/api/2/"):
        return "jira", spec("jira/platform-swagger-v3.v3.json"), \
            path.replace("/jira/rest/api/2/", "/rest/api/3/"), False
    if path.startswith("/pagerduty/v2/"):
        return "pagerduty", spec("pagerduty/events_v2_openapiv3.json"), \
            path.removeprefix("/pagerduty/v2"), False
    if path.startswith("/pagerduty/"):
        return "pagerduty", spec("pagerduty/rest_openapiv3.json"), \
            path.removeprefix("/pagerduty"), False
    if path.startswith("/slack/api/"):
        return "slack", spec("slack/slack_web_openapi_v2.json"), \
            path.removeprefix("/slack/api"), True
    if path.startswith("/zoom/v2/"):
        return "zoom", spec("zoom/ballerina_zoom_openapi.yaml"), path.removeprefix("/zoom/v2"), \
            False
    return path.split("/")[1] if path.count("/") > 1 else "other", None, path, False


def _response_schema(sp: Spec, op: dict[str, Any], status: int) -> dict[str, Any] | None:
    responses = op.get("responses", {})
    entry = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or \
        responses.get("default")
    if entry is None:
        return None
    if "$ref" in entry:
        entry = sp.doc["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
    if sp.swagger2:
        schema: dict[str, Any] | None = entry.get("schema")
        return schema
    content = entry.get("content", {})
    media = next((v for k, v in content.items() if "json" in k), None)
    return media.get("schema") if media else None


def _slack_sample(method: str, body: Any) -> list[str]:
    sample_path = SPECS / "slack" / "java-slack-sdk-samples" / f"{method}.json"
    if not sample_path.exists():
        return [f"no spec operation and no sample for {method}"]
    sample = json.loads(sample_path.read_text())

    def compare(ours: Any, theirs: Any, where: str) -> list[str]:
        if isinstance(ours, dict) and isinstance(theirs, dict):
            out = [f"{where}.{k}: not in Slack's sample" for k in ours if k not in theirs]
            return out + [p for k in ours if k in theirs
                          for p in compare(ours[k], theirs[k], f"{where}.{k}")]
        if theirs is None or ours is None or isinstance(theirs, list):
            return []
        kinds = {bool: "bool", int: "number", float: "number", str: "str", dict: "object"}
        ok = kinds.get(type(ours)) == kinds.get(type(theirs)) or (
            isinstance(ours, int | float) and isinstance(theirs, int | float))
        return [] if ok else [f"{where}: {type(ours).__name__} where Slack has "
                              f"{type(theirs).__name__}"]

    return compare(body, sample, method)


def check(ex: dict[str, Any]) -> Verdict:
    """Validate one recorded exchange against its vendor's description."""
    vendor, sp, path, any_method = _route(ex)
    if sp is None:
        return Verdict(vendor, None, [])
    found = sp.find(ex["method"], path, any_method)
    response = _json(ex["response_body"])
    if found is None:
        if vendor == "slack":
            return Verdict(vendor, f"sample:{path[1:]}", _slack_sample(path[1:], response))
        return Verdict(vendor, None, [])
    template, op = found
    problems: list[str] = []
    request = _json(ex["request_body"])
    if sp.swagger2:
        form = {k: v[-1] for k, v in parse_qs(ex["request_body"].decode("utf-8",
                                                                          "replace")).items()}
        given = {**form, **(request if isinstance(request, dict) else {}),
                 **{k: v[-1] for k, v in parse_qs(ex["query"]).items()}}
        for param in op.get("parameters", []):
            if param.get("required") and param.get("in") in ("formData", "query") \
                    and param["name"] != "token" and param["name"] not in given:
                problems.append(f"request: required parameter {param['name']!r} missing")
    elif request is not None and "requestBody" in op:
        content = op["requestBody"].get("content", {})
        media = next((v for k, v in content.items() if "json" in k), None)
        if media and "schema" in media:
            problems += [f"request {p}" for p in sp.errors(media["schema"], _prune(request))]
    schema = _response_schema(sp, op, int(ex["status"]))
    if schema is not None and response is not None:
        problems += [f"response {p}" for p in sp.errors(schema, _prune(response))]
    return Verdict(vendor, f"{ex['method']} {template}", problems)
