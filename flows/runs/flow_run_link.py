"""The incident's `flow_run` link: the Prefect UI page of the flow run running an execution."""

from __future__ import annotations

import asyncio

from prefect.utilities.urls import url_for

from firelane.links import Link, is_web_url
from flows.engine import RunContext

__all__ = ["record_flow_run_link"]


async def record_flow_run_link(rc: RunContext, flow_run_id: str | None) -> None:
    """Record the flow run's UI URL (`PREFECT_UI_URL`, which Prefect derives from
    `PREFECT_API_URL` when unset) on the incident. Only an execution's first flow run is
    recorded: a resumed execution keeps its link (the timeline names the runs that resumed it).
    Nothing is recorded when no UI URL is known."""
    if flow_run_id is None:
        return
    url = url_for("flow-run", obj_id=flow_run_id)
    if not is_web_url(url):
        return
    assert url is not None
    link = Link("flow_run", url, rc.execution.id)
    if await asyncio.to_thread(rc.store.record_link, rc.incident.id, link):
        rc.incident.links = {**rc.incident.links, "flow_run": url}
