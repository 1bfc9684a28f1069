"""Load the modules that register actions: the bundled integrations and `FIRELANE_PLUGINS`."""

from __future__ import annotations

import importlib

from firelane.errors import ConfigError
from firelane.settings import Settings

__all__ = ["load_plugins"]


def load_plugins(settings: Settings) -> None:
    """Import every integration and plugin module so their actions are registered."""
    importlib.import_module("integrations")
    for name in settings.plugins:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"FIRELANE_PLUGINS names {name!r}, which cannot be imported: "
                              f"{exc}") from exc
