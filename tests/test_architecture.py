"""The house rules of DESIGN.md, checked on the source with `ast`: imports only go down
(firelane → integrations → flows), the engine never imports Prefect, no import cycle among
project modules, only the CLI imports argparse, and `flows/` keeps its modules in subpackages."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("firelane", "integrations", "flows")
MAX_TOP_LEVEL_FLOWS_MODULES = 6


@dataclass(frozen=True)
class Import:
    """One imported module name, and whether the import sits at module level."""

    target: str
    module_level: bool
    line: int


def module_name(path: Path) -> str:
    """`flows/engine/steps.py` → `flows.engine.steps`; a package's `__init__` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    """Every project module by its dotted name."""
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _walk(node: ast.AST, module_level: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        nested = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield child, module_level
        yield from _walk(child, module_level and not nested)


def _type_checking_only(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports_of(source: str, module: str, is_package: bool) -> list[Import]:
    """Every module `source` imports (for `from a import b`, both `a` and `a.b`), at module
    level or inside functions; imports under `if TYPE_CHECKING:` do not run and are left out."""
    tree = ast.parse(source)
    skip = _type_checking_only(tree)
    found: list[Import] = []
    for node, top in _walk(tree, True):
        if getattr(node, "lineno", 0) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [Import(alias.name, top, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            found.append(Import(base, top, node.lineno))
            found += [Import(f"{base}.{alias.name}", top, node.lineno) for alias in node.names]
    return found


def _all_imports() -> dict[str, list[Import]]:
    return {name: imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
            for name, path in project_files().items()}


def _root(target: str) -> str:
    return target.split(".")[0]


def layer_violations(imports: dict[str, list[Import]]) -> list[str]:
    """`firelane` imports neither `integrations` nor `flows`; `integrations` never `flows`."""
    forbidden = {"firelane": {"integrations", "flows"}, "integrations": {"flows"}}
    return sorted({f"{module}:{imp.line} imports {imp.target}"
                   for module, found in imports.items() for imp in found
                   if _root(imp.target) in forbidden.get(_root(module), set())})


def engine_prefect_imports(imports: dict[str, list[Import]]) -> list[str]:
    """Imports of `prefect` anywhere under `flows.engine`, inside functions too."""
    return sorted({f"{module}:{imp.line} imports {imp.target}"
                   for module, found in imports.items()
                   if module == "flows.engine" or module.startswith("flows.engine.")
                   for imp in found if _root(imp.target) == "prefect"})


def argparse_outside_cli(imports: dict[str, list[Import]]) -> list[str]:
    """Modules outside `flows.cli` that import argparse."""
    return sorted({f"{module}:{imp.line}" for module, found in imports.items()
                   if module != "flows.cli" and not module.startswith("flows.cli.")
                   for imp in found if imp.target == "argparse"})


def module_graph(imports: dict[str, list[Import]]) -> dict[str, set[str]]:
    """Module-level imports among project modules (a package import counts as an import of its
    `__init__`)."""
    known = set(imports)
    return {module: {imp.target for imp in found if imp.module_level and imp.target in known
                     and imp.target != module}
            for module, found in imports.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as `[a, b, ..., a]`, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def top_level_flows_modules() -> list[str]:
    """The `.py` files directly in `flows/`, besides `__init__.py`."""
    return sorted(p.name for p in (ROOT / "flows").glob("*.py") if p.name != "__init__.py")


def test_imports_only_go_down() -> None:
    assert layer_violations(_all_imports()) == []


def test_the_engine_never_imports_prefect() -> None:
    assert engine_prefect_imports(_all_imports()) == []


def test_no_import_cycle_among_project_modules() -> None:
    cycle = find_cycle(module_graph(_all_imports()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_the_cli_imports_argparse() -> None:
    assert argparse_outside_cli(_all_imports()) == []


def test_flows_keeps_its_modules_in_subpackages() -> None:
    top = top_level_flows_modules()
    assert len(top) <= MAX_TOP_LEVEL_FLOWS_MODULES, top


@pytest.mark.parametrize(("module", "source", "check"), [
    ("firelane.models", "from flows.engine import RunContext\n", layer_violations),
    ("integrations.slack.actions", "import flows.cli\n", layer_violations),
    ("flows.engine.steps", "def f():\n    from prefect import flow\n",
     engine_prefect_imports),
    ("flows.runs.report", "import argparse\n", argparse_outside_cli),
])
def test_each_rule_catches_a_bad_import(module: str, source: str, check: object) -> None:
    imports = {module: imports_of(source, module, False)}
    assert callable(check) and check(imports) != []


def test_a_cycle_is_found_and_reported() -> None:
    imports = {"flows.a": imports_of("from flows import b\n", "flows.a", False),
               "flows.b": imports_of("from flows.a import x\n", "flows.b", False)}
    assert find_cycle(module_graph(imports)) == ["flows.a", "flows.b", "flows.a"]
    lazy = {"flows.a": imports_of("from flows import b\n", "flows.a", False),
            "flows.b": imports_of("def f():\n    from flows import a\n", "flows.b", False)}
    assert find_cycle(module_graph(lazy)) is None
