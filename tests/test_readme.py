"""The README's commands and snippets: every `firelane` command it shows parses, every `make`
target exists, and the monitoring-system snippets fit the intake (Alertmanager's receiver path
and credentials, Datadog's payload template filled the way Datadog fills it)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import cast

import pytest
import yaml

from flows.cli import _parser
from integrations.alerts import SOURCES
from integrations.alerts.vendors import parse_datadog

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _commands(program: str) -> list[str]:
    out = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].split("     #")[0].strip().rstrip("&").strip()
            words = line.split()
            if words and words[0].rsplit("/", 1)[-1] == program:
                out.append(line)
    return out


FIRELANE = _commands("firelane")


def test_the_readme_shows_the_commands_that_matter() -> None:
    shown = {" ".join(shlex.split(c)[1:3]) for c in FIRELANE}
    for wanted in ("deployments --write", "deployments --check", "worker", "validate",
                   "serve --config", "approve INC-1"):
        assert any(s.startswith(wanted) for s in shown), wanted
    assert "make demo" in _blocks("bash")[0] and "make test" in _blocks("bash")[0]


@pytest.mark.parametrize("command", FIRELANE)
def test_every_firelane_command_parses(command: str) -> None:
    argv = shlex.split(re.sub(r"\[[^\]]*\]", "", command))[1:]
    _parser().parse_args(argv)


def test_every_make_target_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    used = set(re.findall(r"(?:`|^)make ([a-z][a-z-]+)", README, flags=re.M))
    assert used and used <= targets, used - targets


def test_alertmanager_receiver_points_at_the_intake() -> None:
    [snippet] = [b for b in _blocks("yaml") if "webhook_configs" in b]
    config = yaml.safe_load(snippet)
    [hook] = config["receivers"][0]["webhook_configs"]
    assert hook["url"].endswith("/alerts/alertmanager") and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert config["route"]["receiver"] == config["receivers"][0]["name"]
    for source in re.findall(r"/alerts/([a-z]+)\b", README):
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
