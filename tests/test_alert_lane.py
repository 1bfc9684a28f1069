"""The lean alert lane answers `POST /alerts/{source}` exactly as the FastAPI route it
bypasses would, and leaves every other request to FastAPI."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

from firelane.store import open_store
from flows.intake.app import AlertLane, create_app
from flows.intake.config import IntakeConfig, SecretRef, SourceSettings

AM = (Path(__file__).resolve().parent / "payloads" / "alertmanager_group_mixed.json").read_bytes()
TOKEN = {"authorization": "Bearer am-secret", "content-type": "application/json"}
CASES: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("POST", "/alerts/alertmanager", AM, TOKEN),
    ("POST", "/alerts/alertmanager", AM, TOKEN),
    ("POST", "/alerts/alertmanager", AM, {**TOKEN, "authorization": "Bearer wrong"}),
    ("POST", "/alerts/alertmanager", b"{not json", TOKEN),
    ("POST", "/alerts/alertmanager", b'{"alerts": []}', TOKEN),
    ("POST", "/alerts/nope%22%7D%0Afake_metric%201", AM, TOKEN),
    ("POST", "/alerts/generic", AM, TOKEN),
    ("POST", "/alerts/a/b", AM, TOKEN),
    ("POST", "/alerts/", AM, TOKEN),
    ("GET", "/alerts/alertmanager", b"", TOKEN),
    ("PUT", "/alerts/alertmanager", AM, TOKEN),
]


def _app(tmp_path: Path, name: str, lane: bool) -> Any:
    config = IntakeConfig(sources={"alertmanager": SourceSettings(
        bearer_token=SecretRef(env="TEST_AM_TOKEN"))})
    app = create_app(open_store(f"sqlite:///{tmp_path / name}.db"), config)
    if not lane:
        app.lane = None
    return app


def _answers(app: Any) -> list[tuple[int, Any, str | None]]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return [await client.request(method, path, content=body, headers=headers)
                    for method, path, body, headers in CASES]

    out = []
    for response in asyncio.run(go()):
        body = response.json() if response.content else None
        for alert in (body or {}).get("alerts", []) if isinstance(body, dict) else []:
            alert["id"] = alert["incident_id"] = "<id>"
        out.append((response.status_code, body, response.headers.get("content-type")))
    return out


def test_the_lane_answers_as_the_route_it_bypasses(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AM_TOKEN", "am-secret")
    lane, route = _answers(_app(tmp_path, "lane", True)), _answers(_app(tmp_path, "route", False))
    assert lane == route
    statuses = [status for status, _, _ in lane]
    assert statuses == [202, 202, 401, 400, 400, 404, 401, 404, 404, 405, 405]
    assert lane[1][1]["alerts"][0]["deduplicated"] is True
    assert lane[5][1]["error"].startswith("unknown source ")
    assert lane[7][1] == {"detail": "Not Found"}


def test_the_route_stays_documented_and_the_schema_has_no_duplicate_operation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AM_TOKEN", "am-secret")
    app = _app(tmp_path, "docs", True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = app.openapi()["paths"]
    assert "/alerts/{source}" in paths and "/status" in paths
    assert isinstance(app.lane, AlertLane)
