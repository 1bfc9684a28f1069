"""Service catalog validation and runbook input resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from firelane.catalog import load_catalog
from firelane.errors import ConfigError, RunbookError
from firelane.inputs import parse_cli_inputs, resolve_inputs
from firelane.loader import parse_runbook


def test_catalog_loads_and_missing_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text("""services:
  web:
    pagerduty: {service_id: PWEB, routing_key_block: pd-web}
    jira_project: OPS
    slack_channel: "#web"
    owners: [alice@example.com]
    health_url: http://web.internal/healthz
    release_dir: /srv/web
""")
    web = load_catalog(path).get("web")
    assert web is not None and web.pagerduty is not None
    assert (web.jira_project, web.pagerduty.routing_key_block) == ("OPS", "pd-web")
    assert load_catalog(tmp_path / "absent.yaml").services == {}


def test_catalog_errors_name_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text("services:\n  web:\n    jira_project: ops\n    slak_channel: x\n")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    text = str(info.value)
    assert f"{path}:3 services.web.jira_project:" in text
    assert f"{path}:4 services.web.slak_channel: unknown key" in text


RB = parse_runbook("""version: 1
name: x
inputs:
  service: {type: string, default: web}
  count: {type: integer, required: true}
  ratio: {type: number, default: 0.5}
  mode: {type: string, enum: [fast, safe], default: safe}
steps: [{id: a, uses: core.note, with: {message: m}}]
""")


def test_inputs_coerced_and_defaulted() -> None:
    given = parse_cli_inputs(["count=3", "ratio=1", "mode=fast"])
    assert resolve_inputs(RB, given) == {"service": "web", "count": 3, "ratio": 1.0,
                                         "mode": "fast"}


def test_input_problems_reported_together() -> None:
    with pytest.raises(RunbookError) as info:
        resolve_inputs(RB, parse_cli_inputs(["mode=quick", "colour=red", "ratio=abc"]))
    text = str(info.value)
    for part in ("unknown input(s) colour", "'count' is required", "'mode' must be one of",
                 "'ratio' must be number"):
        assert part in text
    with pytest.raises(RunbookError, match="expected key=value"):
        parse_cli_inputs(["novalue"])
