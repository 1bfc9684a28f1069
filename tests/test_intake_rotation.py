"""Credential rotation through the intake's HTTP app: a source accepts any of several tokens or
HMAC secrets, a reload swaps the configuration whole (the old token is refused once removed),
and a reload of a bad file keeps the old configuration in force and says where the file is
wrong. The single-reference syntax keeps working."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from firelane.errors import ConfigError
from firelane.store import open_store
from flows.intake.app import create_app
from flows.intake.config import load_intake_config
from flows.intake.live import LiveConfig

AM_BODY = json.dumps({"version": "4", "alerts": [{"status": "firing",
                                                  "labels": {"alertname": "Rot"}}]}).encode()
PD_BODY = json.dumps({"event": {"event_type": "incident.triggered", "resource_type": "incident",
                                "data": {"id": "P1", "title": "db down", "urgency": "high",
                                         "service": {"summary": "db"}}}}).encode()
GF_BODY = json.dumps({"alerts": [{"status": "firing", "labels": {"alertname": "Gf"}}]}).encode()
OLD, NEW = "am-old-token-0123456789", "am-new-token-9876543210"
HM_OLD, HM_NEW = "hm-old-secret-0123456789", "hm-new-secret-9876543210"
SHARED = [Path(__file__).resolve().parent.parent.parent / "shared" / "payloads",
          Path("/work/shared/payloads")]


def _hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _post(app: object, calls: list[tuple[str, bytes, dict[str, str]]]) -> list[int]:
    async def go() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                     base_url="http://intake") as client:
            return [(await client.post(path, content=body, headers={
                "content-type": "application/json", **headers})).status_code
                for path, body, headers in calls]
    return asyncio.run(go())


def _bearer(token: str) -> tuple[str, bytes, dict[str, str]]:
    return ("/alerts/alertmanager", AM_BODY, {"authorization": f"Bearer {token}"})


def _pagerduty(secret: str) -> tuple[str, bytes, dict[str, str]]:
    return ("/alerts/pagerduty", PD_BODY, {"x-pagerduty-signature": "v1=" + _hex(secret, PD_BODY)})


def _grafana(secret: str) -> tuple[str, bytes, dict[str, str]]:
    stamp = str(int(time.time()))
    return ("/alerts/grafana", GF_BODY, {
        "x-grafana-alerting-timestamp": stamp,
        "x-grafana-alerting-signature": _hex(secret, stamp.encode() + b":" + GF_BODY)})


@pytest.fixture
def secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "am_new").write_text(NEW + "\n")
    (folder / "hm_new").write_text(HM_NEW + "\n")
    monkeypatch.setenv("ROT_AM_OLD", OLD)
    monkeypatch.setenv("ROT_HM_OLD", HM_OLD)
    return folder


def _write(path: Path, folder: Path, overlap: bool) -> None:
    old_am, old_hm = ("{env: ROT_AM_OLD}, ", "{env: ROT_HM_OLD}, ") if overlap else ("", "")
    path.write_text(
        "sources:\n"
        f"  alertmanager: {{bearer_token: [{old_am}{{file: {folder / 'am_new'}}}]}}\n"
        f"  pagerduty: {{hmac_secret: [{old_hm}{{file: {folder / 'hm_new'}}}]}}\n"
        f"  grafana: {{hmac_secret: [{old_hm}{{file: {folder / 'hm_new'}}}],"
        " require_timestamp: true}\n")


def test_both_credentials_work_during_the_overlap_and_the_old_is_refused_after_reload(
        tmp_path: Path, secrets_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "intake.yaml"
    _write(path, secrets_dir, overlap=True)
    live = LiveConfig.load(path)
    app = create_app(open_store(f"sqlite:///{tmp_path / 'rot.db'}"), live)
    both = [_bearer(OLD), _bearer(NEW), _pagerduty(HM_OLD), _pagerduty(HM_NEW),
            _grafana(HM_OLD), _grafana(HM_NEW)]
    assert _post(app, both) == [202] * 6
    assert _post(app, [_bearer("am-unknown-token-000000"), _pagerduty("nope-secret-000"),
                       _grafana("nope-secret-000")]) == [401] * 3
    _write(path, secrets_dir, overlap=False)
    with caplog.at_level(logging.INFO, logger="firelane.intake"):
        assert live.reload()
    assert _post(app, both) == [401, 202, 401, 202, 401, 202]
    [line] = [r.getMessage() for r in caplog.records if "reloaded" in r.getMessage()]
    assert "alertmanager.bearer_token: 2 -> 1" in line
    assert "pagerduty.hmac_secret: 2 -> 1" in line and "grafana.hmac_secret: 2 -> 1" in line
    for secret in (OLD, NEW, HM_OLD, HM_NEW):
        assert secret not in caplog.text


def test_a_bad_file_on_reload_keeps_the_old_configuration(
        tmp_path: Path, secrets_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "intake.yaml"
    _write(path, secrets_dir, overlap=True)
    live = LiveConfig.load(path)
    app = create_app(open_store(f"sqlite:///{tmp_path / 'rot.db'}"), live)
    bad = {
        "schema": ("sources:\n  alertmanager:\n    bearer_tokn: {env: ROT_AM_OLD}\n",
                   f"{path}:3"),
        "yaml": ("sources:\n  alertmanager: {bearer_token: [\n", str(path)),
        "unresolvable": ("sources:\n  alertmanager: {bearer_token: {env: ROT_UNSET_VAR}}\n",
                         "ROT_UNSET_VAR is not set"),
        "missing file": (f"sources:\n  alertmanager: {{bearer_token: {{file: {tmp_path}/no}}}}\n",
                         "cannot read secret file"),
        "two kinds": ("sources:\n  alertmanager: {bearer_token: {env: A, file: /b}}\n",
                      "exactly one of env:, block: or file:"),
        "empty list": ("sources:\n  alertmanager: {bearer_token: []}\n", f"{path}:2"),
    }
    for case, (text, expected) in bad.items():
        path.write_text(text)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="firelane.intake"):
            assert not live.reload(), case
        [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert "previous configuration stays in force" in error.getMessage(), case
        assert expected in error.getMessage(), (case, error.getMessage())
        assert _post(app, [_bearer(OLD), _bearer(NEW)]) == [202, 202], case


def test_single_reference_and_file_reference(tmp_path: Path, secrets_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "intake.yaml"
    path.write_text("sources:\n  alertmanager: {bearer_token: {env: ROT_AM_OLD}}\n"
                    f"  pagerduty: {{hmac_secret: {{file: {secrets_dir / 'hm_new'}}}}}\n")
    app = create_app(open_store(f"sqlite:///{tmp_path / 'rot.db'}"), load_intake_config(path))
    assert _post(app, [_bearer(OLD), _bearer(NEW), _pagerduty(HM_NEW),
                       _pagerduty(HM_OLD)]) == [202, 401, 202, 401]
    (secrets_dir / "empty").write_text("\n")
    path.write_text(f"sources:\n  generic: {{bearer_token: {{file: {secrets_dir / 'empty'}}}}}\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_intake_config(path).source_configs()


def test_pagerduty_vendor_vector_with_a_second_secret(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder = next((p for p in SHARED if (p / "signatures").is_dir()), None)
    if folder is None:
        pytest.skip("the shared payloads are not here")
    vector = json.loads((folder / "signatures" / "pagerduty_v3_signature_vector.json")
                        .read_text())
    monkeypatch.setenv("ROT_PD_VENDOR", vector["secret"])
    monkeypatch.setenv("ROT_PD_OTHER", HM_NEW)
    path = tmp_path / "intake.yaml"
    path.write_text("sources:\n  pagerduty: {hmac_secret: [{env: ROT_PD_OTHER}, "
                    "{env: ROT_PD_VENDOR}]}\n")
    app = create_app(open_store(f"sqlite:///{tmp_path / 'rot.db'}"), LiveConfig.load(path))
    body = vector["raw_body"].encode()
    assert _post(app, [
        ("/alerts/pagerduty", body, {"x-pagerduty-signature": vector["valid_signature_header"]}),
        ("/alerts/pagerduty", body, {"x-pagerduty-signature":
                                     vector["invalid_signature_header"]}),
        _pagerduty(HM_NEW)]) == [202, 401, 202]
