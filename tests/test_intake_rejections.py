"""A refused request is visible on the intake: a WARNING line with source, status, reason and
peer, rate-limited per (source, status, peer), and counted.

Before: a refusal was only an INFO audit line without the peer, so a misconfigured Grafana (a
wrong token: 401; a wrong content type: 415) was silent at the default WARNING level."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from firelane.store import open_store
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef, SourceSettings
from flows.intake.rejections import RejectionLog
from tests.helpers import scrape_page

GOOD = b'{"version": "4", "alerts": [{"labels": {"alertname": "A"}}]}'
JSON = {"content-type": "application/json"}


class Clock:
    """A hand-moved monotonic clock for the rate limit."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _post(app: Any, calls: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    async def go() -> list[int]:
        async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 40000)),
                base_url="http://intake") as client:
            return [(await client.post("/alerts/alertmanager", content=body,
                                       headers=headers)).status_code for body, headers in calls]
    return asyncio.run(go())


def test_refusals_are_warnings_with_peer_rate_limited_and_counted(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TEST_REJ_TOKEN", "rej-secret")
    config = IntakeConfig(max_body_bytes=200, sources={"alertmanager": SourceSettings(
        bearer_token=SecretRef(env="TEST_REJ_TOKEN"))})
    clock = Clock()
    app = create_app(open_store(sqlite_url), config, rejections=RejectionLog(60, clock=clock))
    auth = {**JSON, "authorization": "Bearer rej-secret"}
    caplog.set_level(logging.WARNING, logger="firelane.intake")
    statuses = _post(app, [
        (GOOD, {**JSON, "authorization": "Bearer wrong"}),
        (GOOD, {"content-type": "text/html", "authorization": "Bearer rej-secret"}),
        (b"{" * 300, auth),
        (b'{"alerts": "x"}', auth),
    ])
    assert statuses == [401, 415, 413, 400]
    lines = [r for r in caplog.records if r.name == "firelane.intake"
             and r.levelno == logging.WARNING]
    assert [(r.source, r.status, r.peer) for r in lines] == [  # type: ignore[attr-defined]
        ("alertmanager", s, "10.1.2.3") for s in statuses]
    assert "refused a request from 10.1.2.3: source=alertmanager status=401 reason=missing " \
        "or wrong bearer token" in lines[0].getMessage()
    assert "rej-secret" not in caplog.text and "wrong" in lines[0].getMessage()
    caplog.clear()
    assert _post(app, [(GOOD, {**JSON, "authorization": "Bearer wrong"})] * 5) == [401] * 5
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    clock.now += 61
    assert _post(app, [(GOOD, {**JSON, "authorization": "Bearer wrong"})]) == [401]
    [line] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "(5 more like it in the last 61 s)" in line.getMessage()

    async def scrape() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return (await client.get("/metrics")).text
    page = scrape_page(asyncio.run(scrape()))
    assert {s: page[("firelane_alerts_rejected_total", (("source", "alertmanager"),
                                                        ("status", s)))]
            for s in ("400", "401", "413", "415")} == {"400": 1, "401": 7, "413": 1, "415": 1}


def test_a_reason_quoting_the_request_cannot_forge_a_log_line(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="firelane.intake")
    RejectionLog().refused("generic", 400, "alerts[0].labels.x\nFAKE ERROR line" + "y" * 500,
                           "10.0.0.1")
    [line] = caplog.records
    assert "\n" not in line.getMessage() and "x\\nFAKE" in line.getMessage()
    assert len(line.getMessage()) < 450
