"""`email.send`: one message per address through the runbook's `SmtpServer`, each address
claimed in the store before its message goes out, so no retry or resume sends it twice."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from firelane.errors import IntegrationError, VendorRejected, VendorUnavailable
from firelane.redaction import register_secrets_of
from firelane.registry import ActionContext, action
from integrations.common import (
    in_thread,
    load_block,
    retrying,
    sandbox_endpoint,
    sandbox_timeout,
    ssl_context,
)
from integrations.email.client import VENDOR, DeliveryUnknown, SmtpClient
from integrations.email.limits import SUBJECT
from integrations.email.message import build_message, check_address, message_id
from integrations.limits import fit_for

__all__ = ["SendInputs", "SendOutputs"]


class SendInputs(BaseModel):
    """`email.send` inputs."""

    model_config = ConfigDict(extra="forbid")

    to: list[str] = Field(min_length=1, max_length=100, description=(
        "Addresses (at most 100), typically lists (stakeholders@example.com); one message each"))
    subject: str = Field(min_length=1, description=(
        "One line; line breaks become spaces and it is cut at 998 characters (RFC 5322 "
        "§2.1.1), the full text kept on the timeline"))
    body: str = Field(description="The text/plain body")
    html: str | None = Field(default=None, description="An HTML alternative of the body")
    reply_to: str | None = Field(default=None, description="Where replies go (Reply-To)")

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for address in value:
            seen.setdefault(check_address(address.strip()).lower(), address.strip())
        return list(seen.values())

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value.strip())


class SendOutputs(BaseModel):
    """What happened to each address."""

    sent: list[str] = Field(default_factory=list, description="Accepted by the server now")
    skipped: list[str] = Field(default_factory=list, description=(
        "Claimed by an earlier attempt of this step (sent, or possibly sent): not sent again"))
    unconfirmed: list[str] = Field(default_factory=list, description=(
        "The server may have taken it (the connection was lost after the end of DATA, "
        "before its reply): not sent again; check the recipient's mail"))
    message_ids: dict[str, str] = Field(default_factory=dict, description=(
        "Address → Message-ID (the same on every attempt of this step)"))


async def _sandbox_smtp_port(url: str, ca_file: str) -> int:
    """The sandbox mail server's port, from its `/_admin/state`."""
    try:
        async with httpx.AsyncClient(verify=ssl_context(ca_file),
                                     timeout=sandbox_timeout()) as client:
            response = await client.get(f"{url}/_admin/state")
            response.raise_for_status()
            return int(response.json()["smtp_port"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise VendorUnavailable(VENDOR, f"the sandbox at {url} did not say where its mail "
                                f"server is: {type(exc).__name__}: {exc}") from exc


async def _server(ctx: ActionContext) -> Any:
    """The `SmtpServer` block: the sandbox's mail server in sandbox runs, else the block
    the runbook names under `credentials: {email: NAME}` (default `default`)."""
    from integrations.email.block import SmtpServer

    if not ctx.sandbox:
        return await load_block(SmtpServer, ctx, "email")
    url, ca_file = sandbox_endpoint()
    block = SmtpServer.for_sandbox(url, ca_file, await _sandbox_smtp_port(url, ca_file))
    register_secrets_of(block)
    return block


async def _deliver(client: SmtpClient, ctx: ActionContext, sender: str, address: str,
                   data: bytes) -> str:
    return await retrying(lambda: in_thread(client.send, sender, address, data), ctx)


def _failed(failures: dict[str, IntegrationError], out: SendOutputs) -> IntegrationError:
    """One error naming every address that failed (with the server's words) and what the
    others got; permanent only when every failure is."""
    said = "; ".join(f"{address}: {str(exc).removeprefix(VENDOR + ': ')}"
                     for address, exc in failures.items())
    done = f" (sent to {', '.join(out.sent)})" if out.sent else ""
    others = f"; unconfirmed: {', '.join(out.unconfirmed)}" if out.unconfirmed else ""
    message = f"not sent to {', '.join(failures)}{done}{others}: {said}"
    if all(isinstance(exc, VendorRejected) for exc in failures.values()):
        return VendorRejected(VENDOR, message)
    return VendorUnavailable(VENDOR, message)


@action("email.send")
async def send(inputs: SendInputs, ctx: ActionContext) -> SendOutputs:
    """Send one message (text/plain, with an optional HTML alternative) to each address in
    `to` through the runbook's `SmtpServer` block, at most once per address for this step.

    Each address is claimed in the store before its message goes out: an address an earlier
    attempt claimed is `skipped`; a claim is given back only when the server surely does not
    have the message (refused connection, a 4xx/5xx reply before it accepted the message).
    Transient failures (connection errors, 421, 45x) are retried; a 5xx reply fails with
    the server's text. When the connection is lost after the message's end and before the
    server's reply, the address is `unconfirmed` (never resent) and the timeline says what to
    check. The Message-ID derives from the step and the address, so every attempt uses the
    same one. When other addresses fail, the error names each with the server's reply.

    Example:
    `{uses: email.send, with: {to: [stakeholders@example.com], subject: "INC-7 checkout:
    investigating", body: "We are investigating elevated errors at checkout."}}`
    """
    server = await _server(ctx)
    client: SmtpClient = server.get_client()
    sender: str = server.from_address
    subject = fit_for(ctx, SUBJECT, inputs.subject)
    out = SendOutputs()
    failures: dict[str, IntegrationError] = {}
    for address in inputs.to:
        effect = f"email:{address.lower()}"
        msg_id = message_id(ctx.idempotency_key, address, sender)
        out.message_ids[address] = msg_id
        if ctx.claim_effect is not None and not await ctx.claim_effect(effect):
            out.skipped.append(address)
            ctx.emit("email.skipped", f"e-mail to {address} not sent again: an earlier attempt "
                     "of this step claimed it", {"to": address, "message_id": msg_id})
            continue
        data = build_message(from_address=sender, to=address, subject=subject,
                             body=inputs.body, html=inputs.html, reply_to=inputs.reply_to,
                             msg_id=msg_id)
        try:
            reply = await _deliver(client, ctx, sender, address, data)
        except DeliveryUnknown as exc:
            out.unconfirmed.append(address)
            ctx.emit("email.unconfirmed", f"e-mail to {address} may have been delivered: "
                     f"{exc}. It will not be sent again; check that {address} received "
                     f"Message-ID {msg_id} (or the server's log for it) and resend by hand "
                     "if not", {"to": address, "message_id": msg_id, "server": client.server,
                                "error": str(exc)})
            continue
        except IntegrationError as exc:
            if ctx.release_effect is not None:
                await ctx.release_effect(effect)
            failures[address] = exc
            continue
        out.sent.append(address)
        ctx.emit("email.sent", f"e-mail to {address}: {subject}",
                 {"to": address, "message_id": msg_id, "server": client.server,
                  "reply": reply})
    if failures:
        raise _failed(failures, out)
    return out
