"""`prometheus.graph` against a real Prometheus scraping an exporter the test drives: the chart
has the points the range asks for, the key times where they belong, escaped labels, a clear
"no data" chart; a stopped, slow or refusing Prometheus fails the step in bounded time; the
chart reaches a sandbox war room as a PNG and the incident report embeds it."""

from __future__ import annotations

import asyncio
import math
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from bench.common import free_port
from firelane.errors import VendorRejected, VendorUnavailable
from firelane.registry import ActionContext, call_action, get_action
from integrations.common import forget_blocks
from integrations.prometheus.chart import Chart, Layout, draw, nice_ticks
from integrations.prometheus.client import RangeSeries
from integrations.prometheus.graph import plan_range
from integrations.prometheus.png import PNG_MAGIC, chromium
from integrations.sandbox import Sandbox
from tests.prometheus_fixtures import (
    Exporter,
    PrometheusProcess,
    local_server,
    make_ctx,
    needs_prometheus,
)

pytestmark = [pytest.mark.usefixtures("prefect_api", "fast_retries"), pytest.mark.timeout(120)]

RATIO = "firelane_test_ratio"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Short retries, and no incident store unless a test sets one (`firelane_env`)."""
    monkeypatch.setenv("FIRELANE_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.db'}")
    monkeypatch.setenv("FIRELANE_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("FIRELANE_RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("FIRELANE_RETRY_SETTLE_SECONDS", "0.05")


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    served = Exporter()
    yield served
    served.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[PrometheusProcess]:
    proc = PrometheusProcess(tmp_path_factory.mktemp("prometheus-graph"),
                             [f"127.0.0.1:{exporter.port}"])
    yield proc
    proc.stop()


def connection(name: str, url: str, ctx: ActionContext | None = None,
               **fields: Any) -> ActionContext:
    """Save a `PrometheusConnection` block as `name`; a context whose runbook names it."""
    from integrations.prometheus.block import PrometheusConnection

    PrometheusConnection(url=url, **fields).save(name, overwrite=True)
    forget_blocks()
    if ctx is None:
        return make_ctx(name)
    return replace(ctx, credentials={**ctx.credentials, "prometheus": name})


def run(inputs: dict[str, Any], ctx: ActionContext) -> Any:
    return asyncio.run(call_action("prometheus.graph", inputs, ctx))


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def vertices(svg: str) -> list[int]:
    """Per drawn series, how many points its path has."""
    return [len([p for p in (path.get("d") or "").split() if p[0] in "ML"])
            for path in parse(svg).iter(f"{SVG}path") if path.get("class") == "series"]


def test_the_step_keeps_points_under_the_limit() -> None:
    start = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    for span, most in [(3600, 300), (4 * 3600, 300), (90, 300), (600, 10), (7 * 86400, 1000)]:
        step = plan_range(start, start + timedelta(seconds=span), most)
        points = int(span // step) + 1
        assert points <= most and (step == 1.0 or points >= most - 2), (span, most, step)
    assert get_action("prometheus.graph").read_only is False, "posting to Slack is an effect"
    assert nice_ticks(0, 0.93) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_an_empty_range_fails_clearly_and_is_not_retried() -> None:
    from pydantic import ValidationError

    from firelane.errors import ActionError

    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(ActionError, match="nothing to draw") as caught:
        run({"query": "up", "start": later.isoformat()}, make_ctx("prom-unused"))
    assert not caught.value.retryable
    with pytest.raises(ValidationError, match="end must be after start"):
        run({"query": "up", "start": later.isoformat(), "end": later.isoformat()},
            make_ctx("prom-unused"))


def test_more_than_ten_series_draw_the_ten_highest_and_say_so() -> None:
    series = [RangeSeries({"code": str(500 + n)}, [(0.0, float(n)), (10.0, float(n))])
              for n in range(13)]
    svg = draw(Chart(series=series, start=0, end=10, step=10, title="t"))
    assert len(vertices(svg)) == 10
    legend = [t.text for g in parse(svg).iter(f"{SVG}g") if g.get("class") == "legend"
              for t in g.iter(f"{SVG}text")]
    assert legend[0] == 'code="512"' and 'code="500"' not in legend
    assert "and 3 more series not drawn" in svg


@needs_prometheus
def test_a_scraped_series_has_the_points_and_marks_where_they_belong(
        exporter: Exporter, prometheus: PrometheusProcess) -> None:
    exporter.set(web=0.5, api=0.25)
    prometheus.wait_for(f"sum({RATIO})", 0.75)
    t0 = float(math.ceil(time.time()))
    time.sleep(max(0.0, t0 + 6.5 - time.time()))
    ctx = connection("prom-graph", prometheus.url)
    marks = {"declared": t0 + 1, "mitigated": t0 + 4.5, "later": t0 + 60}
    out = run({"query": RATIO, "start": iso(t0), "end": iso(t0 + 6), "unit": "ratio",
               "marks": {k: iso(v) for k, v in marks.items()}}, ctx)
    assert (out.series, out.drawn, out.step_seconds) == (2, 2, 1.0)
    assert out.points == 14 and vertices(out.svg) == [7, 7]
    assert out.marks_from == "inputs" and set(out.marks) == {"declared", "mitigated"}

    root = parse(out.svg)
    layout = Layout()
    placed = {g.get("data-name"): float(line.get("x1", "nan"))
              for g in root.iter(f"{SVG}g") if g.get("class") == "mark"
              for line in g.iter(f"{SVG}line")}
    assert placed == {"declared": pytest.approx(layout.x(t0 + 1, t0, t0 + 6), abs=0.01),
                      "mitigated": pytest.approx(layout.x(t0 + 4.5, t0, t0 + 6), abs=0.01)}
    assert placed["declared"] == pytest.approx(76 + 860 / 6, abs=0.01)
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "ratio" in texts and any(t.startswith("time (UTC, ") for t in texts)
    assert {t for t in texts if t.startswith(RATIO + "{")} == {
        f'{RATIO}{{service="web"}}', f'{RATIO}{{service="api"}}'}
    [event] = [e for e in ctx.events if e.kind == "prometheus.graph"]
    assert event.details["points"] == 14

    wide = run({"query": RATIO, "start": iso(t0), "end": iso(t0 + 6), "max_points": 10}, ctx)
    assert wide.step_seconds == 1.0 and wide.points == 14
    coarse = run({"query": f'{RATIO}{{service="web"}}', "start": iso(t0 - 3600),
                  "end": iso(t0 + 6), "max_points": 50}, ctx)
    assert coarse.step_seconds == pytest.approx(3606 / 49, abs=0.001)
    assert coarse.points <= 50


@needs_prometheus
def test_labels_and_titles_are_escaped_and_nothing_is_scripted(
        exporter: Exporter, prometheus: PrometheusProcess) -> None:
    exporter.set(web=0.5)
    prometheus.wait_for(RATIO, 0.5)
    ctx = connection("prom-graph", prometheus.url)
    evil = "<script>alert(1)</script>"
    web = f'{RATIO}{{service="web"}}'
    out = run({"query": f'label_replace({web}, "service", "{evil}", "", "")',
               "title": f"{evil} & co", "unit": f'"{evil}', "start": iso(time.time() - 5)},
              ctx)
    assert "<script" not in out.svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in out.svg
    root = parse(out.svg)
    assert {el.tag.removeprefix(SVG) for el in root.iter()} <= {
        "svg", "g", "rect", "line", "path", "text"}
    assert not [a for el in root.iter() for a in el.attrib if a.startswith("on")]
    [legend] = [t.text or "" for g in root.iter(f"{SVG}g") if g.get("class") == "legend"
                for t in g.iter(f"{SVG}text")]
    assert 'service="<script>alert(1)' in legend, "the label is shown, as text"


@needs_prometheus
def test_no_series_draws_a_no_data_chart(prometheus: PrometheusProcess) -> None:
    ctx = connection("prom-graph", prometheus.url)
    out = run({"query": f'{RATIO}{{service="nowhere"}}', "start": iso(time.time() - 60)}, ctx)
    assert (out.series, out.drawn, out.points) == (0, 0, 0)
    assert "No data: the query returned no series between" in out.svg
    assert vertices(out.svg) == []
    assert next(e.summary for e in ctx.events if e.kind == "prometheus.graph").endswith(
        "(no data)")


@needs_prometheus
def test_a_promql_error_fails_the_step_with_prometheus_message(
        prometheus: PrometheusProcess) -> None:
    ctx = connection("prom-graph", prometheus.url)
    with pytest.raises(VendorRejected, match="parse error") as caught:
        run({"query": "sum(rate(x[5m]"}, ctx)
    assert caught.value.status == 400 and not caught.value.retryable


def test_a_stopped_or_slow_prometheus_fails_the_step_in_bounded_time() -> None:
    ctx = connection("prom-graph-down", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(VendorUnavailable, match="cannot reach"):
        run({"query": "up"}, ctx)
    with local_server(delay=30) as slow:
        ctx = connection("prom-graph-slow", slow.url, timeout_seconds=0.5)
        started = time.monotonic()
        with pytest.raises(VendorUnavailable, match=r"no answer .*query_range within 0\.5 s"):
            run({"query": "up"}, ctx)
        assert time.monotonic() - started < 5
        assert [e.kind for e in ctx.events].count("integration.retry") == 1


def test_an_unreadable_store_falls_back_to_the_declaration_and_the_marks_input() -> None:
    answer = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    with local_server(body=answer) as fake:
        ctx = connection("prom-graph-fake", fake.url)
        out = run({"query": "up"}, ctx)
        assert out.marks_from == "inputs"
        assert out.marks == {"declared": ctx.incident.created_at}
        assert out.start == ctx.incident.created_at - timedelta(minutes=30)
        assert [e for e in ctx.events if e.kind == "prometheus.graph_marks"]

        now = datetime.now(UTC)
        declared, resolved = now - timedelta(minutes=40), now - timedelta(minutes=30)
        past = run({"query": "up", "marks": {"declared": declared.isoformat(),
                                             "resolved": resolved.isoformat()}}, ctx)
        form = parse_qs(fake.requests[-1][1])
    assert past.start == declared - timedelta(minutes=30)
    assert past.end == resolved + timedelta(minutes=10), "ends 10 min after the resolution"
    assert float(form["start"][0]) == pytest.approx(past.start.timestamp(), abs=0.001)
    assert float(form["end"][0]) == pytest.approx(past.end.timestamp(), abs=0.001)
    assert float(form["step"][0]) == past.step_seconds == pytest.approx(3000 / 299, abs=0.002)
    assert set(past.marks) == {"declared", "resolved"}


@needs_prometheus
def test_the_chart_reaches_a_sandbox_war_room_as_a_png_once(
        sandbox: Sandbox, exporter: Exporter, prometheus: PrometheusProcess) -> None:
    from tests.sandbox_fixtures import make_ctx as sandbox_ctx

    if chromium() is None:
        if os.environ.get("FIRELANE_REQUIRE_BROWSER"):
            pytest.fail("Chromium is missing but FIRELANE_REQUIRE_BROWSER is set")
        pytest.skip("Debian's chromium renders the PNG (make test installs it)")

    exporter.set(web=0.5)
    prometheus.wait_for(RATIO, 0.5)
    room = asyncio.run(call_action("slack.create_channel", {}, sandbox_ctx("room")))
    claimed: set[str] = set()

    async def claim(name: str) -> bool:
        if name in claimed:
            return False
        claimed.add(name)
        return True

    ctx = replace(connection("prom-graph-slack", prometheus.url, sandbox_ctx("graph")),
                  claim_effect=claim)
    out = run({"query": RATIO, "start": iso(time.time() - 30), "channel": room.id,
               "include_png": True}, ctx)
    assert out.posted_as == "png" and out.file_id and out.png_base64
    stored = sandbox.state.slack_files[out.file_id]
    assert stored["name"] == "inc-7-graph.png" and stored["channels"] == [room.id]
    assert stored["bytes"].startswith(PNG_MAGIC) and len(stored["bytes"]) > 5000
    again = run({"query": RATIO, "start": iso(time.time() - 30), "channel": room.id},
                replace(ctx, events=[], attempt=2))
    assert again.file_id is None and len(sandbox.state.slack_files) == 1


@needs_prometheus
@pytest.mark.parametrize("browser", ["missing", "failing"])
def test_without_a_working_chromium_the_svg_goes_to_the_war_room(
        sandbox: Sandbox, exporter: Exporter, prometheus: PrometheusProcess,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, browser: str) -> None:
    from tests.sandbox_fixtures import make_ctx as sandbox_ctx

    exporter.set(web=0.5)
    prometheus.wait_for(RATIO, 0.5)
    room = asyncio.run(call_action("slack.create_channel", {}, sandbox_ctx("room")))
    ctx = connection("prom-graph-slack", prometheus.url, sandbox_ctx("graph"))
    if browser == "failing":
        fake = tmp_path / "chromium"
        fake.write_text("#!/bin/sh\nexit 3\n")
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    out = run({"query": RATIO, "start": iso(time.time() - 30), "channel": room.id}, ctx)
    assert out.posted_as == "svg" and out.file_id and out.png_base64 is None
    stored = sandbox.state.slack_files[out.file_id]
    assert stored["name"] == "inc-7-graph.svg" and stored["bytes"] == out.svg.encode()
    [why] = [e.summary for e in ctx.events if e.kind == "prometheus.graph_png"]
    assert ("not installed" if browser == "missing" else "exited with 3") in why


RUNBOOK = """version: 1
name: graph-ratio
credentials: {prometheus: prom-graph-engine}
steps:
  - {id: graph, uses: prometheus.graph, with: {query: firelane_test_ratio, unit: ratio,
     before_seconds: 60}}
"""


@needs_prometheus
def test_the_report_of_an_incident_with_a_graph_step_embeds_the_chart(
        firelane_env: str, exporter: Exporter, prometheus: PrometheusProcess) -> None:
    from firelane.models import IncidentStatus
    from firelane.store import open_store
    from flows.records.report import build_report, render
    from flows.runs.run_runbook import run_runbook_result
    from tests.helpers import prepare

    store = open_store(firelane_env)
    connection("prom-graph-engine", prometheus.url)
    exporter.set(web=0.5, api=0.25)
    prometheus.wait_for(f"sum({RATIO})", 0.75)
    rc = prepare(store, RUNBOOK)
    time.sleep(1.0)
    store.set_status(rc.incident.id, IncidentStatus.ACKNOWLEDGED, actor="alice")
    [acked] = [e.at for e in store.timeline(rc.incident.id) if e.kind == "incident.status"]
    time.sleep(1.0)
    assert asyncio.run(run_runbook_result(rc.execution.id))["status"] == "succeeded"
    outputs = store.step_records(rc.execution.id)["graph"].outputs or {}
    assert outputs["marks_from"] == "store"
    assert set(outputs["marks"]) == {"declared", "acknowledged"}
    assert datetime.fromisoformat(outputs["marks"]["acknowledged"]) == acked
    start, end = (datetime.fromisoformat(outputs[k]).timestamp() for k in ("start", "end"))
    [x] = [float(line.get("x1", "nan")) for g in parse(outputs["svg"]).iter(f"{SVG}g")
           if g.get("data-name") == "acknowledged" for line in g.iter(f"{SVG}line")]
    assert x == pytest.approx(Layout().x(acked.timestamp(), start, end), abs=0.01)
    report = build_report(store, store.get_incident(rc.incident.id))
    html = render(report, "html")
    assert [g.step_id for g in report.graphs] == ["graph"]
    assert outputs["svg"] in html and html.count('class="firelane-graph"') == 1
    assert "<h2>Graphs</h2>" in html and 'data-name="declared"' in html
    assert "`firelane_test_ratio`: 2 series" in render(report, "md")


def test_a_tampered_chart_is_left_out_of_the_report() -> None:
    from flows.records.graphs import safe_svg

    chart = draw(Chart(series=[RangeSeries({}, [(0.0, 1.0)])], start=0, end=10, step=1,
                       title="ok"))
    assert safe_svg(chart) == chart
    assert safe_svg(chart.replace("<g ", '<g onload="alert(1)" ', 1)) is None
    assert safe_svg(chart.replace("</svg>", "<script>alert(1)</script></svg>")) is None
    assert safe_svg(chart.replace("</svg>", '<a href="javascript:x">x</a></svg>')) is None
    assert safe_svg('<!DOCTYPE svg [<!ENTITY x "y">]>' + chart) is None
    assert safe_svg("dry-run-svg") is None and safe_svg(None) is None


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" in status.read_text()
    except OSError:
        return True


def test_a_hanging_chromium_is_killed_at_its_deadline(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    from integrations.prometheus.png import PngUnavailable, svg_to_png

    pids = tmp_path / "pids"
    fake = tmp_path / "chromium"
    fake.write_text(f"#!/bin/sh\n/bin/sleep 60 &\necho $! > {pids}\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(PngUnavailable, match=r"within 0\.5 s"):
        asyncio.run(svg_to_png("<svg/>", 10, 10, timeout_seconds=0.5))
    assert time.monotonic() - started < 5
    child = int(pids.read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child), "the renderer's whole process group is killed"
