"""Reaching people in Slack from the scheduled reminder flows (action items, update cadence).

A person is named on an incident, an action item or in the catalog as a Slack user id
(`U…`/`W…`, an `@` in front is fine) or an e-mail address; `slack_user` turns either into the
user id a direct message is posted to (`users.lookupByEmail` for an address). A plain name
("alice") cannot be looked up reliably and is refused with `Unreachable`, as is an address
Slack does not know: retrying either cannot help, so callers report it instead of retrying.
"""

from __future__ import annotations

import re

from firelane.errors import ConfigError, VendorRejected
from firelane.inputs import execution_context
from firelane.models import Incident
from firelane.registry import ActionContext
from firelane.store import Store

__all__ = ["Unreachable", "incident_context", "slack_user"]

_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class Unreachable(ConfigError):
    """The person cannot be found in Slack (a plain name, or an unknown e-mail address)."""


def incident_context(store: Store, incident: Incident, step: str) -> ActionContext:
    """A context with the credentials and sandbox flag of the incident's first runbook (a
    non-sandbox context with default credentials when it ran none): reminders reach the
    incident's own Slack workspace, the sandbox for a sandbox incident."""
    executions = store.list_executions(incident.id)
    if executions:
        return execution_context(executions[0], incident, step, step)
    return ActionContext(incident=incident, execution_id="none", step_id=step,
                         idempotency_key=step)


async def slack_user(who: str, ctx: ActionContext) -> str:
    """The Slack user id of `who` (a user id, `@`-prefixed or not, or an e-mail address).

    Raises:
        Unreachable: `who` is a plain name, or an address Slack does not know.
        VendorUnavailable: Slack did not answer (worth another try).
    """
    from integrations.slack.api import call, client_for

    person = who.strip().lstrip("@")
    if _SLACK_ID.match(person):
        return person
    if "@" not in person:
        raise Unreachable(f"{who!r} is neither a Slack user id nor an e-mail address")
    client = await client_for(ctx)
    try:
        found = await call(client.users_lookupByEmail, email=person)
    except VendorRejected as exc:
        if "users_not_found" in str(exc):
            raise Unreachable(f"Slack knows no user with e-mail {person}") from exc
        raise
    return str(found["user"]["id"])
