"""The runbook JSON Schema, generated from the models and every registered action's inputs.

Editors that read the `yaml-language-server` comment complete step keys and, per `uses`, the
keys of `with:` with their types. A `with:` value may always be a template instead (`{{ ... }}`),
rendered and type-checked at run time.
"""

from __future__ import annotations

import json
from typing import Any

from firelane.registry import ActionSpec, registered_actions
from firelane.runbook import Runbook

__all__ = ["SCHEMA_FILE", "render_schema", "runbook_schema"]

SCHEMA_FILE = "runbook.schema.json"

BUNDLED = ("firelane.", "integrations.")

TEMPLATE = {"type": "string", "pattern": r"\{\{|\{%",
            "description": "A Jinja template, rendered when the step runs"}


def _actions(bundled_only: bool) -> dict[str, ActionSpec]:
    return {n: s for n, s in registered_actions().items()
            if not bundled_only or s.fn.__module__.startswith(BUNDLED)}


def _action_rule(spec: ActionSpec, defs: dict[str, Any]) -> dict[str, Any]:
    name = spec.name
    schema = spec.inputs.model_json_schema(by_alias=True,
                                           ref_template=f"#/$defs/{name}.{{model}}")
    for key, sub in schema.pop("$defs", {}).items():
        defs[f"{name}.{key}"] = sub
    supplied = spec.catalog_fields()
    with_schema: dict[str, Any] = {
        "type": "object",
        "description": spec.summary,
        "properties": {k: {"anyOf": [v, TEMPLATE], **({"description": v["description"]}
                                                     if "description" in v else {})}
                       for k, v in schema.get("properties", {}).items()},
    }
    if spec.inputs.model_config.get("extra") == "forbid":
        with_schema["additionalProperties"] = False
    required = [r for r in schema.get("required", []) if r not in supplied]
    then: dict[str, Any] = {"properties": {"with": with_schema}}
    if required:
        with_schema["required"] = required
        then["required"] = ["with"]
    return {"if": {"properties": {"uses": {"const": name}}, "required": ["uses"]},
            "then": then}


def runbook_schema(bundled_only: bool = False) -> dict[str, Any]:
    """The schema as a dict: every registered action, or only Firelane's own."""
    schema = Runbook.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    step = defs["Step"]
    actions = _actions(bundled_only)
    step["properties"]["uses"] = {"type": "string", "enum": list(actions),
                                  "description": "The action: <integration>.<verb_noun>"}
    step["allOf"] = [_action_rule(spec, defs) for spec in actions.values()]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://firelane.dev/runbook.schema.json",
            "title": "Firelane runbook", **schema}


def render_schema(bundled_only: bool = False) -> str:
    """The schema as the text written to `runbooks/runbook.schema.json`."""
    return json.dumps(runbook_schema(bundled_only), indent=2, sort_keys=True) + "\n"
