"""Reading runbooks: parse, validate (every problem at once), and find them by name."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from firelane.errors import FirelaneError, RunbookError, RunbookValidationError
from firelane.runbook import LoadedRunbook
from firelane.validation import validate_source

__all__ = ["find_runbook", "load_runbook", "load_valid_runbooks", "parse_runbook", "parse_snapshot"]


def parse_runbook(text: str, path: str = "<string>") -> LoadedRunbook:
    """Parse and check a runbook; raise `RunbookValidationError` listing every problem.

    Warnings (not errors) are kept on the result for `firelane validate` to print.
    """
    report = validate_source(text, path)
    if report.errors or report.runbook is None:
        raise RunbookValidationError(report.errors)
    return LoadedRunbook(runbook=report.runbook, source=text, path=path,
                         warnings=tuple(report.warnings))


@lru_cache(maxsize=256)
def parse_snapshot(text: str, path: str) -> LoadedRunbook:
    """`parse_runbook` cached by text and path: an execution's stored snapshot is parsed once
    per process, not once per step or per resume, and a runbook file once per content, not
    on every read of the folder (each stakeholder update reads it)."""
    return parse_runbook(text, path)


def load_runbook(path: Path) -> LoadedRunbook:
    """Read and parse the runbook file at `path` (an unchanged file is not parsed again)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunbookError(f"{path}: cannot read runbook: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise RunbookError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    return parse_snapshot(text, str(path))


def find_runbook(name_or_path: str, runbooks_dir: Path) -> Path:
    """A runbook file given its path, or its name inside `runbooks_dir`."""
    direct = Path(name_or_path)
    if direct.suffix in (".yaml", ".yml") or direct.exists():
        if not direct.exists():
            raise RunbookError(f"{direct}: no such runbook file")
        return direct
    for suffix in (".yaml", ".yml"):
        candidate = runbooks_dir / f"{name_or_path}{suffix}"
        if candidate.exists():
            return candidate
    for candidate in sorted(runbooks_dir.glob("*.y*ml")):
        try:
            if load_runbook(candidate).runbook.name == name_or_path:
                return candidate
        except FirelaneError:
            continue
    raise RunbookError(f"no runbook named {name_or_path!r} in {runbooks_dir}/ "
                       "(give a path, or set FIRELANE_RUNBOOKS_DIR)")


def load_valid_runbooks(folder: Path) -> tuple[list[LoadedRunbook], list[str]]:
    """Every runbook in `folder` that loads, and one line per file that does not (so one bad
    file never stops the others from being matched)."""
    loaded, problems = [], []
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        try:
            loaded.append(load_runbook(path))
        except FirelaneError as exc:
            problems.append(f"{path}: {str(exc).splitlines()[0]}")
    return loaded, problems
