"""The `timeline-report` flow and `firelane timeline`.

The flow assembles the incident's timeline from the store, PagerDuty and Slack, renders the
Markdown and HTML reports (and, once the incident is resolved, a blameless postmortem draft),
writes them to `FIRELANE_REPORTS_DIR`, publishes a Prefect markdown
artifact (`inc-<n>-report`) and a table artifact of the key times (`inc-<n>-key-times`; keyed by
incident, so the latest version is one click away), attaches the Markdown to the Jira ticket and
uploads it to the war-room channel. Each publication that fails is recorded on the timeline and
does not stop the others.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import flow

from firelane.models import Incident, TimelineEvent
from firelane.registry import call_action
from firelane.settings import Settings
from firelane.store import Store, open_store
from flows.records.report import Report, build_report, render, zone
from flows.records.timeline_sources import KEY_REACTIONS, Found, find_artifacts, vendor_entries

__all__ = ["assemble", "report_once", "timeline_report"]


async def assemble(store: Store, incident: Incident, tz: str = "UTC", offline: bool = False,
                   key_reactions: tuple[str, ...] = KEY_REACTIONS,
                   minutes_saved: dict[str, float] | None = None) -> tuple[Report, Found]:
    """The report, with the vendors' entries unless `offline`."""
    found = find_artifacts(store, incident)
    vendor, left_out = ([], {"vendors": "offline"}) if offline else await vendor_entries(
        found, key_reactions)
    return build_report(store, incident, vendor, tz, left_out, minutes_saved), found


def write_reports(folder: Path, incident: Incident, md: str, html: str) -> list[Path]:
    """`inc-<n>.md` and `inc-<n>.html` in `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"inc-{incident.number}.md", folder / f"inc-{incident.number}.html"]
    paths[0].write_text(md, encoding="utf-8")
    paths[1].write_text(html, encoding="utf-8")
    return paths


async def _publish(found: Found, incident: Incident, md: str,
                   postmortem: str | None) -> dict[str, str]:
    done: dict[str, str] = {}
    name = f"inc-{incident.number}-timeline.md"
    files = [(name, md)] + ([(f"inc-{incident.number}-postmortem.md", postmortem)]
                            if postmortem else [])
    for key, ctx in found["ticket"]:
        try:
            for filename, content in files:
                await call_action("jira.attach_file", {"issue": key, "filename": filename,
                                                "content": content}, ctx)
            done[f"jira {key}"] = "attached"
        except Exception as exc:
            done[f"jira {key}"] = f"failed: {type(exc).__name__}: {exc}"
    for channel, ctx in found["channel"]:
        try:
            await call_action("slack.upload_file", {"channel": channel, "filename": name,
                                             "content": md, "title": f"INC-{incident.number} "
                                             "timeline report"}, ctx)
            done[f"slack {channel}"] = "uploaded"
        except Exception as exc:
            done[f"slack {channel}"] = f"failed: {type(exc).__name__}: {exc}"
    return done


@flow(name="timeline-report", log_prints=False, persist_result=False)
async def timeline_report(incident: str, tz: str = "UTC", publish: bool = True,
                          key_reactions: list[str] | None = None,
                          minutes_saved: dict[str, float] | None = None) -> dict[str, Any]:
    """Assemble, render and publish an incident's timeline report.

    Args:
        incident: INC-12, 12 or the incident id.
        tz: IANA time zone the report shows times in (stored times are UTC).
        publish: also attach it to the Jira ticket and upload it to the Slack channel.
        key_reactions: Slack reactions that mark a message as a key event (default pushpin,
            key, star).
        minutes_saved: minutes of hand work each action saves, by action name (added to and
            overriding the built-in estimates).
    """
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    settings = Settings.from_env()
    store = open_store(settings.database_url, migrate=False)
    try:
        inc = store.get_incident(incident)
        report, found = await assemble(store, inc, tz, False,
                                       tuple(key_reactions or KEY_REACTIONS), minutes_saved)
        md, html = render(report, "md"), render(report, "html")
        paths = await asyncio.to_thread(write_reports, settings.reports_dir, inc, md, html)
        key = f"inc-{inc.number}"
        await acreate_markdown_artifact(markdown=md, key=f"{key}-report",
                                        description=f"INC-{inc.number} timeline report")
        await acreate_table_artifact(
            key=f"{key}-key-times", description=f"INC-{inc.number} key times ({tz})",
            table=[{"time": name, "when": at.astimezone(zone(tz)).isoformat() if at else "",
                    "since_detected_seconds": since.total_seconds() if since else None}
                   for name, at, since in report.times.rows()])
        postmortem: str | None = None
        if inc.status.value in ("resolved", "closed"):
            postmortem = render(report, "postmortem", items=store.list_action_items(inc.id),
                                alerts=len(store.alerts_of(inc.id)))
            pm_path = settings.reports_dir / f"inc-{inc.number}-postmortem.md"
            await asyncio.to_thread(pm_path.write_text, postmortem, encoding="utf-8")
            paths.append(pm_path)
            await acreate_markdown_artifact(markdown=postmortem, key=f"{key}-postmortem",
                                            description=f"INC-{inc.number} postmortem draft")
        published = await _publish(found, inc, md, postmortem) if publish else {}
        where = "; ".join(f"{k}: {v}" for k, v in published.items())
        store.append_events([TimelineEvent(
            incident_id=inc.id, kind="report.published",
            summary=f"Timeline report ({len(report.entries)} events) written to "
                    f"{paths[0].parent}" + (f"; {where}" if where else ""),
            details={"paths": [str(p) for p in paths], "published": published,
                     "left_out": report.left_out})])
        return {"incident": inc.id, "events": len(report.entries),
                "paths": [str(p) for p in paths], "published": published}
    finally:
        store.close()


def report_once(store: Store, incident_id: str, tz: str = "UTC") -> dict[str, Any] | None:
    """Run `timeline-report` for the incident's current resolution unless someone already did
    (blocking: call it from a worker thread or the CLI)."""
    incident = store.get_incident(incident_id)
    if not store.claim_report(incident.id, incident.reopened):
        return None
    return asyncio.run(timeline_report(incident.id, tz=tz))
