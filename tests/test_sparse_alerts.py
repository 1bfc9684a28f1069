"""An alert with almost nothing in it still pages, and its incident says plainly what was
missing and which mapping to fix.

Before: `{"labels": {"a": 1}}` became an incident titled "alert", SEV3, service "unknown",
with an empty description: nothing told the on-call why, or what to change."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from firelane.settings import Settings
from firelane.store import open_store
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef, SourceSettings
from flows.respond.starter import ResponseStarter

TOKEN = {"authorization": "Bearer sparse-secret", "content-type": "application/json"}


def _post(app: object, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                     base_url="http://intake") as client:
            return await client.post(path, content=body, headers=headers)
    return asyncio.run(go())


def test_an_almost_empty_alert_pages_and_its_incident_names_what_to_fix(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SPARSE_TOKEN", "sparse-secret")
    monkeypatch.setenv("FIRELANE_CATALOG", "/nonexistent/services.yaml")
    store = open_store(sqlite_url)
    config = IntakeConfig(sources={"alertmanager": SourceSettings(
        bearer_token=SecretRef(env="TEST_SPARSE_TOKEN"))})
    app = create_app(store, config, ResponseStarter(
        store, Settings.from_env(), "declare-incident", sandbox=True, external=True))
    answer = _post(app, "/alerts/alertmanager",
                   json.dumps({"alerts": [{"labels": {"a": 1}}]}).encode(), TOKEN)
    assert answer.status_code == 202, answer.text
    incident = store.get_incident(answer.json()["alerts"][0]["incident_id"])
    [execution] = store.list_executions(incident.id)
    assert execution.runbook_name == "declare-incident"
    text = incident.description
    assert "left out what Firelane needs" in text
    assert "- title: no summary or title annotation" in text
    assert "add a summary annotation to the alerting rule" in text
    assert "- severity: no severity label, so SEV3 was assumed" in text
    assert "- service: no service, job or app label, so the service is 'unknown'" in text
    [event] = [e for e in store.timeline(incident.id) if e.kind == "alert.incomplete"]
    assert set(event.details["gaps"]) == {"title", "severity", "service"}


def test_an_unknown_severity_names_the_severities_mapping(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    app = create_app(store, IntakeConfig(), insecure=True)
    body = {"alerts": [{"labels": {"alertname": "Disk", "severity": "disaster-ish",
                                   "service": "db"}}]}
    answer = _post(app, "/alerts/grafana", json.dumps(body).encode(),
                   {"content-type": "application/json"})
    incident = store.get_incident(answer.json()["alerts"][0]["incident_id"])
    assert "severity 'disaster-ish' is not a known spelling" in incident.description
    assert "sources.grafana.severities (for example {disaster-ish: SEV2})" in incident.description
    assert "- title:" not in incident.description
    assert "- service:" not in incident.description


def test_a_generic_alert_names_the_mapping_to_point(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    app = create_app(store, IntakeConfig(), insecure=True)
    answer = _post(app, "/alerts/generic", json.dumps({"title": "queue backlog"}).encode(),
                   {"content-type": "application/json"})
    incident = store.get_incident(answer.json()["alerts"][0]["incident_id"])
    assert "point intake.yaml sources.generic.mapping.severity at the field" in \
        incident.description
    assert "sources.generic.mapping.service" in incident.description


def test_a_complete_alert_has_no_such_note(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    app = create_app(store, IntakeConfig(), insecure=True)
    body = {"alerts": [{"labels": {"alertname": "Disk", "severity": "critical",
                                   "service": "db"}, "annotations": {"summary": "Disk full"}}]}
    answer = _post(app, "/alerts/alertmanager", json.dumps(body).encode(),
                   {"content-type": "application/json"})
    incident = store.get_incident(answer.json()["alerts"][0]["incident_id"])
    assert incident.description == ""
    assert not [e for e in store.timeline(incident.id) if e.kind == "alert.incomplete"]
