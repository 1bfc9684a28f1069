"""Template and shell injection end to end: an alert whose every field that reaches a runbook
(title, service, label keys and values) carries template syntax, sandbox-escape attempts and
shell metacharacters goes through the intake's HTTP app to a runbook that puts those fields into
`shell.run` argv elements and a Jira ticket. Nothing is evaluated, nothing escapes, and each field
arrives at the program as exactly one argv element, byte for byte."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from firelane.settings import Settings
from firelane.store import open_store
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef, SourceSettings
from flows.respond.starter import ResponseStarter
from integrations.sandbox import Sandbox

PAYLOAD = ("{{ 7*7 }} {% for x in range(3) %}loop{% endfor %} "
           "{{ ''.__class__.__mro__[1].__subclasses__() }} {{ cycler.__init__.__globals__ }} "
           "$(touch /tmp/firelane-pwned) `id`; rm -rf / | cat /etc/passwd 'q\" \\ {#c#}")
FIELDS = {"title": PAYLOAD, "service": "svc {{ 6*6 }} $(id)",
          "value": "label {% if true %}yes{% endif %} `id`"}
MARK = "<ARG>"
RUNBOOK = f"""version: 1
name: inject
shell: {{allow: [/usr/bin/printf]}}
steps:
  - id: title
    uses: shell.run
    with: {{argv: [/usr/bin/printf, "%s{MARK}", "{{{{ incident.title }}}}"]}}
  - id: service
    uses: shell.run
    with: {{argv: [/usr/bin/printf, "%s{MARK}", "{{{{ incident.service }}}}"]}}
  - id: labels
    uses: shell.run
    with: {{argv: [/usr/bin/printf, "%s{MARK}", "{{{{ incident.labels['{{{{ 5*5 }}}}'] }}}}"]}}
  - id: ticket
    uses: jira.create_issue
    with: {{project: OPS, summary: "{{{{ incident.title }}}}",
            description: "{{{{ incident.service }}}} / {{{{ incident.labels }}}}"}}
"""


@pytest.mark.usefixtures("prefect_api")
def test_alert_fields_reach_runbooks_as_data_and_one_argv_element_each(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "inject.yaml").write_text(RUNBOOK)
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(tmp_path / "runbooks"))
    monkeypatch.setenv("INJECT_TOKEN", "inject-token-0123456789")
    pwned = Path("/tmp/firelane-pwned")
    pwned.unlink(missing_ok=True)
    store = open_store(firelane_env)
    responder = ResponseStarter(store, Settings.from_env(), "inject", sandbox=True)
    app = create_app(store, IntakeConfig(sources={"generic": SourceSettings(
        bearer_token=SecretRef(env="INJECT_TOKEN"))}), responder)
    alert = {"title": FIELDS["title"], "service": FIELDS["service"], "severity": "critical",
             "fingerprint": "{{ 8*8 }}", "labels": {"{{ 5*5 }}": FIELDS["value"]}}

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            response = await client.post("/alerts/generic", content=json.dumps(alert),
                                         headers={"authorization": "Bearer "
                                                  "inject-token-0123456789",
                                                  "content-type": "application/json"})
            while responder.tasks:
                await asyncio.wait(responder.tasks, timeout=60)
            return response

    assert asyncio.run(send()).status_code == 202
    [incident] = store.list_incidents()
    assert (incident.title, incident.service) == (FIELDS["title"], FIELDS["service"])
    [execution] = store.list_executions(incident.id)
    records = store.step_records(execution.id)
    assert {k: r.status.value for k, r in records.items()} == dict.fromkeys(
        ("title", "service", "labels", "ticket"), "succeeded"), {
        k: r.error for k, r in records.items()}
    for step, expected in (("title", FIELDS["title"]), ("service", FIELDS["service"]),
                           ("labels", FIELDS["value"])):
        assert (records[step].outputs or {})["stdout"] == expected + MARK, step
    [issue] = sandbox.state.jira_issues.values()
    assert issue["fields"]["summary"] == FIELDS["title"]
    description = issue["fields"]["description"]
    assert FIELDS["service"] in description and "{{ 5*5 }}" in description
    rendered = "".join(str((r.outputs or {}).get("stdout")) for r in records.values()) + \
        issue["fields"]["summary"] + description
    for evaluated in ("49", "36", "loopl", "yes`", "<class", "__builtins__"):
        assert evaluated not in rendered, f"{evaluated!r} appeared: a template was evaluated"
    assert not pwned.exists(), "a shell ran the payload"
