"""The status page's three renderings of one snapshot: HTML, JSON and an Atom feed.

The HTML comes from the Jinja template `status.html.j2` (a file of that name in
`FIRELANE_TEMPLATES_DIR` replaces the built-in one), autoescaped, with its CSS inline and
nothing loaded from elsewhere. The JSON shape is `firelane.status/v1` (documented in
docs/how-to/status-page.md); fields are only ever added to it. The feed is RFC 4287 Atom,
built with an XML serializer so every text is escaped; its ids are `urn:uuid:` URIs that stay
the same however often the page is rendered.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jinja2

import firelane
from firelane.errors import ConfigError
from firelane.settings import Settings
from firelane.updates import UpdateStatus
from flows.records.status_page_snapshot import IncidentView, Snapshot, UpdateView

__all__ = ["ATOM_NS", "JSON_SCHEMA", "content_tag", "render_atom", "render_html",
           "render_json", "snapshot_dict"]

ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_SCHEMA = "firelane.status/v1"
_BUILTIN = Path(firelane.__file__).resolve().parent / "templates"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LABEL = {"operational": "Operational", "degraded": "Degraded performance",
          "partial_outage": "Partial outage", "major_outage": "Major outage",
          "maintenance": "Maintenance"}


def _when(at: datetime | None) -> str | None:
    """RFC 3339 in UTC with a `Z`, to the second."""
    if at is None:
        return None
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _update_dict(update: UpdateView) -> dict[str, Any]:
    return {"id": update.id, "status": update.status.value, "message": update.message,
            "published_at": _when(update.published_at),
            "affected": [{"id": a.service, "name": a.name, "impact": a.impact.value}
                         for a in update.affected]}


def _incident_dict(incident: IncidentView) -> dict[str, Any]:
    return {"id": incident.id, "title": incident.title, "status": incident.status.value,
            "impact": incident.impact, "started_at": _when(incident.started_at),
            "updated_at": _when(incident.updated_at),
            "resolved_at": _when(incident.resolved_at),
            "updates": [_update_dict(u) for u in incident.updates]}


def snapshot_dict(snapshot: Snapshot) -> dict[str, Any]:
    """The `firelane.status/v1` document (what `status.json` holds)."""
    return {
        "schema": JSON_SCHEMA,
        "page": {"title": snapshot.title, "url": snapshot.public_url,
                 "generated_at": _when(snapshot.generated_at),
                 "history_days": snapshot.history_days},
        "status": {"indicator": snapshot.indicator, "description": snapshot.overall},
        "components": [{"id": c.service, "name": c.name, "group": c.group, "status": c.status}
                       for c in snapshot.components],
        "incidents": [_incident_dict(i) for i in snapshot.incidents],
        "maintenance": [{"id": m.id, "service": m.service, "name": m.name,
                         "state": m.state, "starts_at": _when(m.starts_at),
                         "ends_at": _when(m.ends_at), "description": m.description}
                        for m in snapshot.maintenance],
        "history": [_incident_dict(i) for i in snapshot.history],
    }


def render_json(snapshot: Snapshot) -> str:
    """`status.json`: the snapshot as a `firelane.status/v1` document, pretty-printed."""
    return json.dumps(snapshot_dict(snapshot), indent=2, ensure_ascii=False) + "\n"


def content_tag(snapshot: Snapshot) -> str:
    """A digest of what the snapshot says, leaving out when it was taken: two snapshots with
    the same tag render the same page apart from its `generated_at` (a weak ETag's base)."""
    data = snapshot_dict(snapshot)
    data["page"].pop("generated_at")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def _environment() -> jinja2.Environment:
    paths = [str(_BUILTIN)]
    override = Settings.from_env().templates_dir
    if override is not None:
        paths.insert(0, str(override))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(paths), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["utc"] = lambda at: at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") \
        if at is not None else ""
    env.filters["rfc3339"] = _when
    env.filters["label"] = lambda value: _LABEL.get(str(value), str(value).replace("_", " "))
    return env


def render_html(snapshot: Snapshot, links: str = "") -> str:
    """`index.html`: one self-contained page for phones and desktops. `links` is prepended
    to the JSON and feed links (`/status/` on the intake; empty beside the files)."""
    try:
        return _environment().get_template("status.html.j2").render(
            s=snapshot, links=links)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"status page template failed: {exc} (check status.html.j2 in the "
                          "templates folder)") from exc


def _entry_id(update_id: str) -> str:
    try:
        return uuid.UUID(hex=update_id).urn
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"firelane:update:{update_id}").urn


def _sub(parent: ElementTree.Element, tag: str, text: str | None = None,
         **attrs: str) -> ElementTree.Element:
    node = ElementTree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        node.text = _NOT_XML.sub("", text)
    return node


def _entry_text(update: UpdateView) -> str:
    resolved = update.status is UpdateStatus.RESOLVED
    affected = ", ".join(a.name if resolved else f"{a.name} ({a.impact.value.replace('_', ' ')})"
                         for a in update.affected)
    return f"{update.status.value.capitalize()}: {update.message}\n\nAffected: {affected}"


def render_atom(snapshot: Snapshot, base_url: str) -> str:
    """`feed.atom`: one entry per published public update, newest first, linking to the
    page at `base_url`. The feed's id is derived from `base_url`, each entry's from its
    update, so readers never see an entry twice."""
    base = base_url.rstrip("/") + "/"
    ElementTree.register_namespace("", ATOM_NS)
    feed = ElementTree.Element(f"{{{ATOM_NS}}}feed")
    entries = sorted(((i, u) for i in (*snapshot.incidents, *snapshot.history)
                      for u in i.updates), key=lambda pair: pair[1].published_at, reverse=True)
    _sub(feed, "id", uuid.uuid5(uuid.NAMESPACE_URL, base).urn)
    _sub(feed, "title", snapshot.title)
    _sub(feed, "subtitle", snapshot.overall)
    _sub(feed, "updated", _when(entries[0][1].published_at if entries
                                else snapshot.generated_at))
    _sub(_sub(feed, "author"), "name", snapshot.title)
    _sub(feed, "link", rel="alternate", type="text/html", href=base)
    _sub(feed, "link", rel="self", type="application/atom+xml", href=base + "feed.atom")
    _sub(feed, "generator", "Firelane")
    for incident, update in entries:
        entry = _sub(feed, "entry")
        _sub(entry, "id", _entry_id(update.id))
        _sub(entry, "title", f"{incident.title}: {update.status.value}")
        _sub(entry, "updated", _when(update.published_at))
        _sub(entry, "published", _when(update.published_at))
        _sub(entry, "link", rel="alternate", type="text/html",
             href=f"{base}#incident-{incident.id}")
        _sub(entry, "content", _entry_text(update), type="text")
    body = ElementTree.tostring(feed, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"
