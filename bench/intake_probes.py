"""The intake benchmark's probes: alerts whose side effects are timed, each with an id unique to
this run, this measure and this probe, carried in its name to what the sandbox observes.

A probe's name is `<run>-<tag>-<i>`; the alert's summary, so the page's title, the ticket's
summary and the meeting's topic end with it, and the floor's Slack channel is named by it (the
runbook's channel is `inc-<number>-web`, matched by the incident number the intake answered).
Latencies are computed once a measure is over, from every arrival seen, through
`bench.common.match_probes`: a probe that never arrived, arrived twice or before it was sent, or
an arrival of this measure that no probe accounts for, aborts the run.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import match_probes
from bench.intake_support import Arrivals

__all__ = ["RUN", "TOKEN", "Sent", "alert", "alert_group", "floor", "naive", "pages", "sequential",
           "war_rooms"]

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
RUN = uuid.uuid4().hex[:12]
_CHANNEL = re.compile(r"inc-(\d+)-web")


@dataclass
class Sent:
    """The probes of one measure: their id prefix, send times and incident numbers."""

    prefix: str
    times: dict[str, float] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)

    def name(self, i: int) -> str:
        """The unique id of probe `i`."""
        return f"{self.prefix}{i}"


def measure(tag: str) -> Sent:
    """A new measure's probe set, with ids unique to this run and `tag`."""
    return Sent(prefix=f"{RUN}-{tag}-")


def alert(name: str, fingerprint: str) -> bytes:
    """An Alertmanager webhook body with one firing alert summarised as `name`."""
    return alert_group([(name, fingerprint)])


def alert_group(named: list[tuple[str, str]], group_key: str = "") -> bytes:
    """An Alertmanager webhook body with one firing alert per (summary, fingerprint), as
    Alertmanager sends a notification group (`group_key`: its groupKey, none when empty)."""
    body: dict[str, object] = {"version": "4", "status": "firing", "alerts": [{
        "status": "firing", "labels": {"alertname": "Bench", "instance": fingerprint,
                                       "severity": "critical", "service": "web"},
        "annotations": {"summary": name}, "fingerprint": fingerprint,
        "startsAt": "2026-11-23T00:00:00Z"} for name, fingerprint in named]}
    if group_key:
        body["groupKey"] = group_key
    return json.dumps(body).encode()


async def sequential(intake: str, arrivals: Arrivals, n: int, tag: str,
                     war_room: str | None = None, spacing: float = 0.0) -> Sent:
    """Send `n` probes one at a time, each once the previous one's page (and, given the
    store's URL as `war_room`, its war room) is seen; returns what was sent, for `pages` and
    `war_rooms` to match. The incident's number is read from the store, since the intake's
    incident routes need an API token."""
    sent = measure(tag)
    store = None
    if war_room is not None:
        from firelane.store import open_store

        store = open_store(war_room, migrate=False)
    async with httpx.AsyncClient(base_url=intake) as client:
        for i in range(n):
            name = sent.name(i)
            t0 = time.time()
            resp = await client.post("/alerts/alertmanager", content=alert(name, name),
                                     headers={"authorization": f"Bearer {TOKEN}",
                                              "content-type": "application/json"})
            resp.raise_for_status()
            sent.times[name] = t0
            await arrivals.wait({"pagerduty.incident": f"] {name}"})
            if store is not None:
                incident = resp.json()["alerts"][0]["incident_id"]
                number = store.get_incident(incident).number
                sent.numbers[name] = number
                await arrivals.wait({"pagerduty.incident": f"] {name}",
                                     "jira.issue": f"] {name}",
                                     "zoom.meeting": f"INC-{number} {name}",
                                     "slack.channel": f"inc-{number}-web"})
            await asyncio.sleep(spacing)
    if store is not None:
        store.close()
    return sent


async def pages(arrivals: Arrivals, sent: Sent, what: str) -> list[float]:
    """Alert → page (ms) of every probe in `sent`, checked by `match_probes`."""
    await arrivals.poll()
    got = match_probes(what, sent.times, arrivals.probes("pagerduty.incident", sent.prefix))
    return [got[name] for name in sent.times]


async def war_rooms(arrivals: Arrivals, sent: Sent, what: str) -> list[float]:
    """Alert → the last of page, ticket, meeting and channel (ms) per probe, each checked."""
    await arrivals.poll()
    each = [match_probes(f"{what} ({kind})", sent.times, arrivals.probes(kind, sent.prefix))
            for kind in ("pagerduty.incident", "jira.issue", "zoom.meeting")]
    by_number = {number: name for name, number in sent.numbers.items()}
    channels = [(by_number[int(m.group(1))], float(a["at"])) for a in arrivals.seen
                if a["kind"] == "slack.channel" and (m := _CHANNEL.fullmatch(a["key"]))
                and int(m.group(1)) in by_number]
    each.append(match_probes(f"{what} (slack.channel)", sent.times, channels))
    return [max(e[name] for e in each) for name in sent.times]


async def naive(store_url: str, sandbox: tuple[str, str], arrivals: Arrivals,
                n: int) -> list[float]:
    """Declare, then `run_deployment` to the served naive deployment: alert → page (ms)."""
    from prefect.deployments import run_deployment

    import integrations  # noqa: F401  (registers the actions the runbook uses)
    from firelane.inputs import new_execution
    from firelane.loader import load_runbook
    from firelane.models import IncidentDraft, Severity
    from firelane.store import open_store

    store = open_store(store_url)
    loaded = load_runbook(ROOT / "runbooks" / "declare-incident.yaml")
    sent = measure("naive")
    for i in range(n):
        name = sent.name(i)
        t0 = time.time()
        incident = store.declare_incident(IncidentDraft(title=name, severity=Severity.SEV1,
                                                        service="web"))
        execution = store.create_execution(new_execution(loaded, incident, {}, sandbox=True))
        await run_deployment("run-runbook/naive",  # type: ignore[misc]
                             parameters={"execution_id": execution.id}, timeout=0)
        sent.times[name] = t0
        await arrivals.wait({"pagerduty.incident": f"] {name}"}, timeout=60)
    return await pages(arrivals, sent, "naive deployment alert → page")


async def floor(sandbox: str, ca: str, arrivals: Arrivals, n: int) -> list[float]:
    """The four creating calls straight to the sandbox, concurrently: send → last (ms)."""
    sent = measure("floor")
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as c:
        token = (await c.post(f"{sandbox}/zoom/oauth/token", auth=("a", "b"), params={
            "grant_type": "account_credentials", "account_id": "x"})).json()["access_token"]
        for i in range(n):
            name = sent.name(i)
            t0 = time.time()
            sent.times[name] = t0
            await asyncio.gather(
                c.post(f"{sandbox}/jira/rest/api/2/issue", auth=("a", "b"), json={"fields": {
                    "project": {"key": "OPS"}, "summary": f"[SEV1] {name}",
                    "issuetype": {"name": "Incident"}}}),
                c.post(f"{sandbox}/pagerduty/v2/enqueue", json={
                    "routing_key": "R0", "event_action": "trigger", "dedup_key": name,
                    "payload": {"summary": f"[SEV1] {name}", "source": "web",
                                "severity": "critical"}}),
                c.post(f"{sandbox}/slack/api/conversations.create",
                       headers={"authorization": "Bearer xoxb-1"}, data={"name": name}),
                c.post(f"{sandbox}/zoom/v2/users/me/meetings",
                       headers={"authorization": f"Bearer {token}"}, json={"topic": name}))
            await arrivals.wait({"pagerduty.incident": f"] {name}", "jira.issue": f"] {name}",
                                 "zoom.meeting": name, "slack.channel": name})
    await arrivals.poll()
    each = [match_probes(f"floor ({kind})", sent.times, arrivals.probes(kind, sent.prefix))
            for kind in ("pagerduty.incident", "jira.issue", "zoom.meeting", "slack.channel")]
    return [max(e[name] for e in each) for name in sent.times]
