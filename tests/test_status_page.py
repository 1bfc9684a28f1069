"""Firelane's own status page, from a real store: what the public reads and what it never does.

One world of incidents and updates (an open public incident, a private one with a public
update, internal, awaiting and rejected updates, an incident nobody told the public about, a
resolved one inside the history and one outside it, maintenance windows and a kill-switch
pause) is rendered as HTML, JSON and Atom; the three agree, the feed holds what RFC 4287
requires, the static files are replaced atomically, the intake serves them at `/status` without
a token and with caching headers, and headless Chromium shows the page on a phone and a desktop.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from bench.common import free_port
from firelane.catalog import Catalog, load_catalog
from firelane.models import (
    Incident,
    IncidentDraft,
    IncidentStatus,
    Severity,
    TimelineEvent,
    utcnow,
)
from firelane.store import Store
from firelane.updates import Audience, Impact, IncidentUpdate, UpdateState, UpdateStatus
from flows.cli import main
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig
from flows.records.status_page import (
    FILES,
    content_tag,
    publish_folder,
    refresh_status_page,
    render_atom,
    render_html,
    render_json,
    status_snapshot,
)
from tests.atom_rfc4287 import ATOM, atom_problems

SECRETS = ("PRIVATE-TITLE", "PRIVATE-SECRET", "INTERNAL-SECRET", "AWAITING-SECRET",
           "REJECTED-SECRET", "QUIET-TITLE", "ANCIENT-TITLE", "PAUSE-SECRET")
CATALOG = """\
services:
  web: {display_name: Web shop, group: Storefront}
  checkout: {display_name: Checkout, group: Storefront}
  search: {display_name: Search, group: Storefront}
  api: {}
communications:
  status_page: {title: Example status, public_url: "https://status.example.com"}
"""
LONG_URL = "https://status.example.com/details/" + "x" * 160
IDENTIFIED = "A bad release broke card payments & <script>alert(1)</script>; rolling back."


@dataclass
class World:
    """The store, the catalog, and the incidents the tests look for."""

    store: Store
    catalog: Catalog
    now: datetime
    open: Incident
    past: Incident


def _declare(store: Store, title: str, service: str, private: bool = False) -> Incident:
    return store.declare_incident(IncidentDraft(title=title, severity=Severity.SEV1,
                                                service=service, private=private))


def _say(store: Store, incident: Incident, status: UpdateStatus, message: str, at: datetime,
         affected: dict[str, Impact] | None = None, audience: Audience = Audience.PUBLIC,
         state: UpdateState = UpdateState.PUBLISHED) -> IncidentUpdate:
    update = IncidentUpdate(
        incident_id=incident.id, author="ann", via="cli", status=status, message=message,
        affected=affected or {}, audience=audience, state=state, created_at=at,
        published_at=at if state is UpdateState.PUBLISHED else None)
    return store.add_update(update, TimelineEvent(incident_id=incident.id,
                                                  kind="incident.update",
                                                  summary="Update #{seq}"))


def build_world(store: Store, tmp_path: Path) -> World:
    """Every kind of incident, update and window the page must show or hide."""
    (tmp_path / "services.yaml").write_text(CATALOG)
    catalog = load_catalog(tmp_path / "services.yaml")
    now = utcnow()

    def ago(**delta: float) -> datetime:
        return now - timedelta(**delta)
    live = _declare(store, "Card payments failing", "web")
    _say(store, live, UpdateStatus.INVESTIGATING, "We are looking into failed payments.",
         ago(minutes=30), {"checkout": Impact.MAJOR_OUTAGE})
    _say(store, live, UpdateStatus.IDENTIFIED,
         "INTERNAL-SECRET: db-7 is out of connections", ago(minutes=20),
         audience=Audience.INTERNAL)
    _say(store, live, UpdateStatus.IDENTIFIED, f"{IDENTIFIED} See {LONG_URL}",
         ago(minutes=10), {"checkout": Impact.PARTIAL_OUTAGE, "web": Impact.DEGRADED})
    _say(store, live, UpdateStatus.MONITORING, "AWAITING-SECRET", ago(minutes=5),
         state=UpdateState.AWAITING_APPROVAL)
    _say(store, live, UpdateStatus.RESOLVED, "REJECTED-SECRET", ago(minutes=4),
         state=UpdateState.REJECTED)
    hidden = _declare(store, "PRIVATE-TITLE", "api", private=True)
    _say(store, hidden, UpdateStatus.INVESTIGATING, "PRIVATE-SECRET", ago(minutes=15),
         {"api": Impact.MAJOR_OUTAGE})
    quiet = _declare(store, "QUIET-TITLE", "api")
    _say(store, quiet, UpdateStatus.INVESTIGATING, "INTERNAL-SECRET too", ago(minutes=3),
         audience=Audience.INTERNAL)
    past = _declare(store, "Search was slow", "search")
    _say(store, past, UpdateStatus.INVESTIGATING, "Search results are slow.", ago(days=3))
    _say(store, past, UpdateStatus.RESOLVED, "Search is fast again.", ago(days=3, hours=-1))
    store.set_status(past.id, IncidentStatus.RESOLVED)
    ancient = _declare(store, "ANCIENT-TITLE", "web")
    _say(store, ancient, UpdateStatus.RESOLVED, "ANCIENT-TITLE fixed", ago(days=120))
    store.set_status(ancient.id, IncidentStatus.RESOLVED)
    store.add_pause("maintenance", "search", "bob", "Index rebuild", ago(minutes=10),
                    now + timedelta(minutes=50))
    store.add_pause("maintenance", "*", "bob", "Database upgrade", now + timedelta(hours=2),
                    now + timedelta(hours=3))
    store.add_pause("pause", "web", "bob", "PAUSE-SECRET")
    return World(store, catalog, now, live, past)


class _Marks(HTMLParser):
    """The data-* attributes the template puts on incidents, updates and components."""

    def __init__(self) -> None:
        super().__init__()
        self.incidents: list[str] = []
        self.updates: list[str] = []
        self.components: dict[str, str] = {}
        self.indicator = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if "data-incident" in found:
            self.incidents.append(found["data-incident"])
        if "data-update" in found:
            self.updates.append(found["data-update"])
        if "data-component" in found:
            self.components[found["data-component"]] = found["data-status"]
        if "data-indicator" in found:
            self.indicator = found["data-indicator"]


def _marks(html: str) -> _Marks:
    parser = _Marks()
    parser.feed(html)
    return parser


def _renderings(world: World) -> tuple[str, dict[str, Any], str]:
    snap = status_snapshot(world.store, world.catalog, world.now)
    return (render_html(snap), json.loads(render_json(snap)),
            render_atom(snap, "https://status.example.com"))


def test_only_public_updates_of_public_incidents_are_shown(store: Store,
                                                           tmp_path: Path) -> None:
    world = build_world(store, tmp_path)
    html, doc, feed = _renderings(world)
    for text in (html, json.dumps(doc), feed):
        leaked = [s for s in SECRETS if s in text]
        assert leaked == [], leaked
    assert doc["status"] == {"indicator": "partial_outage", "description": "Partial outage"}
    assert {c["id"]: c["status"] for c in doc["components"]} == {
        "web": "degraded", "checkout": "partial_outage", "search": "operational",
        "api": "operational"}
    [live] = doc["incidents"]
    assert (live["id"], live["status"], live["impact"]) == (world.open.id, "identified",
                                                            "partial_outage")
    assert [u["status"] for u in live["updates"]] == ["identified", "investigating"]
    assert [i["id"] for i in doc["history"]] == [world.past.id]
    assert [u["status"] for u in doc["history"][0]["updates"]] == ["resolved", "investigating"]
    assert doc["history"][0]["resolved_at"] is not None
    assert [(m["service"], m["state"]) for m in doc["maintenance"]] == [
        ("search", "in_progress"), ("*", "scheduled")]


def test_html_json_and_feed_agree(sq: Store, tmp_path: Path) -> None:
    world = build_world(sq, tmp_path)
    html, doc, feed = _renderings(world)
    shown = [*doc["incidents"], *doc["history"]]
    updates = {u["id"] for i in shown for u in i["updates"]}
    marks = _marks(html)
    assert marks.incidents == [i["id"] for i in shown]
    assert set(marks.updates) == updates and len(marks.updates) == len(updates) == 4
    assert marks.components == {c["id"]: c["status"] for c in doc["components"]}
    assert marks.indicator == doc["status"]["indicator"]
    root = ElementTree.fromstring(feed)
    entries = root.findall(ATOM + "entry")
    assert {uuid.UUID(e.findtext(ATOM + "id") or "").hex for e in entries} == updates
    assert root.findtext(ATOM + "subtitle") == doc["status"]["description"]
    contents = [e.findtext(ATOM + "content") or "" for e in entries]
    assert any(IDENTIFIED in c for c in contents)
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_feed_has_what_rfc_4287_requires_and_stable_ids(sq: Store, tmp_path: Path) -> None:
    world = build_world(sq, tmp_path)
    _say(sq, world.open, UpdateStatus.MONITORING, "Odd text ]]> & \x07 <b>\"quoted\"</b>",
         world.now - timedelta(minutes=1), {"checkout": Impact.DEGRADED})
    first = status_snapshot(sq, world.catalog, world.now)
    later = status_snapshot(sq, world.catalog, world.now + timedelta(seconds=5))
    feed = render_atom(first, "https://status.example.com/")
    assert atom_problems(feed) == []
    root = ElementTree.fromstring(feed)
    assert root.findtext(f"{ATOM}author/{ATOM}name") == "Example status"
    entries = root.findall(ATOM + "entry")
    assert len(entries) == 5
    updated = [e.findtext(ATOM + "updated") or "" for e in entries]
    assert updated == sorted(updated, reverse=True) and root.findtext(ATOM + "updated") \
        == updated[0]
    assert "Odd text ]]> &  <b>" in (entries[0].findtext(ATOM + "content") or "")
    assert render_atom(later, "https://status.example.com/") == feed
    assert content_tag(first) == content_tag(later)
    assert atom_problems(feed.replace("<updated>", "<updated>x", 1)) != []
    assert atom_problems(feed.replace("<title>Example status</title>", "", 1)) != []


def test_publish_folder_writes_the_three_files_atomically(
        sq: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(sq, tmp_path)
    refresh_status_page(sq, world.catalog)
    folder = tmp_path / "www" / "status"
    configured = world.catalog.model_copy(deep=True)
    configured.communications.status_page.folder = str(folder)
    refresh_status_page(sq, configured)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert json.loads((folder / "status.json").read_text())["incidents"][0]["id"] \
        == world.open.id
    assert atom_problems((folder / "feed.atom").read_text()) == []
    before = (folder / "index.html").read_text()

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        publish_folder(status_snapshot(sq, world.catalog, utcnow()), folder)
    assert (folder / "index.html").read_text() == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)


def test_cli_publishes_to_a_folder(sq: Store, sqlite_url: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    build_world(sq, tmp_path)
    monkeypatch.setenv("FIRELANE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "services.yaml"))
    assert main(["status-page", "publish"]) == 1
    assert "--folder" in capsys.readouterr().err
    assert main(["status-page", "publish", "--folder", str(tmp_path / "out")]) == 0
    assert "Partial outage" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)


def _get(app: Any, calls: list[tuple[str, str, dict[str, str]]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return [await client.request(m, p, headers=h) for m, p, h in calls]
    return asyncio.run(go())


def test_intake_serves_the_page_publicly_with_caching(
        sq: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_world(sq, tmp_path)
    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "services.yaml"))
    app = create_app(sq, IntakeConfig())
    paths = ("/status", "/status/status.json", "/status/feed.atom")
    first = _get(app, [("GET", p, {}) for p in paths])
    for response, kind in zip(first, ("text/html", "application/json", "application/atom+xml"),
                              strict=True):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(kind)
        assert response.headers["cache-control"] == "public, max-age=30"
        assert response.headers["etag"].startswith('W/"')
        assert not [s for s in SECRETS if s in response.text]
    assert atom_problems(first[2].text) == []
    assert 'href="/status/feed.atom"' in first[0].text
    again = _get(app, [("GET", p, {"if-none-match": r.headers["etag"]})
                       for p, r in zip(paths, first, strict=True)]
                 + [("HEAD", "/status", {}), ("GET", "/status", {"if-none-match": '"other"'}),
                    ("POST", "/status", {}), ("DELETE", "/status/status.json", {})])
    assert [r.status_code for r in again] == [304, 304, 304, 200, 200, 405, 405]
    assert [r.content for r in again[:3]] == [b"", b"", b""]
    assert again[3].content == b"" and again[3].headers["etag"] == first[0].headers["etag"]
    assert int(again[3].headers["content-length"]) == len(first[0].content)


def test_intake_answers_503_while_the_catalog_never_validated(
        sq: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "services.yaml").write_text("services: [not, a, mapping]\n")
    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "services.yaml"))
    [response] = _get(create_app(sq, IntakeConfig()), [("GET", "/status", {})])
    assert response.status_code == 503
    assert "service catalog is invalid" in response.json()["error"]


@pytest.fixture
def served(sq: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The intake over HTTP on a free port, in a thread; yields its base URL."""
    import uvicorn

    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "services.yaml"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(sq, IntakeConfig()), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the intake did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_chromium_shows_the_page_on_a_phone_and_a_desktop(sq: Store, tmp_path: Path,
                                                          served: str) -> None:
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    world = build_world(sq, tmp_path)
    shots = Path("/tmp/status-shots")
    shots.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            for width, height in ((390, 844), (1280, 800)):
                tab = browser.new_page(viewport={"width": width, "height": height})
                tab.goto(f"{served}/status")
                assert tab.title() == "Example status · Partial outage"
                card = tab.locator(f"#incident-{world.open.id}")
                assert card.get_by_text(IDENTIFIED, exact=False).is_visible()
                assert tab.locator("#overall").inner_text() == "Partial outage"
                assert tab.locator("[data-component=checkout]").is_visible()
                overflow = tab.evaluate("[document.documentElement.scrollWidth, innerWidth]")
                assert overflow[0] <= overflow[1], f"{width} px: scrollWidth {overflow}"
                for secret in SECRETS:
                    assert tab.get_by_text(secret).count() == 0, secret
                shot = tmp_path / f"status-{width}.png"
                tab.screenshot(path=str(shot), full_page=True)
                shutil.copy(shot, shots / shot.name)
                tab.close()
        finally:
            browser.close()
