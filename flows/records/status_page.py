"""Firelane's own status page: static HTML, JSON and an Atom feed for the public.

`status_snapshot` reads what may be shown (never a private incident, an internal update or
one awaiting approval or rejected); `render_html`, `render_json` and `render_atom` render it;
`publish_folder` writes `index.html`, `status.json` and `feed.atom` to a folder any web server
or bucket can serve, each replaced atomically so a reader never gets half a file. The intake
serves the same renderings at `/status` (flows/intake/status.py).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from firelane.catalog import Catalog
from firelane.models import utcnow
from flows.records.status_page_render import (
    JSON_SCHEMA,
    content_tag,
    render_atom,
    render_html,
    render_json,
    snapshot_dict,
)
from flows.records.status_page_snapshot import (
    ComponentView,
    IncidentView,
    MaintenanceView,
    Snapshot,
    UpdateView,
    status_snapshot,
)

__all__ = ["FILES", "JSON_SCHEMA", "ComponentView", "IncidentView", "MaintenanceView",
           "Snapshot", "UpdateView", "content_tag", "publish_folder", "refresh_status_page",
           "render_atom", "render_html", "render_json", "snapshot_dict", "status_snapshot"]

FILES = ("index.html", "status.json", "feed.atom")
"""The files `publish_folder` writes, in the order it writes them."""


def _replace(path: Path, text: str) -> None:
    """Write beside the target, then rename over it: readers see the old file or the new."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def publish_folder(snapshot: Snapshot, folder: Path | str,
                   base_url: str | None = None) -> list[Path]:
    """Write `index.html`, `status.json` and `feed.atom` for `snapshot` into `folder` (made if
    missing); the feed links to `base_url`, else the page's `public_url`, else the folder.
    Returns the paths written.

    Example:
        >>> publish_folder(status_snapshot(store, catalog, utcnow()), "/var/www/status")
        [PosixPath('/var/www/status/index.html'), ...]
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    base = base_url or snapshot.public_url or target.resolve().as_uri()
    texts = {"index.html": render_html(snapshot), "status.json": render_json(snapshot),
             "feed.atom": render_atom(snapshot, base)}
    written = []
    for name in FILES:
        _replace(target / name, texts[name])
        written.append(target / name)
    return written


def refresh_status_page(store: Any, catalog: Catalog) -> None:
    """Rewrite the static status page in the catalog's `communications.status_page.folder`
    from the store as it is now; nothing when no folder is configured. Called when a public
    update is published."""
    folder = catalog.communications.status_page.folder
    if folder is None:
        return
    publish_folder(status_snapshot(store, catalog, utcnow()), folder)
