"""Signed and token-authenticated sources through the intake's HTTP app: forged, replayed
(stale timestamp), missing and wrong-algorithm signatures are refused with 401 and store
nothing; each check goes through `hmac.compare_digest` (constant time). A correctly signed
request is accepted, so the refusals are not an app that refuses everything."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from firelane.store import open_store
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef, SourceSettings

SECRET = "sig-secret-0123456789"
PD_BODY = json.dumps({"event": {"event_type": "incident.triggered", "resource_type": "incident",
                                "data": {"id": "P1", "title": "db down", "urgency": "high",
                                         "service": {"summary": "db"}}}}).encode()
GF_BODY = json.dumps({"alerts": [{"status": "firing", "labels": {"alertname": "Gf"}}]}).encode()
AM_BODY = json.dumps({"version": "4", "alerts": [{"status": "firing",
                                                  "labels": {"alertname": "Am"}}]}).encode()


def _hex(key: str, message: bytes, algorithm: Callable[..., object] = hashlib.sha256) -> str:
    return hmac.new(key.encode(), message, algorithm).hexdigest()  # type: ignore[arg-type]


def _grafana(stamp: int, algorithm: Callable[..., object] = hashlib.sha256) -> dict[str, str]:
    return {"x-grafana-alerting-signature": _hex(SECRET, f"{stamp}:".encode() + GF_BODY,
                                                 algorithm),
            "x-grafana-alerting-timestamp": str(stamp)}


def _slack(stamp: int, body: bytes, version: str = "v0") -> dict[str, str]:
    base = f"v0:{stamp}:".encode() + body
    return {"x-slack-request-timestamp": str(stamp),
            "x-slack-signature": f"{version}={_hex(SECRET, base)}",
            "content-type": "application/x-www-form-urlencoded"}


SLACK_BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"


def _now() -> int:
    return int(time.time())


REFUSED: dict[str, tuple[str, bytes, Callable[[], dict[str, str]]]] = {
    "pagerduty forged": ("pagerduty", PD_BODY,
                         lambda: {"x-pagerduty-signature": "v1=" + "0" * 64}),
    "pagerduty missing": ("pagerduty", PD_BODY, dict),
    "pagerduty wrong algorithm": ("pagerduty", PD_BODY, lambda: {
        "x-pagerduty-signature": "v1=" + _hex(SECRET, PD_BODY, hashlib.sha1)}),
    "pagerduty wrong scheme": ("pagerduty", PD_BODY, lambda: {
        "x-pagerduty-signature": "v2=" + _hex(SECRET, PD_BODY)}),
    "grafana forged": ("grafana", GF_BODY, lambda: {
        **_grafana(_now()), "x-grafana-alerting-signature": "0" * 64}),
    "grafana replayed": ("grafana", GF_BODY, lambda: _grafana(_now() - 3600)),
    "grafana missing": ("grafana", GF_BODY, dict),
    "grafana wrong algorithm": ("grafana", GF_BODY, lambda: _grafana(_now(), hashlib.sha1)),
    "bearer forged": ("alertmanager", AM_BODY,
                      lambda: {"authorization": "Bearer sig-secret-012345678"}),
    "bearer missing": ("alertmanager", AM_BODY, dict),
    "bearer wrong scheme": ("alertmanager", AM_BODY,
                            lambda: {"authorization": f"Basic {SECRET}"}),
}


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("SIG_SECRET", SECRET)
    ref = SecretRef(env="SIG_SECRET")
    config = IntakeConfig(slack_signing_secret=ref, sources={
        "pagerduty": SourceSettings(hmac_secret=ref),
        "grafana": SourceSettings(hmac_secret=ref, require_timestamp=True),
        "alertmanager": SourceSettings(bearer_token=ref)})
    store = open_store(f"sqlite:///{tmp_path / 'sig.db'}")
    made = create_app(store, config)
    made.state.test_store = store
    return made


def _post(app: object, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                     base_url="http://intake") as client:
            return await client.post(path, content=body, headers={
                "content-type": "application/json", **headers})
    return asyncio.run(go())


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_signatures_are_refused_in_constant_time_and_store_nothing(
        app: object, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes | str, b: bytes | str) -> bool:
        compared.append(1)
        return real(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(hmac, "compare_digest", counting)
    source, body, headers = REFUSED[case]
    response = _post(app, f"/alerts/{source}", body, headers())
    assert response.status_code == 401, response.text
    store = app.state.test_store  # type: ignore[attr-defined]
    assert store.list_incidents() == []
    if not any(word in case for word in ("missing", "scheme", "replayed")):
        assert compared, "the signature was not compared with hmac.compare_digest"


def test_good_signatures_are_accepted(app: object) -> None:
    good = [("pagerduty", PD_BODY, {"x-pagerduty-signature": "v1=" + _hex(SECRET, PD_BODY)}),
            ("grafana", GF_BODY, _grafana(int(time.time()))),
            ("alertmanager", AM_BODY, {"authorization": f"Bearer {SECRET}"})]
    for source, body, headers in good:
        response = _post(app, f"/alerts/{source}", body, headers)
        assert response.status_code == 202, (source, response.text)
    assert len(app.state.test_store.list_incidents()) == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(("case", "age", "version"), [
    ("replayed", 3600, "v0"), ("wrong version", 0, "v1"), ("forged", 0, "v0"),
    ("good", 0, "v0")])
def test_slack_interactions_refuse_bad_signatures(app: object, case: str, age: int,
                                                  version: str) -> None:
    headers = _slack(_now() - age, SLACK_BODY, version)
    if case == "forged":
        headers["x-slack-signature"] = "v0=" + "0" * 64
    response = _post(app, "/slack/interactions", SLACK_BODY, headers)
    assert (response.status_code == 401) == (case != "good"), response.text
