"""The intake over HTTP under fuzzed requests: bodies (random JSON, bytes, deeply nested and huge
JSON, thousands of alerts), headers, content types and text encodings, for every source.

Each source gets `FIRELANE_FUZZ_EXAMPLES` cases (1,000 in `make test`, 10,000 in
`make test-fuzz`) through the real app: never a 5xx, every answer JSON, never an ERROR log
record (an unhandled exception is one), and no request makes the intake hold more than 32 times
the body limit (traced allocations above what was held before the request). A client that goes
away mid-body, and bodies over the limit (declared or streamed), are refused on every body route
without an ERROR record. Fuzzed paths and headers never add a series to `/metrics` or make it
unparsable; an unknown source is a 404 that moves only `source="unknown"`.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firelane.store import open_store
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef, SourceSettings
from integrations.alerts import SOURCES
from tests.helpers import ErrorRecords, Series, collect_errors, counted, scrape_page
from tests.test_alert_sources import JSON_VALUES

EXAMPLES = int(os.environ.get("FIRELANE_FUZZ_EXAMPLES", "1000"))
LIMIT = 1 << 20
MEMORY_BOUND = 32 * LIMIT
ALERT = {"status": "firing", "labels": {"alertname": "Fuzz", "severity": "critical"},
         "annotations": {"summary": "fuzz"}, "title": "fuzz", "fingerprint": "fuzz"}

CONTENT_TYPES = st.sampled_from([
    None, "application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
    "application/vnd.api+json", "text/plain", "text/plain; charset=utf-16",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/html",
    "application/json; charset=latin-1", ";;;", "\x7f"])
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1", "utf-8-sig"])


def _deep(depth: int, opener: str) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


BODIES = st.one_of(
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=256),
    st.tuples(JSON_VALUES, ENCODINGS).map(lambda p: json.dumps(p[0], ensure_ascii=False)
                                          .encode(p[1], errors="replace")),
    st.tuples(st.integers(1, 200_000), st.sampled_from(["[", '{"a":'])).map(
        lambda p: _deep(*p)),
    st.integers(0, 3000).map(lambda n: json.dumps({"version": "4", "alerts": [ALERT] * n})
                             .encode()),
    st.integers(LIMIT - 64, LIMIT + 64).map(
        lambda n: (b'{"alerts": [{"labels": {"a": "' + b"x" * n + b'"}}]}')),
    st.just(codecs.BOM_UTF8 + json.dumps({"alerts": [ALERT]}).encode()),
)
HEADERS = st.dictionaries(
    st.sampled_from(["authorization", "x-pagerduty-signature", "x-grafana-alerting-signature",
                     "x-grafana-alerting-timestamp", "x-amz-sns-message-type",
                     "content-encoding", "x-forwarded-for", "x-request-id"]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=80),
    max_size=4)


@pytest.fixture
def errors() -> Iterator[ErrorRecords]:
    with collect_errors() as handler:
        yield handler


def _apps(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    monkeypatch.setenv("FUZZ_TOKEN", "fuzz-token-0123456789")
    token = SourceSettings(bearer_token=SecretRef(env="FUZZ_TOKEN"))
    open_app = create_app(open_store(f"sqlite:///{tmp / 'open.db'}"),
                          IntakeConfig(max_body_bytes=LIMIT), insecure=True)
    secured = create_app(open_store(f"sqlite:///{tmp / 'secured.db'}"), IntakeConfig(
        max_body_bytes=LIMIT, sources={s: token for s in SOURCES if s != "cloudwatch"}),
        fetch_cert=lambda url: b"not a certificate")
    return open_app, secured


@pytest.mark.parametrize("source", SOURCES)
def test_fuzzed_requests_never_5xx_never_log_errors_memory_bounded(
        source: str, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch, errors: ErrorRecords) -> None:
    apps = _apps(tmp_path_factory.mktemp(f"fuzz-{source}"), monkeypatch)
    loop = asyncio.new_event_loop()
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://intake") for app in apps]
    seen: dict[int, int] = {}
    peaks: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=BODIES, content_type=CONTENT_TYPES, headers=HEADERS, secured=st.booleans())
    def case(body: bytes, content_type: str | None, headers: dict[str, str],
             secured: bool) -> None:
        sent = dict(headers)
        if content_type is not None:
            sent["content-type"] = content_type
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        response = loop.run_until_complete(clients[secured].post(
            f"/alerts/{source}", content=body, headers=sent))
        peaks.append(tracemalloc.get_traced_memory()[1] - before)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, response.text[:300])
        response.json()
        assert not errors.records, errors.records[0].getMessage()

    tracemalloc.start()
    try:
        case()
    finally:
        tracemalloc.stop()
        for client in clients:
            loop.run_until_complete(client.aclose())
        loop.close()
    assert sum(seen.values()) >= EXAMPLES
    assert any(code == 202 for code in seen) or source in ("cloudwatch", "datadog",
                                                         "pagerduty"), seen
    assert any(400 <= code < 500 for code in seen), seen
    peak = max(peaks)
    assert peak < MEMORY_BOUND, f"one request allocated up to {peak / 2**20:.0f} MiB"
    print(f"\nfuzz {source}: {sum(seen.values())} requests, statuses {sorted(seen.items())}, "
          f"most memory one request held {peak / 2**20:.1f} MiB")


async def _raw(app: Any, path: str, messages: list[dict[str, Any]],
               headers: list[tuple[bytes, bytes]]) -> int:
    """Drive the ASGI app with exactly these request messages; the response status."""
    return (await _exchange(app, "POST", path, messages, headers))[0]


async def _exchange(app: Any, method: str, path: str, messages: list[dict[str, Any]],
                    headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """Drive the ASGI app with exactly these request messages; the response status and body."""
    queue = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": headers, "client": ("127.0.0.1", 1),
             "server": ("intake", 80), "root_path": ""}
    await app(scope, receive, send)
    status = int(next(m["status"] for m in sent if m["type"] == "http.response.start"))
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_client_gone_mid_body_or_over_the_limit_is_refused_not_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors: ErrorRecords) -> None:
    monkeypatch.setenv("SLACK_SIGNING", "slack-signing-0123456789")
    store = open_store(f"sqlite:///{tmp_path / 'gone.db'}")
    app = create_app(store, IntakeConfig(max_body_bytes=LIMIT, slack_signing_secret=SecretRef(
        env="SLACK_SIGNING")), insecure=True)
    json_type = (b"content-type", b"application/json")
    gone: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"alerts": [', "more_body": True},
        {"type": "http.disconnect"}]
    chunk: dict[str, Any] = {"type": "http.request", "body": b"x" * (LIMIT // 4),
                             "more_body": True}
    endless = [chunk] * 8 + [{"type": "http.request", "body": b"", "more_body": False}]
    for path in ("/alerts/alertmanager", "/alerts/generic", "/slack/interactions"):
        assert asyncio.run(_raw(app, path, gone, [json_type, (b"content-length", b"900")])) \
            == 400, path
        assert asyncio.run(_raw(app, path, endless, [json_type])) == 413, path
        assert asyncio.run(_raw(app, path, [], [(b"content-length", b"%d" % (LIMIT + 1))])) \
            == 413, path
    assert not errors.records, errors.records[0].getMessage()
    assert store.list_incidents() == []


SEGMENTS = st.one_of(
    st.text(max_size=80),
    st.text(alphabet='"\\\n\r{}=,# %/\x00\u202e\u2028', max_size=40),
    st.binary(max_size=40).map(lambda b: "".join(f"%{x:02X}" for x in b)),
    st.binary(max_size=40).map(lambda b: unquote("".join(f"%{x:02X}" for x in b),
                                                 errors="replace")),
    st.integers(1000, 30_000).map(lambda n: 'nope"}\nfake_metric 1 ' * (n // 20)),
    st.sampled_from([*SOURCES, "unknown", "ALERTMANAGER", " alertmanager", "generic\n"]),
)
RAW_HEADERS = st.lists(st.tuples(
    st.one_of(st.sampled_from([b"authorization", b"content-type", b"content-length",
                               b"x-amz-sns-message-type", b"x-pagerduty-signature", b"host"]),
              st.binary(min_size=1, max_size=20)),
    st.binary(max_size=200)), max_size=6)
UNKNOWN_404: Series = ("firelane_alerts_rejected_total", (("source", "unknown"),
                                                          ("status", "404")))


def test_fuzzed_paths_and_headers_never_add_a_series_or_break_the_metrics_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors: ErrorRecords) -> None:
    apps = _apps(tmp_path, monkeypatch)
    loop = asyncio.new_event_loop()

    def scrape(app: Any) -> dict[Series, float]:
        status, page = loop.run_until_complete(_exchange(app, "GET", "/metrics", [], []))
        assert status == 200
        return scrape_page(page.decode())

    last = [counted(scrape(app)) for app in apps]
    series = [set(scrape(app)) for app in apps]
    assert series[0] == series[1]
    body = json.dumps({"alerts": [ALERT]}).encode()
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(segment=SEGMENTS, headers=RAW_HEADERS, secured=st.booleans())
    def case(segment: str, headers: list[tuple[bytes, bytes]], secured: bool) -> None:
        app, before = apps[secured], last[secured]
        status, answer = loop.run_until_complete(_exchange(
            app, "POST", f"/alerts/{segment}",
            [{"type": "http.request", "body": body, "more_body": False}], headers))
        seen[status] = seen.get(status, 0) + 1
        after = scrape(app)
        last[secured] = counted(after)
        assert set(after) == series[secured]
        assert status < 500, (status, answer[:300])
        if segment in SOURCES:
            return
        moved = {k: v - before[k] for k, v in counted(after).items() if v != before[k]}
        assert status != 202 and moved in ({}, {UNKNOWN_404: 1}), (status, moved)
        if status == 404 and b"unknown source" in answer:
            assert moved == {UNKNOWN_404: 1}
            assert len(answer) < 300 and json.loads(answer)["error"]
        assert not errors.records, errors.records[0].getMessage()

    try:
        case()
    finally:
        loop.close()
    assert seen.get(404, 0) > EXAMPLES // 3, seen
    print(f"\nfuzzed paths: {sum(seen.values())} requests, statuses {sorted(seen.items())}")
