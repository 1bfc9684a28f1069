"""The runbooks and service catalog a long-running process serves, reloaded file by file.

A runbook or catalog that fails validation is refused, never served, and never stops what
already serves: a runbook file keeps its last good version (a new file that was never valid
is simply not served), the catalog keeps its last good version (an empty one if it was never
valid in this process). One bad merge must never stop paging, so a process starts with every
valid runbook even when some are not, and says loudly which ones it refused.

`changed()` compares each file's (modification time, size) with the last look, so a caller can
poll cheaply and `reload()` only when something moved; `reload()` re-reads only the files whose
signature changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firelane.catalog import Catalog, load_catalog, serve_catalog
from firelane.errors import FirelaneError
from firelane.loader import load_runbook
from firelane.runbook import LoadedRunbook

__all__ = ["Library", "Refusal"]

log = logging.getLogger("firelane.library")

Signature = tuple[int, int]


@dataclass(frozen=True)
class Refusal:
    """A file that failed validation: which (`kind` runbook or catalog), why, and whether a
    last good version of it keeps serving."""

    kind: str
    path: str
    reason: str
    kept_last_good: bool

    def message(self) -> str:
        """One paragraph for a log line or a Slack notice."""
        kept = ("its last good version keeps serving" if self.kept_last_good
                else "it is not served" if self.kind == "runbook"
                else "an empty catalog serves until it is fixed")
        return f"{self.kind} {self.path} refused ({kept}): {self.reason}"


def _signature(path: Path) -> Signature | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class Library:
    """Runbooks from `runbooks_dir` and the catalog at `catalog_path`, as last validated.

    Args:
        runbooks_dir: every `*.yaml` / `*.yml` in it is a runbook.
        catalog_path: the service catalog (missing means empty).

    Example:
        >>> library = Library(Path("runbooks"), Path("services.yaml"))
        >>> [r.runbook.name for r in library.runbooks]
        ['declare-incident', ...]
    """

    def __init__(self, runbooks_dir: Path, catalog_path: Path | None) -> None:
        self.runbooks_dir, self.catalog_path = runbooks_dir, catalog_path
        self._listeners: list[Callable[[Refusal], None]] = []
        self._good: dict[Path, tuple[Signature, LoadedRunbook]] = {}
        self._bad: dict[Path, tuple[Signature, Refusal]] = {}
        self._catalog: Catalog = Catalog()
        self._catalog_seen: tuple[Signature | None] | None = None
        self._catalog_refusal: Refusal | None = None
        self._catalog_valid = False
        self._lock = threading.Lock()
        self._runbooks: list[LoadedRunbook] = []
        self.reload()

    @property
    def runbooks(self) -> list[LoadedRunbook]:
        """The runbooks in force (replaced whole by a reload)."""
        return self._runbooks

    @property
    def catalog(self) -> Catalog:
        """The catalog in force."""
        return self._catalog

    @property
    def refused(self) -> list[Refusal]:
        """Every file refused now (its current content failed validation)."""
        with self._lock:
            out = [refusal for _, refusal in self._bad.values()]
            return out + ([self._catalog_refusal] if self._catalog_refusal else [])

    def on_refused(self, listener: Callable[[Refusal], None]) -> None:
        """Call `listener` with each refusal a later reload finds (a metric, a Slack notice);
        what it raises is logged, never let into the reload."""
        self._listeners.append(listener)

    def _files(self) -> dict[Path, Signature]:
        found = {}
        for path in sorted([*self.runbooks_dir.glob("*.yaml"), *self.runbooks_dir.glob("*.yml")]):
            signature = _signature(path)
            if signature is not None:
                found[path] = signature
        return found

    def changed(self) -> bool:
        """Whether any runbook or the catalog differs from the last reload (cheap: stat only)."""
        files = self._files()
        catalog = _signature(self.catalog_path) if self.catalog_path else None
        with self._lock:
            known = {p: s for p, (s, _) in self._good.items()}
            known.update({p: s for p, (s, _) in self._bad.items()})
            return files != known or (catalog,) != self._catalog_seen

    def reload(self) -> list[Refusal]:
        """Re-read what changed; the new refusals (the old set keeps serving for them)."""
        with self._lock:
            refusals = self._reload_runbooks()
            catalog = self._reload_catalog()
            if catalog is not None:
                refusals.append(catalog)
        for refusal in refusals:
            log.error("%s", refusal.message())
            for listener in self._listeners:
                try:
                    listener(refusal)
                except Exception as exc:
                    log.error("could not report the refusal of %s: %s: %s", refusal.path,
                              type(exc).__name__, exc)
        return refusals

    def _reload_runbooks(self) -> list[Refusal]:
        files = self._files()
        refusals: list[Refusal] = []
        for gone in sorted(set(self._good) - set(files)):
            log.info("runbook %s removed; no longer served", gone)
            del self._good[gone]
        for gone in set(self._bad) - set(files):
            del self._bad[gone]
        for path, signature in files.items():
            if self._good.get(path, ((-1, -1), None))[0] == signature \
                    or self._bad.get(path, ((-1, -1), None))[0] == signature:
                continue
            try:
                loaded = load_runbook(path)
            except FirelaneError as exc:
                refusal = Refusal("runbook", str(path), str(exc), path in self._good)
                self._bad[path] = (signature, refusal)
                refusals.append(refusal)
                continue
            if path in self._good or path in self._bad:
                log.info("runbook %s reloaded (%s)", path, loaded.runbook.name)
            self._bad.pop(path, None)
            self._good[path] = (signature, loaded)
        self._runbooks = [self._good[path][1] for path in sorted(self._good)]
        return refusals

    def _reload_catalog(self) -> Refusal | None:
        signature = _signature(self.catalog_path) if self.catalog_path else None
        if (signature,) == self._catalog_seen:
            return None
        self._catalog_seen = (signature,)
        try:
            catalog = load_catalog(self.catalog_path)
        except FirelaneError as exc:
            self._catalog_refusal = Refusal("catalog", str(self.catalog_path), str(exc),
                                            self._catalog_valid)
            serve_catalog(self.catalog_path, self._catalog)
            return self._catalog_refusal
        self._catalog, self._catalog_refusal, self._catalog_valid = catalog, None, True
        serve_catalog(self.catalog_path, catalog)
        return None
