"""The incident's links: the ticket, page, channel, bridge and flow run its executions created.

An action declares which of its outputs is a link (`@action(..., link="ticket")`); the engine
records it on the incident in the same transaction as the step's outcome, and the flow records
its own Prefect flow run. Each link is one `incident.link` timeline event, once per execution
and kind. Links made by a sandbox run point at the sandbox's stand-ins and say so (`sandbox`),
so nobody mistakes them for the real vendor's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from firelane.models import Incident, TimelineEvent

__all__ = ["LINK_EVENT", "LINK_TITLES", "Link", "LinkView", "incident_links", "is_web_url"]

LINK_EVENT = "incident.link"

LINK_TITLES: dict[str, str] = {
    "ticket": "Ticket",
    "page": "Page",
    "channel": "Slack channel",
    "bridge": "Video bridge",
    "flow_run": "Prefect flow run",
}


def is_web_url(url: object) -> bool:
    """`url` is an absolute http(s) URL: the only kind recorded or rendered as a hyperlink
    (never `javascript:` or a relative path that came out of a vendor's answer)."""
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _title(kind: str) -> str:
    return LINK_TITLES.get(kind, kind.replace("_", " ").capitalize())


@dataclass(frozen=True)
class Link:
    """A link an execution created, as the engine records it."""

    kind: str
    url: str
    execution_id: str | None = None
    step_id: str | None = None
    sandbox: bool = False

    def event(self, incident_id: str) -> TimelineEvent:
        """The timeline event that records this link on the incident."""
        note = " (sandbox)" if self.sandbox else ""
        return TimelineEvent(incident_id=incident_id, kind=LINK_EVENT, source="runbook",
                             execution_id=self.execution_id, step_id=self.step_id,
                             summary=f"{_title(self.kind)}{note}: {self.url}",
                             details={"kind": self.kind, "url": self.url,
                                      "sandbox": self.sandbox})


@dataclass(frozen=True)
class LinkView:
    """A link as the CLI, the API and the reports show it."""

    kind: str
    title: str
    url: str
    sandbox: bool


def incident_links(incident: Incident, events: Iterable[TimelineEvent]) -> list[LinkView]:
    """The incident's current links, the known kinds first; `sandbox` comes from the event that
    recorded each URL."""
    sandbox: dict[tuple[str, str], bool] = {}
    for e in events:
        if e.kind == LINK_EVENT:
            sandbox[(str(e.details.get("kind")), str(e.details.get("url")))] = bool(
                e.details.get("sandbox"))
    order = [k for k in LINK_TITLES if k in incident.links]
    order += sorted(k for k in incident.links if k not in LINK_TITLES)
    return [LinkView(kind=k, title=_title(k), url=incident.links[k],
                     sandbox=sandbox.get((k, incident.links[k]), False))
            for k in order if is_web_url(incident.links[k])]
