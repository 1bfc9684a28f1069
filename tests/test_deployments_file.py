"""`prefect.yaml`: every deployment's entrypoint names a flow that imports."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parent.parent


def test_every_entrypoint_is_an_importable_flow() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = {d["name"]: d for d in spec["deployments"]}
    assert {"run-runbook", "timeline-report", "remind-action-items"} <= set(names)
    for deployment in spec["deployments"]:
        module, _, attr = deployment["entrypoint"].partition(":")
        assert isinstance(getattr(importlib.import_module(module), attr), Flow), deployment
    assert names["remind-action-items"]["schedules"] == [{"interval": 3600}]
