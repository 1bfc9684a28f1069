"""Slack's published signature vector (a slash command request), and an intake that checks
signatures at the vector's own time, for the tests of both Slack routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.signature import Clock

from firelane.store import Store
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef

VECTOR = Path(__file__).resolve().parent.parent.parent / "shared" / "payloads" / "signatures" \
    / "slack_signature_vector.json"


def vector_intake(store: Store, monkeypatch: pytest.MonkeyPatch,
                  ) -> tuple[Any, bytes, dict[str, str]]:
    """(an intake with the vector's signing secret and clock, the vector's body, its signed
    headers); skips with the reason when `../shared` is not beside the checkout."""
    if not VECTOR.exists():
        pytest.skip("../shared/payloads is not beside the checkout (the vendor vector lives "
                    "there)")
    vector = json.loads(VECTOR.read_text())

    class AtVectorTime(Clock):
        def now(self) -> float:
            return float(vector["X-Slack-Request-Timestamp"])

    monkeypatch.setenv("TEST_SLACK_SECRET", vector["signing_secret"])
    app = create_app(store, IntakeConfig(slack_signing_secret=SecretRef(
        env="TEST_SLACK_SECRET")), slack_clock=AtVectorTime())
    headers = {"x-slack-request-timestamp": vector["X-Slack-Request-Timestamp"],
               "x-slack-signature": vector["X-Slack-Signature"]}
    return app, vector["raw_body"].encode(), headers
