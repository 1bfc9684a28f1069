"""The incident's key times for `prometheus.graph`'s marks, read from the incident store.

Actions get the incident but not the store; the chart is worth drawing without its marks, so
a store that cannot be read (a SQLite file that does not exist, a database that fails or
does not answer within 5 s) raises `StoreUnavailable` and the action falls back to its
`marks` input, saying so on the timeline.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from firelane.errors import StoreError, StoreUnavailable
from firelane.models import Incident
from firelane.settings import Settings
from firelane.timeline import from_store, key_times

__all__ = ["MARKED", "incident_key_times"]

MARKED = ("declared", "acknowledged", "mitigated", "resolved")
STORE_TIMEOUT_SECONDS = 5.0


def _read(url: str, incident: Incident) -> dict[str, datetime]:
    from firelane.store import shared_store

    store = shared_store(url)
    entries = from_store(store.timeline(incident.id), store.alerts_of(incident.id))
    times = key_times(incident, entries)
    found = {name: getattr(times, name) for name in MARKED}
    return {name: at for name, at in found.items() if at is not None}


async def incident_key_times(incident: Incident) -> dict[str, datetime]:
    """Declared, acknowledged, mitigated and resolved (those that happened), as the report
    computes them. Raises `StoreUnavailable`."""
    url = Settings.from_env().database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise StoreUnavailable(f"no incident store at {url}")
    try:
        async with asyncio.timeout(STORE_TIMEOUT_SECONDS):
            return await asyncio.to_thread(_read, url, incident)
    except TimeoutError as exc:
        raise StoreUnavailable(f"the incident store did not answer within "
                              f"{STORE_TIMEOUT_SECONDS:g} s") from exc
    except (SQLAlchemyError, StoreError) as exc:
        raise StoreUnavailable(f"cannot read the incident store: {type(exc).__name__}: "
                               f"{str(exc)[:200]}") from exc
