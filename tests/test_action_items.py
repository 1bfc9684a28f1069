"""Action items that get done: a Jira issue per item linked to the incident ticket, and
reminders on the right days (clock-controlled), never doubled by overlapping runs, escalated
when overdue, stopped when Jira says done, and continued after the incident is closed."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from firelane.models import IncidentStatus
from firelane.store import open_store
from firelane.timeparse import parse_time
from flows.cli import main
from flows.runs.action_items import Outcome, Policy, remind
from integrations.sandbox import Sandbox
from tests.sandbox_fixtures import make_ctx, run_action

INCIDENT = Path(__file__).resolve().parent.parent / "examples" / "incident.json"
pytestmark = pytest.mark.usefixtures("prefect_api")


def test_items_become_linked_jira_issues_and_are_chased_until_done(
        firelane_env: str, sandbox: Sandbox) -> None:
    assert main(["run", "declare-incident", "--incident", str(INCIDENT), "--sandbox"]) == 0
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set()), \
        "firelane run left SIGTERM blocked: every process started afterwards inherits it"
    store = open_store(firelane_env)
    [incident] = store.list_incidents()
    assert main(["action-items", "add", f"INC-{incident.number}", "Alert on queue depth",
                 "--owner", "bob@example.com", "--due", "2026-12-10T09:00Z"]) == 0
    [item] = store.list_action_items(incident.id)
    issue = sandbox.state.dump()["jira_issues"][item.external_key or ""]
    assert "firelane-action-item" in issue["fields"]["labels"]
    assert {"inward": item.external_key, "outward": "OPS-1", "type": "Relates"} in \
        sandbox.state.dump()["jira_links"]
    for status in (IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
        store.set_status(incident.id, status)

    due = parse_time("2026-12-10T09:00Z")
    alarms = asyncio.run(run_action("slack.create_channel", {"name": "eng-managers"},
                                    make_ctx("mgr"))).id
    policy = Policy(due_within=timedelta(hours=48), interval=timedelta(hours=24),
                    grace=timedelta(hours=48), escalate_channel=alarms)

    def run_at(hours: float) -> list[str]:
        out = asyncio.run(remind(store, policy, due + timedelta(hours=hours)))
        assert not out.failed, out.failed
        return out.reminded + [f"esc:{i}" for i in out.escalated] + [f"done:{i}" for i in
                                                                       out.closed]

    def dms() -> list[str]:
        return [m["text"] for m in sandbox.state.dump()["slack_messages"]
                if m["channel"] == "DU0BOB"]

    assert run_at(-72) == []
    assert run_at(-24) == [item.id] and "is due 2026-12-10" in dms()[-1]
    assert run_at(-23) == [], "reminded again within the interval"

    async def overlapping() -> list[Outcome]:
        when = due + timedelta(hours=1)
        return list(await asyncio.gather(remind(store, policy, when),
                                         remind(store, policy, when)))

    both = asyncio.run(overlapping())
    assert sum(len(o.reminded) for o in both) == 1
    assert "was due 2026-12-10" in dms()[-1] and len(dms()) == 2
    assert sorted(run_at(50)) == sorted([item.id, f"esc:{item.id}"])
    escalations = [m["text"] for m in sandbox.state.dump()["slack_messages"]
                   if m["channel"] == alarms]
    assert len(escalations) == 1 and "owned by bob@example.com is overdue" in escalations[0]
    assert run_at(80) == [item.id], "no second escalation, one more overdue reminder"
    asyncio.run(run_action("jira.transition", {"issue": item.external_key, "to": "Done"},
                           make_ctx("done")))
    assert run_at(110) == [f"done:{item.id}"]
    assert run_at(140) == [] and store.list_action_items(incident.id)[0].status == "done"
    kinds = [e.kind for e in store.timeline(incident.id) if e.kind.startswith("action_item.")]
    assert kinds.count("action_item.due_soon") == 1 and kinds.count("action_item.overdue") == 3
    assert kinds.count("action_item.escalation") == 1 and kinds[-1] == "action_item.done"
    assert len(store.reminders_of(item.id)) == 5


def test_reaction_makes_an_item_and_each_team_gets_one_weekly_digest(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path) -> None:
    from integrations.slack.block import SlackCredentials

    assert main(["run", "declare-incident", "--incident", str(INCIDENT), "--sandbox"]) == 0
    store = open_store(firelane_env)
    [incident] = store.list_incidents()
    [execution] = store.list_executions(incident.id)
    channel = (store.step_records(execution.id)["channel"].outputs or {})["id"]
    (tmp_path / "services.yaml").write_text(
        f"services:\n  web: {{slack_channel: {channel}, owners: [bob@example.com]}}\n")
    client = SlackCredentials.for_sandbox(sandbox.url, sandbox.ca_file).get_client()
    sent = client.chat_postMessage(channel=channel, text="We need a   runbook for queue lag")
    client.reactions_add(channel=channel, timestamp=sent["ts"], name="memo")
    client.chat_postMessage(channel=channel, text="just chatting")
    policy = Policy(digest_weekday=0)
    monday = parse_time("2026-11-30T08:00Z")
    first = asyncio.run(remind(store, policy, monday))
    assert not first.failed, first.failed
    [item] = store.list_action_items(incident.id)
    assert first.collected == [item.id] and item.title == "We need a runbook for queue lag"
    assert item.external_key and item.external_key in sandbox.state.dump()["jira_issues"]
    assert first.digests == ["web"]
    again = asyncio.run(remind(store, policy, monday + timedelta(hours=5)))
    assert again.collected == [] and again.digests == []
    digests = [m["text"] for m in sandbox.state.dump()["slack_messages"]
               if m["channel"] == channel and "open action item" in m["text"]]
    assert len(digests) == 1 and "queue lag" in digests[0]
    next_week = asyncio.run(remind(store, policy, monday + timedelta(days=7)))
    assert next_week.digests == ["web"] and len(store.list_action_items(incident.id)) == 1


def test_items_a_runbook_opens_in_jira_are_tracked_once(firelane_env: str,
                                                        sandbox: Sandbox) -> None:
    from firelane.inputs import new_execution
    from firelane.loader import parse_runbook
    from firelane.models import IncidentDraft, Severity
    from flows.runs.run_runbook import run_runbook

    store = open_store(firelane_env)
    loaded = parse_runbook("""version: 1
name: follow-up
steps:
  - {id: ticket, uses: jira.create_issue, with: {project: OPS, summary: "db outage"}}
  - id: items
    uses: jira.create_action_items
    needs: [ticket]
    with:
      project: OPS
      parent: "{{ steps.ticket.outputs.key }}"
      items:
        - {title: Add replica lag alert, owner: alice@example.com, due: "2026-12-01"}
        - {title: Document failover}
""", "follow-up.yaml")
    incident = store.declare_incident(IncidentDraft(title="db outage", severity=Severity.SEV2,
                                                    service="db"))
    execution = store.create_execution(new_execution(loaded, incident, {}, sandbox=True))
    asyncio.run(run_runbook(execution.id))
    asyncio.run(run_runbook(execution.id))
    items = store.list_action_items(incident.id)
    assert [(i.title, i.owner, i.external_key is not None) for i in items] == [
        ("Add replica lag alert", "alice@example.com", True), ("Document failover", None, True)]
    assert items[0].due is not None and items[0].due.isoformat().startswith("2026-12-01")
