"""Webhook authentication: bearer/basic, PagerDuty and Grafana HMAC, SNS message signatures.

Every comparison is constant-time. Secrets come from configuration (blocks or environment),
never from the request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from firelane.errors import AlertRejected, AuthenticationFailed

__all__ = ["SNS_CERT_HOST", "check_basic", "check_bearer", "check_grafana", "check_pagerduty",
           "check_sns_url", "sns_canonical", "verify_sns"]

SNS_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
CertFetcher = Callable[[str], bytes]


Secrets = str | Sequence[str]


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _each(secrets: Secrets) -> tuple[str, ...]:
    return (secrets,) if isinstance(secrets, str) else tuple(secrets)


def _matches_any(given: str, candidates: Sequence[str]) -> bool:
    results = [_same(given, c) for c in candidates]
    return any(results)


def check_bearer(expected: Secrets, authorization: str | None) -> None:
    """`Authorization: Bearer <token>` must carry `expected` (or one of several: every one is
    compared, in constant time)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not _matches_any(token.strip(), _each(expected)):
        raise AuthenticationFailed("missing or wrong bearer token (Authorization: Bearer ...)")


def check_basic(user: str, password: str, authorization: str | None) -> None:
    """`Authorization: Basic ...` must carry `user:password`."""
    scheme, _, encoded = (authorization or "").partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        given = ""
    ok = _same(given, f"{user}:{password}")
    if scheme.lower() != "basic" or not ok:
        raise AuthenticationFailed("missing or wrong basic credentials")


def check_pagerduty(secret: Secrets, body: bytes, header: str | None) -> None:
    """`X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]` over the raw body; any signature may
    match any of the secrets."""
    expected = [hmac.new(s.encode("utf-8"), body, hashlib.sha256).hexdigest()
                for s in _each(secret)]
    given = [s.strip()[3:] for s in (header or "").split(",") if s.strip().startswith("v1=")]
    if not any([_matches_any(g, expected) for g in given]):
        raise AuthenticationFailed("X-PagerDuty-Signature does not match the body")


def check_grafana(secret: Secrets, body: bytes, signature: str | None, timestamp: str | None,
                  require_timestamp: bool = False, max_age: float = 300,
                  now: float | None = None) -> None:
    """Grafana's optional HMAC: hex(HMAC-SHA256(secret, [timestamp ":"] body)), for any of the
    secrets; a timestamp older (or newer) than `max_age` seconds is refused to stop replays."""
    if timestamp:
        try:
            age = abs((now if now is not None else time.time()) - float(timestamp))
        except ValueError as exc:
            raise AuthenticationFailed("X-Grafana-Alerting-Timestamp is not a number") from exc
        if age > max_age:
            raise AuthenticationFailed(f"signature timestamp is {age:.0f} s old (limit "
                                       f"{max_age:.0f} s)")
        message = timestamp.encode() + b":" + body
    elif require_timestamp:
        raise AuthenticationFailed("X-Grafana-Alerting-Timestamp is required")
    else:
        message = body
    expected = [hmac.new(s.encode("utf-8"), message, hashlib.sha256).hexdigest()
                for s in _each(secret)]
    if not _matches_any((signature or "").strip(), expected):
        raise AuthenticationFailed("X-Grafana-Alerting-Signature does not match the body")


_SNS_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}


def sns_canonical(envelope: Mapping[str, Any]) -> bytes:
    """The string SNS signs: each present key and value on their own lines, in AWS's order."""
    kind = envelope.get("Type")
    if kind not in _SNS_KEYS:
        raise AlertRejected(f"cloudwatch: SNS Type {kind!r} is not a message type")
    lines = []
    for key in _SNS_KEYS[str(kind)]:
        if key == "Subject" and key not in envelope:
            continue
        if not isinstance(envelope.get(key), str):
            raise AlertRejected(f"cloudwatch: SNS {key} is missing")
        lines += [key, envelope[key]]
    return ("\n".join(lines) + "\n").encode("utf-8")


def check_sns_url(url: str, certificate: bool = False) -> None:
    """Only https URLs on `sns.<region>.amazonaws.com` may be fetched (a signing certificate's
    path must also end in .pem)."""
    parsed = urlparse(url)
    if parsed.scheme != "https" or not SNS_CERT_HOST.match(parsed.hostname or "") or (
            certificate and not parsed.path.endswith(".pem")):
        what = "an SNS certificate URL" if certificate else "an SNS URL"
        raise AuthenticationFailed(f"{url!r} is not {what}")


def verify_sns(envelope: Mapping[str, Any], fetch_cert: CertFetcher) -> None:
    """Verify an SNS message's signature (SignatureVersion 1: SHA1, 2: SHA256)."""
    if not isinstance(envelope, Mapping):
        raise AuthenticationFailed("cloudwatch: expected an SNS message object")
    version = str(envelope.get("SignatureVersion", ""))
    algorithm: hashes.HashAlgorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(
        version) or hashes.SHA256()
    if version not in ("1", "2"):
        raise AuthenticationFailed(f"SNS SignatureVersion {version!r} is not supported")
    url = str(envelope.get("SigningCertURL") or envelope.get("SigningCertUrl") or "")
    check_sns_url(url, certificate=True)
    try:
        signature = base64.b64decode(str(envelope.get("Signature", "")), validate=True)
    except ValueError as exc:
        raise AuthenticationFailed("SNS Signature is not base64") from exc
    pem = fetch_cert(url)
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise AuthenticationFailed(f"the SNS signing certificate at {url} is not a PEM "
                                   "certificate") from exc
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AuthenticationFailed("SNS signing certificate does not hold an RSA key")
    try:
        key.verify(signature, sns_canonical(envelope), padding.PKCS1v15(), algorithm)
    except InvalidSignature as exc:
        raise AuthenticationFailed("SNS signature does not match the message") from exc
