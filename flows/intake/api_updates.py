"""Incident updates on the HTTP API: `POST /api/v1/incidents/{ref}/updates` posts one (as the
token's owner, verified) and queues its delivery; `GET` lists what stakeholders were told.
Same verb as `firelane update` and `/incident update`: `IncidentCommands.post_update`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from firelane.catalog import serving_catalog
from firelane.commands import Actor, IncidentCommands
from firelane.loader import load_valid_runbooks
from firelane.store import Store
from firelane.updates import UpdateDraft
from flows.intake.api import Reader, Writer, visible

__all__ = ["add_update_routes"]


def add_update_routes(app: FastAPI, store: Store, cmds: IncidentCommands, runbooks_dir: Path,
                      catalog_path: Path | None, start: Callable[[str], None] | None) -> None:
    """Mount the update routes; a posted update's delivery goes to `start` (the responders)
    when this intake runs responses, else it waits for a responder's sweep."""
    posting = IncidentCommands(
        store, lambda: cmds.runbooks or load_valid_runbooks(runbooks_dir)[0],
        sandbox=cmds.sandbox, for_responder=cmds.for_responder)

    @app.post("/api/v1/incidents/{ref}/updates", status_code=201, tags=["updates"])
    async def post_update(ref: str, body: UpdateDraft, token: Writer) -> Any:
        """Post an update for stakeholders (a public one waits for approval unless it may
        publish alone); its delivery is queued for the responders."""
        found = await asyncio.to_thread(visible, store, ref, token)
        by = Actor(token.owner, "api", verified=True)
        posted = await asyncio.to_thread(posting.post_update, found.id, body, by,
                                         serving_catalog(catalog_path))
        if start is not None and posted.execution_id is not None:
            start(posted.execution_id)
        return {"update": posted.update.model_dump(mode="json"),
                "execution_id": posted.execution_id, "said": posted.said}

    @app.get("/api/v1/incidents/{ref}/updates", tags=["updates"])
    async def list_updates(ref: str, token: Reader) -> Any:
        """The incident's updates, oldest first, with their state."""
        found = await asyncio.to_thread(visible, store, ref, token)
        updates = await asyncio.to_thread(store.list_updates, found.id)
        return {"incident": f"INC-{found.number}",
                "updates": [u.model_dump(mode="json") for u in updates]}
