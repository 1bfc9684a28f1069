"""Inbound alert sources: authenticate a webhook and parse it into Firelane `Alert`s.

`authenticate()` then `parse()` for `alertmanager`, `grafana`, `datadog`, `cloudwatch` (SNS HTTP
notifications), `pagerduty` (v3 webhooks) and `generic` JSON. Anything wrong with a request is an
`AlertRejected` (4xx) whose message says what and where; nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from firelane.errors import AlertRejected, AuthenticationFailed
from firelane.models import Alert
from integrations.alerts.auth import (
    check_basic,
    check_bearer,
    check_grafana,
    check_pagerduty,
    check_sns_url,
    verify_sns,
)
from integrations.alerts.common import load_json
from integrations.alerts.prometheus import parse_alertmanager, parse_grafana
from integrations.alerts.vendors import (
    parse_cloudwatch_message,
    parse_datadog,
    parse_generic,
    parse_pagerduty,
)

__all__ = ["SOURCES", "Parsed", "SourceConfig", "authenticate", "parse"]

SOURCES = ("alertmanager", "grafana", "datadog", "cloudwatch", "pagerduty", "generic")


@dataclass
class SourceConfig:
    """One source's settings: its severity spellings and how it authenticates.

    `bearer_token` and `hmac_secret` are one value or several (during a rotation); a request
    matching any of them is accepted."""

    severities: dict[str, str] = field(default_factory=dict)
    bearer_token: str | tuple[str, ...] | None = None
    basic_user: str | None = None
    basic_password: str | None = None
    hmac_secret: str | tuple[str, ...] | None = None
    require_timestamp: bool = False
    generic_mapping: dict[str, str] = field(default_factory=dict)

    @property
    def has_credentials(self) -> bool:
        """Something to check requests against."""
        return bool(self.bearer_token or self.basic_user or self.hmac_secret)

    def credential_counts(self) -> dict[str, int]:
        """How many values each credential has (never the values): for reload logs."""
        def count(value: str | tuple[str, ...] | None) -> int:
            return 0 if not value else 1 if isinstance(value, str) else len(value)
        return {"bearer_token": count(self.bearer_token), "hmac_secret": count(self.hmac_secret),
                "basic": 1 if self.basic_user else 0}


@dataclass
class Parsed:
    """The alerts in a request, and for SNS the subscription URL to confirm, if any."""

    alerts: list[Alert]
    confirm_url: str | None = None
    note: str = ""


def _token_auth(config: SourceConfig, authorization: str | None) -> None:
    if config.bearer_token:
        check_bearer(config.bearer_token, authorization)
    elif config.basic_user:
        check_basic(config.basic_user, config.basic_password or "", authorization)


def authenticate(source: str, config: SourceConfig, body: bytes, headers: Mapping[str, str],
                 fetch_cert: Callable[[str], bytes] | None = None,
                 insecure: bool = False) -> None:
    """Check the request's credentials for `source` (header names lower-case)."""
    if source not in SOURCES:
        raise AlertRejected(f"unknown source {source!r}; use one of {', '.join(SOURCES)}", 404)
    if insecure:
        return
    if source == "cloudwatch":
        if fetch_cert is None:
            raise AuthenticationFailed("no SNS certificate fetcher configured")
        verify_sns(load_json(body, headers.get("content-type"), accept_text=True), fetch_cert)
        return
    if not config.has_credentials:
        raise AuthenticationFailed(f"no credentials are configured for {source}; configure "
                                   "them, or start the intake with --insecure-no-auth")
    if source == "pagerduty":
        if not config.hmac_secret:
            raise AuthenticationFailed("pagerduty webhooks need hmac_secret")
        check_pagerduty(config.hmac_secret, body, headers.get("x-pagerduty-signature"))
    elif source == "grafana" and config.hmac_secret:
        check_grafana(config.hmac_secret, body, headers.get("x-grafana-alerting-signature"),
                      headers.get("x-grafana-alerting-timestamp"), config.require_timestamp)
    else:
        _token_auth(config, headers.get("authorization"))


def parse(source: str, body: bytes, headers: Mapping[str, str],
          config: SourceConfig) -> Parsed:
    """The alerts in an authenticated request."""
    content_type = headers.get("content-type")
    if source == "cloudwatch":
        envelope = load_json(body, content_type, accept_text=True)
        if not isinstance(envelope, dict):
            raise AlertRejected("cloudwatch: expected an SNS message object")
        kind = envelope.get("Type") or headers.get("x-amz-sns-message-type")
        if kind == "SubscriptionConfirmation":
            url = str(envelope.get("SubscribeURL", ""))
            check_sns_url(url)
            return Parsed([], confirm_url=url, note="subscription confirmation")
        if kind == "UnsubscribeConfirmation":
            return Parsed([], note="unsubscribed")
        if kind != "Notification":
            raise AlertRejected(f"cloudwatch: SNS Type {kind!r} is not handled")
        return Parsed(parse_cloudwatch_message(envelope.get("Message"),
                                               str(envelope.get("TopicArn", "")),
                                               config.severities))
    data = load_json(body, content_type)
    if source == "alertmanager":
        return Parsed(parse_alertmanager(data, config.severities))
    if source == "grafana":
        return Parsed(parse_grafana(data, config.severities))
    if source == "datadog":
        return Parsed(parse_datadog(data, config.severities))
    if source == "pagerduty":
        alerts = parse_pagerduty(data, config.severities)
        return Parsed(alerts, note="" if alerts else "not an incident event; ignored")
    if source == "generic":
        return Parsed(parse_generic(data, config.generic_mapping, config.severities))
    raise AlertRejected(f"unknown source {source!r}; use one of {', '.join(SOURCES)}", 404)


