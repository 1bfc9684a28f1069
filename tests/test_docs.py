"""The documentation: generated reference pages are current, the README stays short and its
links resolve, and mkdocs.yml builds every page offline and strictly (`make docs` builds it)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("firelane_reference",
                                                  ROOT / "scripts" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


REFERENCE = _reference()


@pytest.mark.parametrize("page", sorted(REFERENCE.PAGES))
def test_generated_page_is_current(page: str) -> None:
    on_disk = (DOCS / page).read_text(encoding="utf-8") if (DOCS / page).exists() else ""
    assert on_disk == REFERENCE.PAGES[page](), \
        f"docs/{page} is stale: run `make docs-reference` (python scripts/reference.py)"


def test_check_mode_agrees() -> None:
    assert REFERENCE.stale_pages() == []
    assert REFERENCE.main(["--check"]) == 0


def test_generated_pages_cover_the_registry_and_the_parser() -> None:
    import integrations  # noqa: F401  (registers the bundled actions)
    from firelane.registry import registered_actions
    from flows.cli import _parser

    actions = (DOCS / "reference/actions.md").read_text(encoding="utf-8")
    for name, spec in registered_actions().items():
        if spec.fn.__module__.startswith("tests."):
            continue
        assert f"\n## {name}\n" in actions, name
    cli = (DOCS / "reference/cli.md").read_text(encoding="utf-8")
    commands = re.findall(r"\{([a-z,-]+)\}", _parser().format_usage())[0].split(",")
    for command in commands:
        assert f"\n## firelane {command}\n" in cli, command


def test_the_readme_is_short_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert links, "the README links into docs/"
    for link in links:
        if "://" not in link:
            assert (ROOT / link).exists(), link


def _nav_files(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [f for item in node for f in _nav_files(item)]
    if isinstance(node, dict):
        return [f for value in node.values() for f in _nav_files(value)]
    return []


def test_mkdocs_nav_covers_every_page_and_builds_offline_and_strict() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_files(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
    assert config["strict"] is True and config["theme"]["font"] is False
    assert all(level == "warn" for level in config["validation"].values())
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "mkdocs build --strict -d build/site" in makefile
    assert re.search(r"^test: .*\bdocs\b", makefile, flags=re.M)
