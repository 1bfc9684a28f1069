"""The intake service over HTTP (ASGI, in-process): accept, dedup, group, reject, count.

Starting responses from it (war room, external responders, crashes) is in
`tests/test_intake_responses.py`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from firelane.store import open_store
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, load_intake_config
from tests.helpers import Series, counted, scrape_page
from tests.intake_helpers import AM, TOKEN, am_config, post


def _get(app: Any, path: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return await client.get(path, headers=headers)
    return asyncio.run(go())


def _scrape(app: Any) -> dict[Series, float]:
    response = _get(app, "/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    return scrape_page(response.text)


def _received(source: str, status: str) -> Series:
    return ("firelane_alerts_received_total", (("source", source), ("status", status)))


def _rejected(source: str, status: str) -> Series:
    return ("firelane_alerts_rejected_total", (("source", source), ("status", status)))


def _moved(before: dict[Series, float], after: dict[Series, float],
           ignore: tuple[str, ...] = ("firelane_intake_seconds",)) -> dict[Series, float]:
    """What changed between two scrapes (latency buckets aside: they depend on timing)."""
    assert set(after) == set(before)
    was, now = counted(before), counted(after)
    return {k: now[k] - was[k] for k in now if now[k] != was[k] and not k[0].startswith(ignore)}


def test_accept_dedup_and_resolve(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(sqlite_url)
    app = create_app(store, am_config(monkeypatch, auto_resolve=True))
    first, again = post(app, [("/alerts/alertmanager", AM, TOKEN)] * 2)
    assert first.status_code == 202, first.text
    alerts = first.json()["alerts"]
    assert [(a["status"], a["deduplicated"]) for a in alerts] == [("firing", False),
                                                                  ("resolved", False)]
    assert alerts[1]["incident_id"] is None
    assert again.json()["alerts"][0]["incident_id"] == alerts[0]["incident_id"]
    assert again.json()["alerts"][0]["deduplicated"] is True
    assert len(store.alerts_of(alerts[0]["incident_id"])) == 2
    assert _get(app, "/incidents/INC-1").status_code == 401, "incidents need a token"
    reader, _ = store.create_token("reader", "read", "ann")
    shown = _get(app, "/incidents/INC-1", reader).json()
    assert shown["title"] == "Disk 95% full on db-1" and len(shown["alerts"]) == 2
    resolved = json.loads(AM)
    resolved["alerts"] = [{**resolved["alerts"][0], "status": "resolved"}]
    [done] = post(app, [("/alerts/alertmanager", json.dumps(resolved).encode(), TOKEN)])
    assert done.status_code == 202
    assert store.get_incident("INC-1").status == "resolved"
    metrics = _scrape(app)
    assert metrics[_received("alertmanager", "firing")] == 2
    assert metrics[_received("alertmanager", "resolved")] == 3
    assert metrics[("firelane_dedup_hits_total", ())] == 1
    assert ("firelane_alert_first_action_seconds_count", ()) in metrics
    assert metrics[("firelane_intake_seconds_bucket", (("le", "+Inf"),))] == 3
    assert metrics[("firelane_responses_waiting", ())] == 0
    assert metrics[("firelane_pages_failed", ())] == 0
    assert 0 < metrics[("firelane_process_resident_memory_bytes", ())] \
        <= metrics[("firelane_process_peak_resident_memory_bytes", ())]
    assert _get(app, "/healthz").json() == {"ok": True, "store": "sqlite",
                                            "insecure_no_auth": False}


def _am(fingerprint: str, instance: str, status: str = "firing") -> bytes:
    return json.dumps({"version": "4", "status": status, "alerts": [{
        "status": status, "fingerprint": fingerprint, "startsAt": "2026-11-23T04:00:00Z",
        "labels": {"alertname": "Latency", "instance": instance, "severity": "critical",
                   "service": "checkout", "cluster": "eu-1"},
        "annotations": {"summary": f"p99 latency high on {instance}"}}]}).encode()


def test_grouping_reopen_and_flapping_decide_who_gets_paged(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from firelane.settings import Settings
    from flows.respond.starter import ResponseStarter

    monkeypatch.setenv("FIRELANE_CATALOG", "/nonexistent/services.yaml")
    store = open_store(sqlite_url)
    config = am_config(monkeypatch, auto_resolve=True, group_by=["service", "cluster"],
                     group_window_seconds=300, reopen_window_seconds=600,
                     flap_after_reopens=2)
    responder = ResponseStarter(store, Settings.from_env(), "declare-incident", sandbox=True,
                          external=True)
    app = create_app(store, config, responder)
    first, second = post(app, [("/alerts/alertmanager", _am("g1", "web-1"), TOKEN),
                                ("/alerts/alertmanager", _am("g2", "web-2"), TOKEN)])
    one, two = first.json()["alerts"][0], second.json()["alerts"][0]
    assert two["grouped"] and two["incident_id"] == one["incident_id"]
    assert len(store.list_executions(one["incident_id"])) == 1
    cycle = [("/alerts/alertmanager", _am("g1", "web-1", "resolved"), TOKEN),
             ("/alerts/alertmanager", _am("g2", "web-2", "resolved"), TOKEN),
             ("/alerts/alertmanager", _am("g1", "web-1"), TOKEN)]
    reopened = [post(app, cycle)[-1].json()["alerts"][0] for _ in range(3)]
    assert {r["incident_id"] for r in reopened} == {one["incident_id"]}
    incident = store.get_incident(one["incident_id"])
    assert incident.reopened == 3 and incident.labels.get("flapping") == "true"
    # The first reopen paged again (a new execution); the flapping ones did not.
    assert len(store.list_executions(incident.id)) == 2
    metrics = _scrape(app)
    assert metrics[("firelane_alerts_grouped_total", ())] == 1
    assert metrics[("firelane_incidents_reopened_total", ())] == 3
    assert metrics[("firelane_alerts_flapping_total", ())] == 2
    assert metrics[("firelane_responses_waiting", ())] == 2


@pytest.mark.parametrize(("path", "body", "headers", "status", "message"), [
    ("/alerts/alertmanager", AM, {"authorization": "Bearer nope"}, 401, "bearer token"),
    ("/alerts/alertmanager", AM, {}, 401, "bearer token"),
    ("/alerts/alertmanager", b"{broken", TOKEN, 400, "malformed JSON"),
    ("/alerts/alertmanager", AM, {**TOKEN, "content-type": "text/xml"}, 415, "not JSON"),
    ("/alerts/nagios", AM, TOKEN, 404, "unknown source 'nagios'"),
    ("/alerts/alertmanager", b"x" * 3000, TOKEN, 413, "exceeds the limit of 2048"),
    ("/alerts/generic", b"{}", {"content-type": "application/json"}, 401,
     "--insecure-no-auth"),
])
def test_bad_requests_are_4xx_and_store_nothing(sqlite_url: str,
                                                monkeypatch: pytest.MonkeyPatch, path: str,
                                                body: bytes, headers: dict[str, str],
                                                status: int, message: str) -> None:
    store = open_store(sqlite_url)
    app = create_app(store, am_config(monkeypatch, max_body_bytes=2048))
    [response] = post(app, [(path, body, headers)])
    assert response.status_code == status and message in response.json()["error"]
    assert store.list_incidents() == []


def test_metrics_count_each_alert_by_source_and_status_and_each_refusal_by_http_status(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(sqlite_url)
    app = create_app(store, am_config(monkeypatch, max_body_bytes=2048))
    before = _scrape(app)
    responses = post(app, [("/alerts/alertmanager", AM, TOKEN),
                            ("/alerts/alertmanager", AM, TOKEN),
                            ("/alerts/alertmanager", AM, {"authorization": "Bearer nope"}),
                            ("/alerts/alertmanager", b"{broken", TOKEN),
                            ("/alerts/alertmanager", b"x" * 3000, TOKEN),
                            ("/alerts/generic", b"{}", {"content-type": "application/json"})])
    assert [r.status_code for r in responses] == [202, 202, 401, 400, 413, 401]
    after = _scrape(app)
    assert _moved(before, after) == {
        _received("alertmanager", "firing"): 2, _received("alertmanager", "resolved"): 2,
        _rejected("alertmanager", "401"): 1, _rejected("alertmanager", "400"): 1,
        _rejected("alertmanager", "413"): 1, _rejected("generic", "401"): 1,
        ("firelane_incidents_declared_total", ()): 1, ("firelane_dedup_hits_total", ()): 1}
    assert after[("firelane_intake_seconds_count", ())] == 2


INJECTIONS = ["/alerts/nope%22%7D%0Afake_metric%201", '/alerts/x"y', "/alerts/x%22y",
              "/alerts/a%5Cb%7Bc%7D", "/alerts/%E2%80%AEreganamtrela", "/alerts/Alertmanager",
              "/alerts/" + "q" * 20_000, "/alerts/%00", "/alerts/unknown"]


def test_unknown_sources_are_404_and_add_nothing_to_metrics(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(sqlite_url)
    app = create_app(store, am_config(monkeypatch))
    before = _scrape(app)
    responses = post(app, [(path, AM, TOKEN) for path in INJECTIONS])
    assert [r.status_code for r in responses] == [404] * len(INJECTIONS)
    page = _get(app, "/metrics").text
    assert "fake_metric" not in page
    after = scrape_page(page)
    assert _moved(before, after, ignore=()) == {_rejected("unknown", "404"): len(INJECTIONS)}
    assert all(r.json()["error"].startswith("unknown source ") and
               "use one of alertmanager, grafana" in r.json()["error"] and len(r.text) < 300
               for r in responses), [r.text[:300] for r in responses]
    assert store.list_incidents() == []


def test_two_intakes_in_one_process_keep_their_own_metrics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = create_app(open_store(f"sqlite:///{tmp_path / 'one.db'}"), am_config(monkeypatch))
    two = create_app(open_store(f"sqlite:///{tmp_path / 'two.db'}"), am_config(monkeypatch))
    post(one, [("/alerts/alertmanager", AM, TOKEN), ("/alerts/nagios", AM, TOKEN)])
    post(two, [("/alerts/alertmanager", AM, {})])
    first, second = _scrape(one), _scrape(two)
    assert (first[_received("alertmanager", "firing")],
            second[_received("alertmanager", "firing")]) == (1, 0)
    assert (first[_rejected("unknown", "404")], second[_rejected("unknown", "404")]) == (1, 0)
    assert (first[_rejected("alertmanager", "401")],
            second[_rejected("alertmanager", "401")]) == (0, 1)
    assert b"firelane_" not in generate_latest(REGISTRY)


def test_insecure_mode_and_sns_subscription(sqlite_url: str) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return b""

    store = open_store(sqlite_url)
    app = create_app(store, IntakeConfig(), insecure=True, fetch_cert=fetch)
    generic = json.dumps({"title": "Queue stuck", "severity": "p1", "service": "orders"})
    sub = {"Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t",
           "TopicArn": "arn:aws:sns:eu-west-1:1:t", "Message": "confirm", "Timestamp": "x",
           "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"}
    ok, confirm = post(app, [("/alerts/generic", generic.encode(),
                               {"content-type": "application/json"}),
                              ("/alerts/cloudwatch", json.dumps(sub).encode(),
                               {"content-type": "text/plain; charset=UTF-8"})])
    assert ok.status_code == 202 and store.get_incident("INC-1").severity == "SEV1"
    assert confirm.status_code == 202 and confirm.json()["alerts"] == []
    assert fetched == [sub["SubscribeURL"]]


def test_config_file_errors_name_the_line(tmp_path: Path) -> None:
    from firelane.errors import ConfigError

    path = tmp_path / "intake.yaml"
    path.write_text("sources:\n  alertmanager:\n    bearer_tokn: {env: X}\n")
    with pytest.raises(ConfigError, match=r"intake.yaml:3 sources.alertmanager.bearer_tokn: "
                                          r"unknown key 'bearer_tokn'; did you mean"):
        load_intake_config(path)
    path.write_text("sources:\n  alertmanager:\n    bearer_token: {env: NOT_SET_ANYWHERE}\n")
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE is not set"):
        load_intake_config(path).source_configs()
