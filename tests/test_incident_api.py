"""The incident HTTP API on the intake (`/api/v1/`) and its tokens, in-process over ASGI: no
route answers without a valid token (missing, malformed, unknown, revoked, expired: 401; read
token on a write: 403); the same verbs as the CLI, recorded as made by the token's owner,
verified; filters and pagination; bad values are 422 and unknown incidents 404, changing
nothing; the old `GET /incidents/{ref}` is closed to anonymous readers too."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from firelane.models import IncidentDraft, Severity, utcnow
from firelane.store import Store, open_store
from firelane.store.tables import api_tokens
from flows.cli import main
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig


def _call(store: Store, calls: list[tuple[str, str, str | None, Any]]) -> list[httpx.Response]:
    app = create_app(store, IntakeConfig())

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return [await client.request(method, path, json=body, headers={
                "authorization": f"Bearer {token}"} if token else {})
                for method, path, token, body in calls]
    return asyncio.run(go())


@pytest.fixture
def api(sqlite_url: str) -> tuple[Store, str, str]:
    store = open_store(sqlite_url)
    reader, _ = store.create_token("dash", "read", "grafana")
    writer, _ = store.create_token("ann-laptop", "write", "ann")
    return store, reader, writer


def test_every_route_needs_a_valid_token(api: tuple[Store, str, str]) -> None:
    store, reader, writer = api
    store.declare_incident(IncidentDraft(title="t", severity=Severity.SEV2, service="web"))
    revoked, _ = store.create_token("old", "write", "bob")
    store.revoke_token("old")
    expired, _ = store.create_token("temp", "read", "bob", timedelta(days=1))
    with store.tx() as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.name == "temp")
                     .values(expires_at=utcnow() - timedelta(seconds=1)))
    forged = reader[:-4] + "AAAA"
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/incidents/INC-1", None), ("GET", "/api/v1/incidents", None),
        ("GET", "/api/v1/incidents/INC-1", None),
        ("POST", "/api/v1/incidents", {"title": "x", "severity": "SEV3", "service": "web"}),
        ("PATCH", "/api/v1/incidents/INC-1", {"severity": "SEV1"}),
        ("POST", "/api/v1/incidents/INC-1/notes", {"text": "hi"})]
    for token, why in ((None, "needs an API token"), ("nope", "malformed token"),
                       (forged, "unknown token"), (revoked, "'old' was revoked"),
                       (expired, "'temp' expired at")):
        for answer in _call(store, [(m, p, token, b) for m, p, b in routes]):
            assert answer.status_code == 401, (answer.request.url, answer.text)
            assert why in answer.json()["error"]
            assert answer.headers["www-authenticate"] == "Bearer"
    writes = _call(store, [(m, p, reader, b) for m, p, b in routes if m != "GET"])
    assert [a.status_code for a in writes] == [403] * 3
    assert "has scope read; this needs write" in writes[0].json()["error"]
    assert [a.status_code for a in _call(store, [(m, p, token, None) for m, p, _ in routes
                                                 for token in (reader, writer)
                                                 if m == "GET"])] == [200] * 6
    assert len(store.list_incidents()) == 1
    assert len(store.timeline(store.get_incident("INC-1").id)) == 1, "nothing changed"
    used = {t.name: t.last_used_at for t in store.list_tokens()}
    assert used["dash"] is not None and used["ann-laptop"] is not None


def test_verbs_filters_and_pagination(api: tuple[Store, str, str]) -> None:
    store, reader, writer = api
    declared, = _call(store, [("POST", "/api/v1/incidents", writer, {
        "title": "checkout 5xx", "severity": "SEV2", "service": "web",
        "labels": {"team": "pay"}})])
    assert declared.status_code == 201, declared.text
    ref = f"INC-{declared.json()['number']}"
    for title, severity, service in (("db slow", "SEV1", "db"), ("cdn", "SEV3", "cdn")):
        _call(store, [("POST", "/api/v1/incidents", writer, {
            "title": title, "severity": severity, "service": service})])
    acked, again, sev, roles, note = _call(store, [
        ("PATCH", f"/api/v1/incidents/{ref}", writer, {"status": "acknowledged"}),
        ("PATCH", f"/api/v1/incidents/{ref}", writer, {"status": "acknowledged"}),
        ("PATCH", f"/api/v1/incidents/{ref}", writer, {"severity": "SEV1",
                                                       "reason": "customers affected"}),
        ("PATCH", f"/api/v1/incidents/{ref}", writer, {"communicator": "bob",
                                                       "investigators": ["carol", "dan"]}),
        ("POST", f"/api/v1/incidents/{ref}/notes", writer, {"text": "rolled back 42"})])
    assert acked.json()["commander"] == "ann" and acked.json()["status"] == "acknowledged"
    assert again.json()["changes"] == [{"changed": False,
                                        "said": "INC-1 is already acknowledged"}]
    assert sev.json()["severity"] == "SEV1"
    assert roles.json()["investigators"] == ["carol", "dan"] and note.status_code == 201
    incident = store.get_incident(ref)
    events = [e for e in store.timeline(incident.id) if e.kind != "incident.declared"]
    assert [e.kind for e in events] == ["incident.status", "incident.severity",
                                        "incident.role", "incident.role", "incident.role",
                                        "incident.note"]
    assert all(e.actor == "ann" and e.details["via"] == "api" and e.details["verified"]
               for e in events), "a token proves who it speaks for"

    listed, opened, page1, page2, by_service = _call(store, [
        ("GET", "/api/v1/incidents", reader, None),
        ("GET", "/api/v1/incidents?open=true", reader, None),
        ("GET", "/api/v1/incidents?limit=2", reader, None),
        ("GET", "/api/v1/incidents?limit=2&offset=2", reader, None),
        ("GET", "/api/v1/incidents?service=db&severity=SEV1", reader, None)])
    assert [i["title"] for i in listed.json()["incidents"]] == ["cdn", "db slow", "checkout 5xx"]
    assert [i["title"] for i in opened.json()["incidents"]] == ["checkout 5xx", "db slow", "cdn"]
    assert page1.json()["next_offset"] == 2 and page2.json()["next_offset"] is None
    assert [i["title"] for i in page1.json()["incidents"] + page2.json()["incidents"]] == [
        "cdn", "db slow", "checkout 5xx"]
    assert [i["title"] for i in by_service.json()["incidents"]] == ["db slow"]


def test_bad_input_is_refused_and_changes_nothing(api: tuple[Store, str, str]) -> None:
    store, _, writer = api
    store.declare_incident(IncidentDraft(title="t", severity=Severity.SEV2, service="web"))
    answers = _call(store, [
        ("PATCH", "/api/v1/incidents/INC-1", writer, {"severity": "SEV9"}),
        ("PATCH", "/api/v1/incidents/INC-1", writer, {"status": "fixed"}),
        ("PATCH", "/api/v1/incidents/INC-1", writer, {}),
        ("PATCH", "/api/v1/incidents/INC-1", writer, {"status": "closed"}),
        ("PATCH", "/api/v1/incidents/INC-404", writer, {"severity": "SEV1"}),
        ("POST", "/api/v1/incidents/INC-1/notes", writer, {"text": ""}),
        ("POST", "/api/v1/incidents", writer, {"title": "x", "severity": "SEV1"}),
        ("POST", "/api/v1/incidents", writer, {"title": "x", "severity": "SEV1",
                                               "service": "web", "runbook": "nope"}),
        ("GET", "/api/v1/incidents?limit=0", writer, None)])
    assert [a.status_code for a in answers] == [422, 422, 422, 409, 404, 422, 422, 422, 422]
    assert "nothing to change" in answers[2].json()["error"]
    assert "declared → closed" in answers[3].json()["error"] or \
        "closed" in answers[3].json()["error"]
    assert "no incident 'INC-404'" in answers[4].json()["error"]
    assert "cannot queue a runbook" in answers[7].json()["error"]
    assert len(store.list_incidents()) == 1
    assert len(store.timeline(store.get_incident("INC-1").id)) == 1


def test_tokens_cli_shows_once_lists_and_revokes(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FIRELANE_DATABASE_URL", sqlite_url)
    assert main(["tokens", "list"]) == 0
    assert "no API tokens" in capsys.readouterr().out
    assert main(["tokens", "create", "--name", "ci", "--scope", "write", "--owner", "ann",
                 "--expires-days", "30"]) == 0
    token = capsys.readouterr().out.splitlines()[0]
    assert token.startswith("flt_")
    store = open_store(sqlite_url)
    assert store.check_token(token, "write").owner == "ann"
    assert main(["tokens", "create", "--name", "ci", "--scope", "read"]) == 1
    assert "a token named 'ci' exists" in capsys.readouterr().err
    assert main(["tokens", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ci" in listing and "active" in listing and token not in listing
    assert main(["tokens", "revoke", "ci"]) == 0
    assert main(["tokens", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert store.list_tokens()[0].revoked_at is not None
    with store.tx(write=False) as conn:
        stored = conn.execute(api_tokens.select()).one()
    assert token.split("_")[-1] not in str(tuple(stored)), "only a hash is stored"
