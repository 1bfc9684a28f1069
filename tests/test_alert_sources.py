"""Alert sources: vendor payloads parse to the right alerts; signatures verify; bad input is a
4xx with a reason; fuzzed bodies never escape as anything but AlertRejected."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firelane.errors import AlertRejected, AuthenticationFailed
from firelane.models import Severity
from integrations.alerts import SOURCES, SourceConfig, authenticate, parse
from integrations.alerts.auth import sns_canonical

HERE = Path(__file__).resolve().parent / "payloads"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "payloads"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason=f"vendor payloads are not at {SHARED}")
JSON = {"content-type": "application/json"}


def body_of(path: Path) -> bytes:
    return path.read_bytes()


@needs_shared
def test_alertmanager_vendor_format() -> None:
    [alert] = parse("alertmanager", body_of(SHARED / "CONSTRUCTED_alertmanager_webhook_v4_firing"
                                                     ".json"), JSON, SourceConfig()).alerts
    assert (alert.fingerprint, alert.status, alert.severity, alert.service) == (
        "alertmanager:c4f8a1b2d3e4f506", "firing", Severity.SEV1, "api")
    assert alert.title == "High 5xx rate on api" and alert.ends_at is None
    assert alert.starts_at == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)


def test_alertmanager_group_with_resolved_member() -> None:
    alerts = parse("alertmanager", body_of(HERE / "alertmanager_group_mixed.json"), JSON,
                   SourceConfig(severities={"page": "SEV2"})).alerts
    assert [(a.status, a.severity, a.labels["team"]) for a in alerts] == [
        ("firing", Severity.SEV3, "storage"), ("resolved", Severity.SEV2, "storage")]
    assert alerts[1].ends_at is not None and alerts[0].fingerprint != alerts[1].fingerprint


def test_grafana_format() -> None:
    [alert] = parse("grafana", body_of(HERE / "grafana_firing.json"), JSON,
                    SourceConfig()).alerts
    assert (alert.fingerprint, alert.severity, alert.service, alert.title) == (
        "grafana:9bc5e2b3a6c1f001", Severity.SEV2, "checkout", "p99 latency above 2 s")
    assert alert.starts_at == dt.datetime(2026, 11, 23, 4, tzinfo=dt.UTC)


@needs_shared
def test_datadog_default_template_and_transitions() -> None:
    [tpl] = parse("datadog", body_of(SHARED / "datadog_webhook_default_payload_template.json"),
                  JSON, SourceConfig()).alerts
    assert tpl.title == "$EVENT_TITLE" and tpl.status == "firing"
    fired = parse("datadog", body_of(HERE / "datadog_triggered_custom.json"), JSON,
                  SourceConfig()).alerts[0]
    cleared = parse("datadog", body_of(HERE / "datadog_recovered_custom.json"), JSON,
                    SourceConfig()).alerts[0]
    assert fired.fingerprint == cleared.fingerprint
    assert (fired.status, cleared.status) == ("firing", "resolved")
    assert fired.title == "Checkout error rate" and fired.severity is Severity.SEV2
    assert fired.service == "checkout"


@needs_shared
def test_cloudwatch_via_sns_and_inner_alarm() -> None:
    parsed = parse("cloudwatch", body_of(SHARED / "DERIVED_cloudwatch_alarm_via_sns_http_"
                                                  "notification.json"),
                   {"content-type": "text/plain; charset=UTF-8"}, SourceConfig())
    [alert] = parsed.alerts
    assert alert.status == "firing" and alert.labels["InstanceId"] == "TestInstance"
    assert alert.labels["alarm"] == "EXAMPLE" and alert.fingerprint.startswith("cloudwatch:")
    inner = json.loads((SHARED / "aws_lambda_go_cloudwatch_alarm_message_single_metric_inner"
                                 ".json").read_text())
    inner["NewStateValue"] = "OK"
    envelope = {"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Timestamp": "x",
                "Message": json.dumps(inner)}
    [ok] = parse("cloudwatch", json.dumps(envelope).encode(), JSON, SourceConfig()).alerts
    assert ok.status == "resolved"
    confirm = parse("cloudwatch", body_of(SHARED / "aws_sns_http_SubscriptionConfirmation_docs"
                                                   ".json"), JSON, SourceConfig())
    assert confirm.alerts == [] and confirm.confirm_url.startswith(  # type: ignore[union-attr]
        "https://sns.us-west-2.amazonaws.com/")


@needs_shared
def test_pagerduty_v3_events() -> None:
    vector = json.loads((SHARED / "signatures" / "pagerduty_v3_signature_vector.json")
                        .read_text())
    [alert] = parse("pagerduty", vector["raw_body"].encode(), JSON, SourceConfig()).alerts
    assert (alert.fingerprint, alert.severity, alert.service) == (
        "pagerduty:PGR0VU2", Severity.SEV1, "API Service")
    data = json.loads((SHARED / "pagerduty_v3_event_data_incident.json").read_text())
    resolved = {"event": {"event_type": "incident.resolved", "data": data}}
    assert parse("pagerduty", json.dumps(resolved).encode(), JSON,
                 SourceConfig()).alerts[0].status == "resolved"
    service = json.loads((SHARED / "pagerduty_v3_service.updated.json").read_text())
    ignored = parse("pagerduty", json.dumps(service).encode(), JSON, SourceConfig())
    assert ignored.alerts == [] and "ignored" in ignored.note


def test_generic_mapping() -> None:
    mapping = {"title": "summary", "severity": "level", "service": "meta.svc",
               "fingerprint": "key", "status": "state"}
    alerts = parse("generic", body_of(HERE / "generic_list.json"), JSON,
                   SourceConfig(generic_mapping=mapping)).alerts
    assert [(a.fingerprint, a.status, a.service, a.severity) for a in alerts] == [
        ("generic:q-depth", "firing", "orders", Severity.SEV1),
        ("generic:q-depth", "resolved", "orders", Severity.SEV1)]


@needs_shared
def test_pagerduty_signature_vector() -> None:
    vector = json.loads((SHARED / "signatures" / "pagerduty_v3_signature_vector.json")
                        .read_text())
    config = SourceConfig(hmac_secret=vector["secret"])
    body = vector["raw_body"].encode()
    authenticate("pagerduty", config, body, {"x-pagerduty-signature":
                                             vector["valid_signature_header"]})
    authenticate("pagerduty", config, body, {"x-pagerduty-signature":
                                             "v1=00," + vector["valid_signature_header"]})
    for bad_header, bad_body in ((vector["invalid_signature_header"], body),
                                 (vector["valid_signature_header"], body + b" "), (None, body)):
        with pytest.raises(AuthenticationFailed, match="X-PagerDuty-Signature"):
            authenticate("pagerduty", config, bad_body,
                         {"x-pagerduty-signature": bad_header} if bad_header else {})


def test_grafana_hmac_with_timestamp() -> None:
    secret, body, now = "s3cret", b'{"alerts": []}', str(int(time.time()))
    sig = hmac.new(secret.encode(), now.encode() + b":" + body, hashlib.sha256).hexdigest()
    config = SourceConfig(hmac_secret=secret, require_timestamp=True)
    headers = {"x-grafana-alerting-signature": sig, "x-grafana-alerting-timestamp": now}
    authenticate("grafana", config, body, headers)
    with pytest.raises(AuthenticationFailed, match="does not match"):
        authenticate("grafana", config, body + b"x", headers)
    stale = str(int(time.time()) - 3600)
    old = hmac.new(secret.encode(), stale.encode() + b":" + body, hashlib.sha256).hexdigest()
    with pytest.raises(AuthenticationFailed, match="s old"):
        authenticate("grafana", config, body, {"x-grafana-alerting-signature": old,
                                               "x-grafana-alerting-timestamp": stale})
    with pytest.raises(AuthenticationFailed, match="Timestamp is required"):
        authenticate("grafana", config, body, {"x-grafana-alerting-signature": sig})


def test_bearer_basic_and_missing_configuration() -> None:
    authenticate("alertmanager", SourceConfig(bearer_token="t0k"), b"{}",
                 {"authorization": "Bearer t0k"})
    with pytest.raises(AuthenticationFailed, match="bearer"):
        authenticate("alertmanager", SourceConfig(bearer_token="t0k"), b"{}",
                     {"authorization": "Bearer t0x"})
    basic = "Basic " + base64.b64encode(b"dd:pw").decode()
    authenticate("datadog", SourceConfig(basic_user="dd", basic_password="pw"), b"{}",
                 {"authorization": basic})
    with pytest.raises(AuthenticationFailed, match="basic"):
        authenticate("datadog", SourceConfig(basic_user="dd", basic_password="no"), b"{}",
                     {"authorization": basic})
    with pytest.raises(AuthenticationFailed, match="--insecure-no-auth"):
        authenticate("generic", SourceConfig(), b"{}", {})
    authenticate("generic", SourceConfig(), b"{}", {}, insecure=True)
    with pytest.raises(AlertRejected, match="unknown source 'nagios'") as info:
        authenticate("nagios", SourceConfig(), b"{}", {})
    assert info.value.status == 404


def _signed_sns(key: rsa.RSAPrivateKey, envelope: dict[str, Any], version: str) -> bytes:
    envelope = {**envelope, "SignatureVersion": version,
                "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService"
                                  "-abc.pem"}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(sns_canonical(envelope), padding.PKCS1v15(), algorithm)
    envelope["Signature"] = base64.b64encode(signature).decode()
    return json.dumps(envelope).encode()


def test_sns_signatures_with_a_local_ca() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem

    envelope = {"Type": "Notification", "MessageId": "id-1", "TopicArn": "arn:t",
                "Subject": "ALARM", "Message": '{"AlarmName": "x", "NewStateValue": "ALARM"}',
                "Timestamp": "2026-11-23T05:00:00Z"}
    for version in ("1", "2"):
        authenticate("cloudwatch", SourceConfig(), _signed_sns(key, envelope, version), JSON,
                     fetch_cert=fetch)
    tampered = json.loads(_signed_sns(key, envelope, "2"))
    tampered["Message"] = tampered["Message"].replace("ALARM", "OK")
    with pytest.raises(AuthenticationFailed, match="does not match"):
        authenticate("cloudwatch", SourceConfig(), json.dumps(tampered).encode(), JSON,
                     fetch_cert=fetch)
    evil = json.loads(_signed_sns(key, envelope, "2"))
    evil["SigningCertURL"] = "https://attacker.example/sns.eu-west-1.amazonaws.com.pem"
    with pytest.raises(AuthenticationFailed, match="is not an SNS certificate URL"):
        authenticate("cloudwatch", SourceConfig(), json.dumps(evil).encode(), JSON,
                     fetch_cert=fetch)
    assert all(u.startswith("https://sns.eu-west-1.amazonaws.com/") for u in fetched)
    confirm = {"Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t",
               "TopicArn": "arn:t", "Message": "m", "Timestamp": "x",
               "SubscribeURL": "https://evil.example/?Action=ConfirmSubscription"}
    with pytest.raises(AuthenticationFailed, match="is not an SNS URL"):
        parse("cloudwatch", json.dumps(confirm).encode(), JSON, SourceConfig())


@pytest.mark.parametrize(("source", "body", "headers", "message"), [
    ("alertmanager", b"{nope", JSON, "malformed JSON at line 1 column 2"),
    ("alertmanager", b"{}", {"content-type": "text/html"}, "is not JSON"),
    ("alertmanager", b'{"alerts": []}', JSON, "alerts: expected a non-empty list"),
    ("alertmanager", b'{"alerts": [{"labels": {"a": {"b": 1}}}]}', JSON,
     "alerts[0].labels.a: expected a string"),
    ("alertmanager", b'{"alerts": [{"labels": {"a": "b"}, "status": "burning"}]}', JSON,
     "alerts[0].status: expected firing or resolved"),
    ("alertmanager", b'{"alerts": [{"labels": {"a": "b"}, "startsAt": "yesterday"}]}', JSON,
     "alerts[0].startsAt: 'yesterday' is not a time"),
    ("grafana", b"[1, 2]", JSON, "must be a JSON object"),
    ("datadog", b'{"body": "x"}', JSON, "title is missing"),
    ("pagerduty", b'{"event": {}}', JSON, "expected {\"event\""),
    ("cloudwatch", b'{"Type": "Notification", "Message": "{}"}', JSON, "no AlarmName"),
    ("generic", b'[{"severity": "high"}]', JSON, "alerts[0].title: a title is required"),
    ("generic", b"\xff\xfe", JSON, "not UTF-8"),
    ("generic", b"[" * 100_000 + b"]" * 100_000, JSON, "nested too deeply"),
    ("cloudwatch", json.dumps({"Type": "Notification", "Message": "[" * 5000}).encode(), JSON,
     "Message is JSON nested too deeply"),
    ("alertmanager", json.dumps({"alerts": [{"labels": {"a": "b"}}] * 1001}).encode(), JSON,
     "1001 alerts in one request, more than 1000"),
    ("generic", json.dumps([{"title": "t"}] * 1001).encode(), JSON, "more than 1000"),
])
def test_bad_input_is_a_4xx_naming_the_problem(source: str, body: bytes,
                                               headers: dict[str, str], message: str) -> None:
    with pytest.raises(AlertRejected) as info:
        parse(source, body, headers, SourceConfig())
    assert message in str(info.value) and 400 <= info.value.status < 500


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["alerts", "labels", "annotations", "status", "title", "event", "data",
                         "Type", "Message", "startsAt", "fingerprint", "version", "tags",
                         "event_type", "id", "NewStateValue", "AlarmName", "x"]) | st.text(
            max_size=8), children, max_size=6),
    max_leaves=20)


@pytest.mark.parametrize("source", SOURCES)
@settings(max_examples=int(os.environ.get("FIRELANE_FUZZ_EXAMPLES", "1000")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES, raw=st.binary(max_size=64))
def test_fuzzed_bodies_only_ever_raise_alert_rejected(source: str, value: Any,
                                                      raw: bytes) -> None:
    for body in (json.dumps(value).encode(), raw):
        try:
            parse(source, body, JSON, SourceConfig())
        except AlertRejected as exc:
            assert 400 <= exc.status < 500
