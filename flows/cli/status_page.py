"""`firelane status-page publish`: write the static status page now (index.html, status.json,
feed.atom) to the catalog's folder or `--folder`. Runs after every published public update
anyway; this is for the first publish, a new template, or a page rebuilt elsewhere."""

from __future__ import annotations

import argparse
from typing import Any

from firelane.catalog import load_catalog
from firelane.errors import ConfigError
from firelane.models import utcnow
from firelane.settings import Settings
from firelane.store import open_store

__all__ = ["add_status_page_command"]


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from flows.records.status_page import publish_folder, status_snapshot

    catalog = load_catalog(settings.catalog_path)
    folder = args.folder or catalog.communications.status_page.folder
    if folder is None:
        raise ConfigError("no folder: pass --folder or set communications.status_page.folder "
                          "in the service catalog")
    snapshot = status_snapshot(open_store(settings.database_url), catalog, utcnow())
    written = publish_folder(snapshot, folder, args.base_url)
    print(f"wrote {', '.join(str(p) for p in written)}: {snapshot.overall} "
          f"({len(snapshot.incidents)} open, {len(snapshot.history)} past incident(s))")
    return 0


def add_status_page_command(sub: Any) -> None:
    """Register `firelane status-page publish`."""
    page = sub.add_parser("status-page", help="Firelane's own public status page")
    act = page.add_subparsers(dest="action", required=True)
    publish = act.add_parser("publish", help="write index.html, status.json and feed.atom")
    publish.add_argument("--folder", default=None, help="where to write (default: the "
                         "catalog's communications.status_page.folder)")
    publish.add_argument("--base-url", default=None, help="the URL the page is read at, for "
                         "the feed's links (default: communications.status_page.public_url)")
    page.set_defaults(fn=_publish)
