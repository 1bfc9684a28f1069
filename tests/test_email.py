"""`email.send` against a real SMTP server (the sandbox's aiosmtpd, STARTTLS with the
sandbox's CA, AUTH) through the real `smtplib`, with per-address claims in a real store:
one message per address, never two, whatever the server does."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import smtplib
import ssl
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from firelane.errors import VendorRejected, VendorUnavailable
from firelane.registry import ActionContext
from firelane.store import Store
from integrations.email.block import SmtpServer
from integrations.email.message import message_id
from integrations.sandbox import Sandbox
from integrations.sandbox.smtp import SandboxSmtp
from tests.sandbox_fixtures import make_ctx, run_action

LIST = "stakeholders@example.com"
OTHER = "exec-team@example.org"


@pytest.fixture
def mail(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A clean sandbox whose mail server requires a login, retries settling fast."""
    sandbox.state.smtp_require_auth = True
    monkeypatch.setenv("FIRELANE_RETRY_SETTLE_SECONDS", "0.1")
    yield sandbox
    sandbox.state.smtp_require_auth = False


def claiming(ctx: ActionContext, store: Store) -> ActionContext:
    """`ctx` with the engine's claims: the store's `step_effects` under the step's key."""
    key = ctx.idempotency_key

    async def claim(effect: str) -> bool:
        return await asyncio.to_thread(store.claim_effect, key, effect)

    async def release(effect: str) -> None:
        await asyncio.to_thread(store.release_effect, key, effect)

    return replace(ctx, claim_effect=claim, release_effect=release)


def send(ctx: ActionContext, to: list[str], **more: Any) -> Any:
    inputs = {"to": to, "subject": "INC-7 checkout: investigating",
              "body": "We are investigating.", **more}
    return asyncio.run(run_action("email.send", inputs, ctx))


def received(sb: Sandbox, address: str | None = None) -> list[dict[str, Any]]:
    return [m for m in sb.state.emails if address is None or m["rcpt_tos"] == [address]]


def parsed(message: dict[str, Any]) -> EmailMessage:
    got = email.message_from_bytes(message["raw"].encode(), policy=email.policy.default)
    assert isinstance(got, EmailMessage)
    return got


def test_one_message_per_address_with_correct_headers_and_utf8(mail: Sandbox,
                                                               sq: Store) -> None:
    ctx = claiming(make_ctx("notify"), sq)
    subject = "INC-7 Überweisungen: 支付 degraded — investigating"
    body = "Zahlungen schlagen fehl.\n.\nLine after a lone dot; 🚒 on the way.\n"
    out = send(ctx, [LIST, OTHER], subject=subject, body=body, html="<p>Zahlungen</p>",
               reply_to="incident-commander@example.com")
    assert out.sent == [LIST, OTHER] and out.skipped == [] and out.unconfirmed == []
    assert [m["rcpt_tos"] for m in mail.state.emails] == [[LIST], [OTHER]]
    for address in (LIST, OTHER):
        (kept,) = received(mail, address)
        message = parsed(kept)
        assert message["From"] == "firelane@sandbox.firelane.test"
        assert kept["mail_from"] == "firelane@sandbox.firelane.test"
        assert message["To"] == address and message["Subject"] == subject
        assert message["Reply-To"] == "incident-commander@example.com"
        assert message["Message-ID"] == out.message_ids[address] == message_id(
            ctx.idempotency_key, address, "firelane@sandbox.firelane.test")
        assert message["Date"].datetime is not None
        assert message["Auto-Submitted"] == "auto-generated"
        plain = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert plain is not None and plain.get_content().replace("\r\n", "\n") == body
        assert html is not None and html.get_content().strip() == "<p>Zahlungen</p>"
        assert kept["text"] == body
        assert kept["raw"].isascii(), "7-bit transfer encodings: no 8BITMIME needed"
    assert len({m["message_id"] for m in mail.state.emails}) == 2
    assert [e.kind for e in ctx.events] == ["email.sent", "email.sent"]


def test_an_ascii_body_with_dot_lines_arrives_intact(mail: Sandbox) -> None:
    body = "Status:\n.\n..\n.leading dot\nend\n"
    send(make_ctx("dots"), [LIST], body=body)
    (kept,) = mail.state.emails
    assert "\r\n.\r\n" in kept["raw"], "sent as 7bit, so the lone dot was on the wire"
    assert kept["text"] == body


def test_the_state_endpoint_shows_the_port_and_the_messages(mail: Sandbox) -> None:
    import httpx

    send(make_ctx("shown"), [LIST])
    state = httpx.get(f"{mail.url}/_admin/state", verify=_ca(mail)).json()
    assert state["smtp_port"] == mail.smtp_port
    assert [m["message_id"] for m in state["emails"]] == [mail.state.emails[0]["message_id"]]
    httpx.post(f"{mail.url}/_admin/reset", verify=_ca(mail))
    assert httpx.get(f"{mail.url}/_admin/state", verify=_ca(mail)).json()["emails"] == []


@pytest.mark.parametrize("code", [421, 451])
def test_a_temporary_reply_is_retried_and_sends_once(mail: Sandbox, sq: Store,
                                                     code: int) -> None:
    rule = mail.faults.add(path="/smtp", method="MAIL", status=code)
    ctx = claiming(make_ctx("temporary"), sq)
    out = send(ctx, [LIST])
    assert rule.hits == 1 and out.sent == [LIST] and len(received(mail)) == 1
    (retry,) = [e for e in ctx.events if e.kind == "integration.retry"]
    assert f"answered {code}" in retry.summary


def test_a_permanent_reply_names_the_address_and_the_server_text(mail: Sandbox,
                                                                 sq: Store) -> None:
    mail.faults.add(path="/smtp", method="RCPT", status=550)
    ctx = claiming(make_ctx("permanent"), sq)
    with pytest.raises(VendorRejected) as caught:
        send(ctx, [LIST, OTHER])
    text = str(caught.value)
    assert f"not sent to {LIST} (sent to {OTHER})" in text
    assert "550 5.7.1 Relaying denied: mailbox unavailable (sandbox fault)" in text
    assert "RCPT TO" in text and not caught.value.retryable
    assert [m["rcpt_tos"] for m in mail.state.emails] == [[OTHER]]
    assert [e for e in ctx.events if e.kind == "integration.retry"] == []
    again = send(ctx, [LIST, OTHER])
    assert again.sent == [LIST] and again.skipped == [OTHER], "the refused claim was released"
    assert len(received(mail, LIST)) == len(received(mail, OTHER)) == 1


def test_a_resumed_step_sends_nothing_again(mail: Sandbox, sq: Store) -> None:
    first = send(claiming(make_ctx("resumed"), sq), [LIST, OTHER])
    assert first.sent == [LIST, OTHER]
    resumed = claiming(make_ctx("resumed"), sq)
    out = send(resumed, [LIST, OTHER])
    assert out.sent == [] and out.skipped == [LIST, OTHER]
    assert out.message_ids == first.message_ids
    assert len(mail.state.emails) == 2
    assert [e.kind for e in resumed.events] == ["email.skipped", "email.skipped"]
    other_step = send(claiming(make_ctx("next-update"), sq), [LIST])
    assert other_step.sent == [LIST] and len(mail.state.emails) == 3


def test_lost_reply_after_data_is_unconfirmed_and_never_resent(mail: Sandbox,
                                                               sq: Store) -> None:
    rule = mail.faults.add(path="/smtp", method="DATA", kind="apply_then_reset")
    ctx = claiming(make_ctx("lost"), sq)
    out = send(ctx, [LIST, OTHER])
    assert rule.hits == 1
    assert out.unconfirmed == [LIST] and out.sent == [OTHER]
    assert len(received(mail, LIST)) == 1
    (event,) = [e for e in ctx.events if e.kind == "email.unconfirmed"]
    assert out.message_ids[LIST] in event.summary and "check that" in event.summary
    assert [e for e in ctx.events if e.kind == "integration.retry"] == []
    again = send(claiming(make_ctx("lost"), sq), [LIST, OTHER])
    assert again.skipped == [LIST, OTHER] and len(received(mail, LIST)) == 1


def _ca(sb: Sandbox) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=sb.ca_file)


def _block(mail: Sandbox, **changes: Any) -> SmtpServer:
    block = SmtpServer.for_sandbox(mail.url, mail.ca_file, mail.smtp_port)
    return block.model_copy(update=changes)


@contextlib.contextmanager
def smtp_down(sb: Sandbox) -> Iterator[None]:
    """The sandbox's mail server stopped (its port refuses connections), then a fresh one."""
    sb.smtp.stop()
    try:
        yield
    finally:
        sb.smtp = SandboxSmtp(sb.state, sb.faults, sb.tls, sb.smtp_port).start()


def test_server_down_is_a_clear_vendor_unavailable(mail: Sandbox, sq: Store) -> None:
    ctx = claiming(make_ctx("down"), sq)
    with smtp_down(mail), pytest.raises(VendorUnavailable) as caught:
        send(ctx, [LIST])
    assert re.search(r"cannot reach 127\.0\.0\.1:\d+: ConnectionRefusedError", str(caught.value))
    assert f"not sent to {LIST}" in str(caught.value)
    assert len([e for e in ctx.events if e.kind == "integration.retry"]) == 3
    assert send(ctx, [LIST]).sent == [LIST], "a refused connection gave the claim back"
    assert len(received(mail)) == 1


def test_bad_credentials_are_a_clear_error(mail: Sandbox) -> None:
    client = _block(mail, password=SecretStr("wrong-password")).get_client()
    with pytest.raises(VendorRejected) as caught:
        client.send("firelane@sandbox.firelane.test", LIST, b"Subject: x\r\n\r\nx\r\n")
    assert "535" in str(caught.value) and "username and password" in str(caught.value)
    assert "wrong-password" not in str(caught.value)
    assert "logged in as sandbox" in _block(mail).get_client().probe()
    assert mail.state.emails == []


def test_an_untrusted_certificate_is_refused(mail: Sandbox) -> None:
    client = _block(mail, verify=True).get_client()
    with pytest.raises(VendorRejected, match="TLS certificate not trusted"):
        client.probe()


def test_a_subject_cannot_inject_headers(mail: Sandbox) -> None:
    ctx = make_ctx("inject")
    out = send(ctx, [LIST], subject="Update\r\nBcc: attacker@evil.example\r\n\r\nfake body")
    (kept,) = mail.state.emails
    message = parsed(kept)
    assert message["Subject"] == "Update Bcc: attacker@evil.example fake body"
    assert message["Bcc"] is None and kept["rcpt_tos"] == [LIST] and out.sent == [LIST]
    (fitted,) = [e for e in ctx.events if e.kind == "vendor.fitted"]
    assert fitted.details["maximum"] == 998 and "rfc5322" in fitted.details["doc"]
    long = send(make_ctx("long"), [LIST], subject="x" * 2000)
    assert long.sent == [LIST]
    assert len(parsed(mail.state.emails[-1])["Subject"]) == 998
    assert all(len(line) <= 998 for line in mail.state.emails[-1]["raw"].split("\r\n"))


@pytest.mark.parametrize("bad", [{"to": ["a@b.org\r\nBcc: c@d.org"]}, {"to": ["Ann <a@b.org>"]},
                                 {"to": ["not-an-address"]}, {"to": []},
                                 {"reply_to": "x@y.org\nBcc: z@q.org"}])
def test_addresses_must_be_bare_addresses(mail: Sandbox, bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        send(make_ctx("bad"), **{"to": [LIST], **bad})
    assert mail.state.emails == []


def test_a_bare_context_sends_without_claims(mail: Sandbox) -> None:
    ctx = make_ctx("bare")
    assert ctx.claim_effect is None
    assert send(ctx, [LIST, LIST.upper()]).sent == [LIST], "one message per address"
    assert len(mail.state.emails) == 1


FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "421-at-mail": ({"method": "MAIL", "status": 421}, "sent"),
    "451-at-rcpt": ({"method": "RCPT", "status": 451}, "sent"),
    "451-after-data": ({"method": "DATA", "status": 451}, "sent"),
    "reset-at-rcpt": ({"method": "RCPT", "kind": "reset"}, "sent"),
    "slow-mail-reply": ({"method": "MAIL", "kind": "latency", "latency": 1.5}, "sent"),
    "550-at-rcpt": ({"method": "RCPT", "status": 550}, "failed"),
    "554-after-data": ({"method": "DATA", "status": 554}, "failed"),
    "slow-data-reply": ({"method": "DATA", "kind": "latency", "latency": 1.5},
                               "unconfirmed"),
    "data-reply-lost": ({"method": "DATA", "kind": "apply_then_reset"}, "unconfirmed"),
    "server-down": ({}, "down"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("action", ["email.send"])
@pytest.mark.fault_matrix
def test_email_fault_matrix(mail: Sandbox, sq: Store, action: str, fault: str) -> None:
    """Every SMTP fault → exactly one message or a clear failure, never two, and a re-run of
    the same step (the engine's retry or a resume) sends nothing more."""
    spec, expected = FAULTS[fault]
    ctx = claiming(make_ctx(f"matrix-{fault}"), sq)
    if expected == "down":
        with smtp_down(mail), pytest.raises(VendorUnavailable, match="cannot reach"):
            send(ctx, [LIST])
        assert len([e for e in ctx.events if e.kind == "integration.retry"]) == 3
        assert send(claiming(make_ctx(f"matrix-{fault}"), sq), [LIST]).sent == [LIST]
        assert len(received(mail)) == 1
        return
    rule = mail.faults.add(path="/smtp", **spec)
    if expected == "failed":
        with pytest.raises(VendorRejected, match=LIST):
            send(ctx, [LIST])
        assert received(mail) == []
    else:
        out = send(ctx, [LIST])
        assert getattr(out, expected) == [LIST]
        retries = [e for e in ctx.events if e.kind == "integration.retry"]
        assert len(retries) == (1 if expected == "sent" else 0)
    assert rule.hits == 1, "the fault never fired"
    deadline = 3.0
    while expected == "unconfirmed" and not received(mail) and deadline > 0:
        asyncio.run(asyncio.sleep(0.1))
        deadline -= 0.1
    effects = len(received(mail))
    wanted = 0 if expected == "failed" else 1
    assert effects == wanted, f"{action} under {fault}: {effects} effects"
    again = send(claiming(make_ctx(f"matrix-{fault}"), sq), [LIST])
    effects = len(received(mail))
    assert effects == 1, f"{action} under {fault}, re-run: {effects} effects"
    assert again.skipped == ([] if expected == "failed" else [LIST])


def test_smtp_fault_rules_can_be_armed_over_http(mail: Sandbox) -> None:
    import httpx

    answer = httpx.post(f"{mail.url}/_admin/faults", verify=_ca(mail),
                        json={"path": "/smtp", "method": "RCPT", "status": 550})
    assert answer.json()["ok"]
    with pytest.raises(VendorRejected, match=r"550 5\.7\.1"):
        send(make_ctx("armed"), [LIST])
    httpx.post(f"{mail.url}/_admin/config", verify=_ca(mail),
               json={"smtp_require_auth": False})
    smtp = smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=5)
    try:
        smtp.sendmail("a@example.com", [LIST], b"Subject: x\r\n\r\nx\r\n")
    finally:
        smtp.quit()
    assert received(mail, LIST)[0]["subject"] == "x"


@pytest.mark.prefect
def test_a_saved_block_is_checked_and_sent_through(prefect_api: str, mail: Sandbox) -> None:
    """The production path: the block the runbook names, loaded from Prefect, and the
    credentials probe (EHLO, STARTTLS, AUTH, QUIT; no message)."""
    from integrations.block_types import CREDENTIALS, check_credentials
    from integrations.common import forget_blocks

    assert CREDENTIALS["email"] is SmtpServer
    _block(mail).save("mail-test", overwrite=True)
    _block(mail, password=SecretStr("wrong-password")).save("mail-wrong", overwrite=True)
    forget_blocks()
    said = asyncio.run(check_credentials("email", "mail-test"))
    assert said.endswith("answered EHLO (STARTTLS, logged in as sandbox)")
    with pytest.raises(VendorRejected, match="535"):
        asyncio.run(check_credentials("email", "mail-wrong"))
    assert mail.state.emails == []
    ctx = replace(make_ctx("saved"), sandbox=False, credentials={"email": "mail-test"})
    assert send(ctx, [LIST]).sent == [LIST] and len(received(mail, LIST)) == 1
