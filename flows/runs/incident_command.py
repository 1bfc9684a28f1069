"""The `incident-command` flow: the incident commander's verbs from the Prefect UI.

An operator who lives in the Prefect UI opens the `incident-command` deployment, picks the
incident, the verb (acknowledge, set status, set severity, assign a role, add a note, post a
stakeholder update) and its value, and runs it: the same `firelane.commands` implementation as
the CLI, recorded through `prefect-ui` and marked not verified (the form's "by" is the
operator's word; every Prefect user shares one API credential). Acknowledging or changing status
brings the page and ticket in step, as from any other side. A refused change fails the run with
the reason.
"""

from __future__ import annotations

from enum import StrEnum

from prefect import flow, get_run_logger

from firelane.catalog import serving_catalog
from firelane.commands import Actor, Changed, IncidentCommands
from firelane.errors import ConfigError
from firelane.loader import load_valid_runbooks
from firelane.models import IncidentStatus, Role, Severity
from firelane.settings import Settings
from firelane.store import open_store
from firelane.updates import parse_update_words

__all__ = ["Verb", "incident_command"]


class Verb(StrEnum):
    """What `incident-command` does."""

    ACKNOWLEDGE = "acknowledge"
    STATUS = "status"
    SEVERITY = "severity"
    ROLE = "role"
    NOTE = "note"
    UPDATE = "update"


@flow(name="incident-command", log_prints=False)
async def incident_command(incident: str, verb: Verb, value: str, by: str,
                           reason: str = "") -> str:
    """Run one incident command from the Prefect UI.

    Args:
        incident: INC-12, 12 or the incident id.
        verb: acknowledge, status, severity, role, note or update.
        value: status: declared/acknowledged/mitigated/resolved/closed; severity: SEV1-SEV4;
            role: `commander alice`, `communicator bob` or `investigator carol`; note: its
            text; update: `[public] investigating|identified|monitoring|resolved
            [web=partial_outage] message` (a stakeholder update; a public one waits for
            approval); acknowledge: ignored.
        by: who you are (recorded, not verified).
        reason: why (status and severity changes).
    """
    logger = get_run_logger()
    settings = Settings.from_env()
    store = open_store(settings.database_url)
    cmds = IncidentCommands(store, load_valid_runbooks(settings.runbooks_dir)[0])
    actor = Actor(name=by.strip() or "prefect-ui", via="prefect-ui", verified=False)
    if Verb(verb) is Verb.UPDATE:
        posted = cmds.post_update(incident, parse_update_words(value.split()), actor,
                                  serving_catalog(settings.catalog_path))
        told = f"INC-{store.get_incident(incident).number}: {posted.said}"
        logger.info(told)
        return told
    result = _apply(cmds, incident, Verb(verb), value.strip(), actor, reason)
    if result.changed and Verb(verb) in (Verb.ACKNOWLEDGE, Verb.STATUS):
        from flows.engine.lifecycle import drain

        await drain(store, result.incident.id)
    if result.changed and Verb(verb) is Verb.SEVERITY:
        from flows.engine.severity import follow_severity

        for line in await follow_severity(store, result.incident.id):
            logger.info(line)
    if result.changed and Verb(verb) is not Verb.NOTE:
        from flows.engine.war_room import mirror_war_room

        person = value.partition(" ")[2] if Verb(verb) is Verb.ROLE else ""
        await mirror_war_room(store, result.incident.id, [person] if person else None)
    told = f"INC-{result.incident.number}: " + (
        result.said if result.changed else f"nothing to change ({result.said})")
    logger.info(told)
    return told


def _apply(cmds: IncidentCommands, ref: str, verb: Verb, value: str, actor: Actor,
           reason: str) -> Changed:
    try:
        if verb is Verb.ACKNOWLEDGE:
            return cmds.acknowledge(ref, actor)
        if verb is Verb.STATUS:
            return cmds.set_status(ref, IncidentStatus(value.lower()), actor, reason)
        if verb is Verb.SEVERITY:
            return cmds.set_severity(ref, Severity(value.upper()), actor, reason)
        if verb is Verb.ROLE:
            role, _, person = value.partition(" ")
            return cmds.assign(ref, Role(role.lower()), person, actor)
    except ValueError as exc:
        raise ConfigError(f"incident-command {verb}: value {value!r} is not valid ({exc}); "
                          "see the deployment's description for each verb's values") from exc
    return cmds.note(ref, value, actor)
