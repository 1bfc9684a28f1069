"""The commands and snippets of the README and of every page under docs/: every `firelane`
command shown parses, every `make` target exists, every runbook snippet validates, and the
monitoring-system snippets fit the intake (Alertmanager's receiver path and credentials,
Datadog's payload template filled the way Datadog fills it)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from flows.cli import _parser
from integrations.alerts import SOURCES
from integrations.alerts.vendors import parse_datadog

ROOT = Path(__file__).resolve().parent.parent
PAGES = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
         for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]}
README = PAGES["README.md"]
DOCS = "\n".join(PAGES.values())


def _blocks(lang: str, text: str = DOCS) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _commands(program: str) -> list[tuple[str, str]]:
    out = []
    for page, text in PAGES.items():
        for block in _blocks("bash", text):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" # ")[0].split("     #")[0].strip().rstrip("&").strip()
                words = line.split()
                if words and words[0].rsplit("/", 1)[-1] == program:
                    out.append((page, line))
    return out


FIRELANE = [command for _, command in _commands("firelane")]


def test_the_docs_cover_the_readme_and_every_page() -> None:
    assert "README.md" in PAGES and "docs/index.md" in PAGES and len(PAGES) > 20
    assert {p.split("/")[1] for p in PAGES if p.count("/") == 2} == {
        "tutorial", "how-to", "reference", "explanation"}


def test_the_readme_shows_the_commands_that_matter() -> None:
    shown = {" ".join(shlex.split(c)[1:3]) for c in FIRELANE}
    for wanted in ("deployments --write", "deployments --check", "worker", "validate",
                   "serve --config", "approve INC-1"):
        assert any(s.startswith(wanted) for s in shown), wanted
    first = _blocks("bash", README)[0]
    assert "make demo" in first and "make test" in first
    assert "make demo" in README and "make test" in README


@pytest.mark.parametrize("command", [pytest.param(c, id=f"{page}: {c}")
                                     for page, c in _commands("firelane")])
def test_every_firelane_command_parses(command: str) -> None:
    argv = shlex.split(re.sub(r"\[[^\]]*\]", "", command))[1:]
    _parser().parse_args(argv)


def test_every_make_target_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    used = set(re.findall(r"(?:`|^)make ([a-z][a-z-]+)", DOCS, flags=re.M))
    assert used and used <= targets, used - targets


def test_alertmanager_receiver_points_at_the_intake() -> None:
    [snippet] = [b for b in _blocks("yaml") if "webhook_configs" in b]
    config = yaml.safe_load(snippet)
    [hook] = config["receivers"][0]["webhook_configs"]
    assert hook["url"].endswith("/alerts/alertmanager") and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert config["route"]["receiver"] == config["receivers"][0]["name"]
    for source in re.findall(r"/alerts/([a-z]+)\b", DOCS):
        assert source in (*SOURCES, "source"), source


def test_datadog_template_filled_by_datadog_parses() -> None:
    [template] = [b for b in _blocks("json") if "$EVENT_TITLE" in b]
    values = {"EVENT_TITLE": "[Triggered on {host:web-3}] Checkout error rate",
              "EVENT_MSG": "Error rate 7%", "ALERT_TRANSITION": "Triggered", "ALERT_ID": "42",
              "AGGREG_KEY": "9f2c", "ALERT_PRIORITY": "P1", "TAGS": "service:checkout,env:prod",
              "DATE": "1795399000000", "LAST_UPDATED": "1795399000000",
              "EVENT_TYPE": "query_alert_monitor", "ORG_ID": "11", "ORG_NAME": "Acme",
              "ID": "776"}
    filled = re.sub(r"\$([A-Z_]+)", lambda m: values[m.group(1)], template)
    [alert] = parse_datadog(json.loads(filled))
    assert (alert.status, alert.service, alert.severity.value) == ("firing", "checkout", "SEV1")
    assert alert.title == "Checkout error rate"
    values.update(EVENT_TITLE="[Recovered on {host:web-3}] Checkout error rate",
                  ALERT_TRANSITION="Recovered")
    filled = re.sub(r"\$([A-Z_]+)", lambda m: values[m.group(1)], template)
    [recovered] = parse_datadog(json.loads(filled))
    assert recovered.status == "resolved" and recovered.fingerprint == alert.fingerprint


def test_credentials_snippet_saves_blocks(prefect_api: str) -> None:
    from integrations.jira.block import JiraCredentials
    from integrations.pagerduty.block import PagerDutyCredentials
    from integrations.slack.block import SlackCredentials

    [snippet] = [b for b in _blocks("python") if "JiraCredentials(" in b]
    exec(snippet.replace('.save("default"', '.save("readme-test"'), {})
    jira = cast(JiraCredentials, JiraCredentials.load("readme-test"))
    assert jira.base_url == "https://acme.atlassian.net" and jira.api_token.get_secret_value()
    pagerduty = cast(PagerDutyCredentials, PagerDutyCredentials.load("readme-test"))
    assert pagerduty.routing_key is not None
    slack = cast(SlackCredentials, SlackCredentials.load("readme-test"))
    assert slack.token.get_secret_value() == "xoxb-..."


def _runbook_snippets() -> list[Any]:
    out: list[Any] = []
    for page, text in PAGES.items():
        for block in _blocks("yaml", text):
            if block.startswith("# yaml-language-server: $schema=./runbook.schema.json"):
                name = re.search(r"^name: *(\S+)", block, flags=re.M)
                out.append(pytest.param(block, id=f"{page}: {name[1] if name else '?'}"))
    return out


RUNBOOKS = _runbook_snippets()


@pytest.mark.parametrize("snippet", RUNBOOKS)
def test_every_runbook_snippet_validates(snippet: str) -> None:
    import integrations  # noqa: F401  (registers the bundled actions, as `firelane` does)
    from firelane.loader import parse_runbook

    loaded = parse_runbook(snippet, "snippet.yaml")
    assert loaded.runbook.steps and not loaded.warnings


def test_there_are_runbook_snippets() -> None:
    assert len(RUNBOOKS) >= 2
