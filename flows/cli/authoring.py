"""Authoring commands: `validate`, `lint`, `schema`, `actions`. None of them touches Prefect."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from firelane.errors import FirelaneError
from firelane.lint import lint_runbook
from firelane.loader import load_runbook
from firelane.registry import ActionSpec, get_action, registered_actions
from firelane.runbook import LoadedRunbook
from firelane.schema import SCHEMA_FILE, render_schema
from firelane.settings import Settings

__all__ = ["add_authoring_commands"]


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
    count = 0
    for rb in loaded:
        for problem in [*rb.warnings, *lint_runbook(rb)]:
            count += 1
            print(str(problem))
    print(f"{count} hints, {failed} invalid")
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


def _describe(spec: ActionSpec) -> dict[str, Any]:
    def fields(model: Any) -> dict[str, Any]:
        schema = model.model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        return {name: {"type": prop.get("type") or prop.get("anyOf") or prop.get("$ref"),
                       "required": name in required, "default": prop.get("default"),
                       "description": prop.get("description", "")}
                for name, prop in schema.get("properties", {}).items()}

    return {"name": spec.name, "destructive": spec.destructive, "read_only": spec.read_only,
            "doc": spec.doc,
            "inputs": fields(spec.inputs), "outputs": fields(spec.outputs),
            "from_catalog": spec.catalog_fields()}


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
            print(f"{d['name']:<28}{d['doc'].splitlines()[0]}{flag}")
            continue
        print(f"{d['name']}{flag}\n\n{d['doc']}\n\ninputs:")
        for key, f in d["inputs"].items():
            need = "required" if f["required"] else f"default {f['default']!r}"
            supplied = " (service catalog: " + d["from_catalog"][key] + ")" \
                if key in d["from_catalog"] else ""
            print(f"  {key}: {f['type']}, {need}{supplied}  {f['description']}")
        print("outputs:")
        for key, f in d["outputs"].items():
            print(f"  {key}: {f['type']}  {f['description']}")
    return 0


def add_authoring_commands(sub: Any) -> None:
    """Register the authoring subcommands on the `firelane` parser."""
    val = sub.add_parser("validate", help="check runbooks (every problem, with file:line)")
    val.add_argument("paths", nargs="*", help="files or folders (default: the runbooks dir)")
    val.set_defaults(fn=cmd_validate)
    lint = sub.add_parser("lint", help="style hints beyond errors")
    lint.add_argument("paths", nargs="*")
    lint.set_defaults(fn=cmd_lint)
    schema = sub.add_parser("schema", help=f"write runbooks/{SCHEMA_FILE} for editors")
    schema.add_argument("--output", help="where to write it")
    schema.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    schema.set_defaults(fn=cmd_schema)
    actions = sub.add_parser("actions", help="list actions, or describe one")
    actions.add_argument("name", nargs="?")
    actions.add_argument("--json", action="store_true")
    actions.set_defaults(fn=cmd_actions)
