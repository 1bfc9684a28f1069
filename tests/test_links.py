"""The incident knows its own war room: the ticket, page, channel, bridge and flow run an
execution creates are recorded on the incident as they are created, once, and every surface
(`incidents show`, `GET /incidents/{ref}`, the Markdown and HTML reports, the postmortem)
links to them; sandbox links say they are the sandbox's."""

from __future__ import annotations

import asyncio
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from firelane.links import LINK_EVENT, Link, incident_links
from firelane.models import Incident, Severity
from firelane.store import open_store
from flows.cli import main
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig
from flows.records.report import build_report, render
from integrations.sandbox import Sandbox

INCIDENT = Path(__file__).resolve().parent.parent / "examples" / "incident.json"
KINDS = {"ticket", "page", "channel", "bridge", "flow_run"}


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _hrefs(html: str) -> list[str]:
    parser = _Anchors()
    parser.feed(html)
    return parser.hrefs


@pytest.mark.usefixtures("prefect_api")
def test_declare_incident_links_its_war_room_everywhere_once(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "declare-incident", "--incident", str(INCIDENT), "--sandbox"]) == 0
    store = open_store(firelane_env)
    [incident] = store.list_incidents()
    [execution] = store.list_executions(incident.id)
    links = incident.links
    assert set(links) == KINDS, links

    state = sandbox.state.dump()
    [issue_key] = state["jira_issues"]
    assert links["ticket"].endswith(f"/jira/browse/{issue_key}")
    [pd] = state["pd_incidents"].values()
    assert links["page"] == pd["html_url"] and "sandbox.pagerduty.local" in links["page"]
    [channel_id] = state["slack_channels"]
    assert links["channel"] == f"https://sandbox.slack.local/archives/{channel_id}"
    [meeting] = state["zoom_meetings"]
    assert links["bridge"] == meeting["join_url"]
    assert links["flow_run"].endswith(f"/runs/flow-run/{execution.flow_run_id}")
    assert links["flow_run"].startswith("http://127.0.0.1:")

    bookmarks = {b["title"]: b["link"] for b in state["slack_channels"][channel_id]["bookmarks"]}
    assert bookmarks.get("PagerDuty incident") == links["page"]
    assert bookmarks.get("Runbook run (Prefect)") == links["flow_run"]
    assert links["bridge"] in state["slack_channels"][channel_id]["topic"]["value"]

    capsys.readouterr()
    assert main(["incidents", "show", f"INC-{incident.number}"]) == 0
    shown = capsys.readouterr().out.splitlines()
    start = shown.index("  links")
    section = shown[start + 1:start + 1 + len(KINDS)]
    titles = ["Ticket", "Page", "Slack channel", "Video bridge", "Prefect flow run"]
    order = ["ticket", "page", "channel", "bridge", "flow_run"]
    for line, title, kind in zip(section, titles, order, strict=True):
        assert line.split()[:len(title.split())] == title.split(), line
        assert links[kind] in line and ("(sandbox)" in line) == (kind != "flow_run"), line

    reader, _ = store.create_token("links-reader", "read", "ann")

    async def get() -> httpx.Response:
        app = create_app(store, IntakeConfig(), insecure=True)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return await client.get(f"/incidents/INC-{incident.number}",
                                    headers={"authorization": f"Bearer {reader}"})

    body = asyncio.run(get()).json()
    assert body["links"] == links
    assert set(body["sandbox_links"]) == KINDS - {"flow_run"}

    page = tmp_path / "report.html"
    assert main(["timeline", f"INC-{incident.number}", "--format", "html", "--offline",
                 "--output", str(page)]) == 0
    hrefs = _hrefs(page.read_text(encoding="utf-8"))
    assert set(links.values()) <= set(hrefs), hrefs
    md = build_report(store, store.get_incident(incident.id))
    markdown, postmortem = render(md, "md"), render(md, "postmortem", items=[], alerts=0)
    for url in links.values():
        assert f"]({url})" in markdown and f"]({url})" in postmortem

    assert main(["resume", execution.id]) == 0
    again = store.get_incident(incident.id)
    assert again.links == links
    recorded = Counter(str(e.details["kind"]) for e in store.timeline(incident.id)
                       if e.kind == LINK_EVENT)
    assert recorded == Counter(KINDS), recorded


def test_links_are_escaped_and_only_http_urls_become_hyperlinks(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    from firelane.models import IncidentDraft

    inc = store.declare_incident(IncidentDraft(title="<b>x</b>", severity=Severity.SEV3,
                                               service="web"))
    tricky = 'https://jira.example.com/browse/OPS-1?a=1&b="><script>alert(1)</script>'
    assert store.record_link(inc.id, Link("ticket", tricky, "e1", "ticket"))
    assert not store.record_link(inc.id, Link("ticket", tricky + "2", "e1", "ticket"))
    store.set_link(inc.id, "bridge", "javascript:alert(1)")
    found = store.get_incident(inc.id)
    views = incident_links(found, store.timeline(inc.id))
    assert [(v.kind, v.url) for v in views] == [("ticket", tricky)]
    html = render(build_report(store, found), "html")
    assert "<script>alert(1)" not in html
    assert _hrefs(html) == [tricky]
    room = render(build_report(store, found), "md").split("## War room")[1].split("##")[0]
    assert "<script>" not in room and "javascript:" not in room and "%3Cscript%3E" in room


def test_incident_links_order_and_sandbox_marks() -> None:
    inc = Incident(title="t", severity=Severity.SEV2, service="web",
                   links={"flow_run": "http://ui/runs/flow-run/1", "ticket": "https://j/OPS-1",
                          "runbook_doc": "https://wiki/x"})
    events = [Link("ticket", "https://j/OPS-1", "e", "ticket", sandbox=True).event(inc.id)]
    views = incident_links(inc, events)
    assert [(v.kind, v.title, v.sandbox) for v in views] == [
        ("ticket", "Ticket", True), ("flow_run", "Prefect flow run", False),
        ("runbook_doc", "Runbook doc", False)]
