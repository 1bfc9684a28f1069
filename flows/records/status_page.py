"""Firelane's own status page (being built: issue 22)."""

from __future__ import annotations

from typing import Any

from firelane.catalog import Catalog

__all__ = ["refresh_status_page"]


def refresh_status_page(store: Any, catalog: Catalog) -> None:
    """Rewrite the static status page in the catalog's folder (none configured: nothing)."""
    if catalog.communications.status_page.folder is None:
        return
    raise NotImplementedError("the static status page is not written yet")
