"""Settings from the environment, read when asked for (never at import time)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from firelane.errors import ConfigError

__all__ = ["Settings", "worker_identity"]


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than zero")
    return value


def _address(name: str, default: str) -> tuple[str, int] | None:
    raw = os.environ.get(name) or default
    if raw.lower() == "off":
        return None
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}={raw!r} must look like host:port (or off)")
    return host, int(port)


@dataclass(frozen=True)
class Settings:
    """Where Firelane keeps things and how it times leases.

    - `FIRELANE_DATABASE_URL`: SQLAlchemy URL of the incident store (default: a SQLite file
      under the user's data directory; `postgresql+psycopg://...` for PostgreSQL).
    - `FIRELANE_RUNBOOKS_DIR`: where runbooks are looked up by name (default `./runbooks`).
    - `FIRELANE_CATALOG`: the service catalog (default `./services.yaml`).
    - `FIRELANE_LEASE_SECONDS`: how long a step claim lives without renewal (default 30).
    - `FIRELANE_PLUGINS`: comma-separated modules to import so they register actions.
    - `FIRELANE_PAGE_FAILURE_CHANNEL`: Slack channel id told when a page fails after its
      retries (besides the incident's own war-room channel when it already exists).
    - `FIRELANE_REPORTS_DIR`: where timeline reports are written (default `./reports`).
    - `FIRELANE_WAKE_ADDRESS`: `host:port` where responders listen for the intake's UDP
      wake-up after it commits a pending execution (default `127.0.0.1:8799`; `off` leaves
      them to their 5 ms poll).
    """

    database_url: str
    runbooks_dir: Path
    catalog_path: Path
    lease_seconds: float
    plugins: tuple[str, ...]
    page_failure_channel: str = ""
    wake_address: tuple[str, int] | None = ("127.0.0.1", 8799)
    reports_dir: Path = Path("reports")

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings now."""
        url = os.environ.get("FIRELANE_DATABASE_URL", "")
        if not url:
            url = f"sqlite:///{Path(user_data_dir('firelane')) / 'firelane.db'}"
        plugins = tuple(p.strip() for p in os.environ.get("FIRELANE_PLUGINS", "").split(",")
                        if p.strip())
        return cls(
            database_url=url,
            runbooks_dir=Path(os.environ.get("FIRELANE_RUNBOOKS_DIR", "runbooks")),
            catalog_path=Path(os.environ.get("FIRELANE_CATALOG", "services.yaml")),
            lease_seconds=_float("FIRELANE_LEASE_SECONDS", 30.0),
            plugins=plugins,
            page_failure_channel=os.environ.get("FIRELANE_PAGE_FAILURE_CHANNEL", ""),
            wake_address=_address("FIRELANE_WAKE_ADDRESS", "127.0.0.1:8799"),
            reports_dir=Path(os.environ.get("FIRELANE_REPORTS_DIR", "reports")),
        )


def worker_identity() -> str:
    """Who holds a lease: host, process and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
