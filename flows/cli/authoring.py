"""Authoring commands: `validate`, `lint`, `schema`, `actions`. None of them touches Prefect."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from firelane.errors import FirelaneError
from firelane.lint import lint_runbook
from firelane.loader import load_runbook
from firelane.registry import ActionSpec, get_action, registered_actions
from firelane.runbook import LoadedRunbook
from firelane.schema import SCHEMA_FILE, render_schema
from firelane.settings import Settings

__all__ = ["add_authoring_commands", "summary_of", "type_text"]


def _files(paths: list[str], settings: Settings) -> list[Path]:
    roots = [Path(p) for p in paths] or [settings.runbooks_dir]
    return [f for p in roots for f in (sorted(p.glob("*.y*ml")) if p.is_dir() else [p])]


def _load_all(files: list[Path]) -> tuple[list[LoadedRunbook], int]:
    loaded, failed = [], 0
    for path in files:
        try:
            loaded.append(load_runbook(path))
        except FirelaneError as exc:
            failed += 1
            print(str(exc), file=sys.stderr)
    return loaded, failed


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    files = _files(args.paths, settings)
    loaded, failed = _load_all(files)
    for rb in loaded:
        print(f"ok  {rb.path}")
        for warning in rb.warnings:
            print(str(warning), file=sys.stderr)
    warned = sum(len(rb.warnings) for rb in loaded)
    print(f"{len(loaded)} valid, {failed} invalid" + (f", {warned} warnings" if warned else ""))
    if not files:
        print("no runbooks found", file=sys.stderr)
    return 1 if failed or not files else 0


def cmd_lint(args: argparse.Namespace, settings: Settings) -> int:
    loaded, failed = _load_all(_files(args.paths, settings))
    hints = warnings = 0
    for rb in loaded:
        for problem in [*rb.warnings, *lint_runbook(rb)]:
            if problem.message.startswith("warning:"):
                warnings += 1
            else:
                hints += 1
            print(str(problem))
    print(f"{warnings} warning{'s' * (warnings != 1)}, {hints} hint{'s' * (hints != 1)}, "
          f"{failed} invalid")
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    target = Path(args.output) if args.output else settings.runbooks_dir / SCHEMA_FILE
    text = render_schema()
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is stale: run `firelane schema`", file=sys.stderr)
            return 1
        print(f"{target} is current")
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({len(registered_actions())} actions)")
    return 0


def type_text(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A JSON Schema type as a reader says it: `string or null`, `array of integer`, `one of
    'a', 'b'`, `any`."""
    if "$ref" in prop:
        target = defs.get(str(prop["$ref"]).rsplit("/", 1)[-1], {})
        return type_text(target, defs) if "enum" in target or "anyOf" in target \
            else str(target.get("title") or "object")
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " or ".join(dict.fromkeys(type_text(p, defs) for p in prop[key]))
    if "enum" in prop:
        return "one of " + ", ".join(repr(v) for v in prop["enum"])
    if "const" in prop:
        return repr(prop["const"])
    kind = prop.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array" and isinstance(prop.get("items"), dict) and prop["items"]:
        return f"array of {type_text(prop['items'], defs)}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict) \
            and prop["additionalProperties"]:
        return f"object of {type_text(prop['additionalProperties'], defs)}"
    return str(kind) if kind else "any"


def summary_of(doc: str) -> str:
    """The first sentence of a docstring, whole (the first line may stop mid-sentence)."""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    end = next((i + 1 for i, c in enumerate(paragraph)
                if c == "." and (i + 1 == len(paragraph) or paragraph[i + 1] == " ")), None)
    return paragraph[:end] if end else paragraph


def _describe(spec: ActionSpec) -> dict[str, Any]:
    def fields(model: Any) -> dict[str, Any]:
        schema = model.model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        defs = schema.get("$defs", {})
        return {name: {"type": type_text(prop, defs),
                       "required": name in required, "default": prop.get("default"),
                       "description": prop.get("description", ""), "schema": prop}
                for name, prop in schema.get("properties", {}).items()}

    return {"name": spec.name, "destructive": spec.destructive, "read_only": spec.read_only,
            "doc": spec.doc, "summary": summary_of(spec.doc), "inputs": fields(spec.inputs),
            "outputs": fields(spec.outputs), "from_catalog": spec.catalog_fields()}


def _field_line(key: str, f: dict[str, Any], need: str) -> str:
    described = f"  {f['description']}" if f["description"] else ""
    return f"  {key}: {f['type']}{need}{described}"


def cmd_actions(args: argparse.Namespace, settings: Settings) -> int:
    specs = [get_action(args.name)] if args.name else list(registered_actions().values())
    described = [_describe(s) for s in specs]
    if args.json:
        print(json.dumps(described, indent=2, default=str))
        return 0
    for d in described:
        flag = "  DESTRUCTIVE (dry_run, approval)" if d["destructive"] else \
            "  READ-ONLY (runs in dry runs, no guardrail)" if d["read_only"] else ""
        if not args.name:
            print(textwrap.fill(f"{d['summary']}{flag}", width=100,
                                initial_indent=f"{d['name']:<28}", subsequent_indent=" " * 28,
                                break_long_words=False, break_on_hyphens=False))
            continue
        print(f"{d['name']}{flag}\n\n{d['doc']}\n\ninputs:")
        for key, f in d["inputs"].items():
            need = ", optional" if f["default"] is None else \
                f", default {json.dumps(f['default'])}"
            if key in d["from_catalog"]:
                need = f", default: the service catalog's {d['from_catalog'][key]}"
            elif f["required"]:
                need = ", required"
            print(_field_line(key, f, need))
        print("outputs:")
        for key, f in d["outputs"].items():
            print(_field_line(key, f, ""))
    return 0


def add_authoring_commands(sub: Any) -> None:
    """Register the authoring subcommands on the `firelane` parser."""
    val = sub.add_parser("validate", help="check runbooks (every problem, with file:line)")
    val.add_argument("paths", nargs="*", help="files or folders (default: the runbooks dir)")
    val.set_defaults(fn=cmd_validate)
    lint = sub.add_parser("lint", help="style hints beyond errors")
    lint.add_argument("paths", nargs="*", help="files or folders (default: the runbooks dir)")
    lint.set_defaults(fn=cmd_lint)
    schema = sub.add_parser("schema", help=f"write runbooks/{SCHEMA_FILE} for editors")
    schema.add_argument("--output", help="where to write it")
    schema.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    schema.set_defaults(fn=cmd_schema)
    actions = sub.add_parser("actions", help="list actions, or describe one")
    actions.add_argument("name", nargs="?", help="one action, e.g. slack.post_message "
                         "(default: list them all)")
    actions.add_argument("--json", action="store_true", help="machine-readable output")
    actions.set_defaults(fn=cmd_actions)
