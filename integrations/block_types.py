"""Firelane's Prefect block types: registering them, and asking each vendor whether a
credentials block works.

Prefect's UI offers a block type only after it is registered with the API (`prefect block
register -m integrations.block_types` does the same as `register_block_types()`); until then
the "create it in the Prefect UI" advice of Firelane's error messages cannot be followed.
`firelane worker`, the demo and `firelane doctor --fix` register them.

`check_credentials()` makes one cheap authenticated read per vendor, so a block that exists but
holds a revoked token is found before 2 a.m.: Jira `GET /rest/api/2/myself`, PagerDuty
`GET /incidents?limit=1` (REST token) or the routing key's presence (Events v2 has no read),
Slack `auth.test`, Zoom an OAuth token, Statuspage `GET /pages/{page_id}`,
Kubernetes `GET /version` and a list of namespaces, Prometheus a query of `vector(1)`,
Alertmanager its list of silences, SMTP a session
that connects, says EHLO, upgrades with STARTTLS, logs in if configured and QUITs (no
message).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect.blocks.core import Block

from firelane.errors import ConfigError, IntegrationError, VendorRejected, VendorUnavailable
from integrations import blocks
from integrations.alertmanager.block import AlertmanagerConnection
from integrations.email.block import SmtpServer
from integrations.jira.block import JiraCredentials
from integrations.kubernetes.block import KubernetesCluster
from integrations.pagerduty.block import PagerDutyCredentials
from integrations.prometheus.block import PrometheusConnection
from integrations.remediation.blocks import HttpHeaders, SshTarget, SupervisorCredentials
from integrations.slack.block import SlackCredentials
from integrations.statuspage.block import StatuspageCredentials
from integrations.video.block import ZoomCredentials

__all__ = ["BLOCK_TYPES", "CREDENTIALS", "AlertmanagerConnection", "HttpHeaders",
           "JiraCredentials", "KubernetesCluster", "PagerDutyCredentials", "PrometheusConnection",
           "SlackCredentials", "SmtpServer", "SshTarget", "StatuspageCredentials",
           "SupervisorCredentials", "ZoomCredentials", "check_credentials",
           "missing_block_types", "register_block_types"]

BLOCK_TYPES: tuple[type[Block], ...] = blocks()
"""Every block type Firelane defines (`integrations.blocks()`; imported here by name too, so
`prefect block register -m integrations.block_types` finds them)."""

CREDENTIALS: dict[str, type[Block]] = {"jira": JiraCredentials,
                                       "pagerduty": PagerDutyCredentials,
                                       "slack": SlackCredentials, "zoom": ZoomCredentials,
                                       "email": SmtpServer,
                                       "statuspage": StatuspageCredentials,
                                       "kubernetes": KubernetesCluster,
                                       "prometheus": PrometheusConnection,
                                       "alertmanager": AlertmanagerConnection}
"""A runbook's `credentials:` key → the block type its actions load."""


async def register_block_types() -> list[str]:
    """Register every Firelane block type (and its schema) with the Prefect API; their names.
    Idempotent: a registered type is updated in place."""
    for cls in BLOCK_TYPES:
        await cls.aregister_type_and_schema()
    return [cls.get_block_type_name() for cls in BLOCK_TYPES]


async def missing_block_types() -> list[str]:
    """The names of the Firelane block types the Prefect API does not know."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    missing = []
    async with get_client() as client:
        for cls in BLOCK_TYPES:
            try:
                await client.read_block_type_by_slug(cls.get_block_type_slug())
            except ObjectNotFound:
                missing.append(cls.get_block_type_name())
    return missing


def _vendor_error(vendor: str, exc: Exception) -> IntegrationError:
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        return VendorRejected(vendor, f"refused the credentials: {exc.response.get('error')}")
    status = getattr(getattr(exc, "response", None), "status_code", None) \
        or getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500:
        return VendorRejected(vendor, f"refused the credentials ({status}): {exc}")
    return VendorUnavailable(vendor, f"{type(exc).__name__}: {exc}")


def _check_jira(block: JiraCredentials) -> str:
    me: dict[str, Any] = block.get_client().myself()
    return f"authenticated as {me.get('displayName') or me.get('name')}"


def _check_pagerduty(block: PagerDutyCredentials) -> str:
    if block.api_token is None:
        if block.routing_key is None:
            raise ConfigError("the block has neither api_token nor routing_key")
        return "routing key set (Events v2 has no read to check it with); no REST token"
    response = block.rest_client().get("/incidents", params={"limit": 1})
    if response.status_code != 200:
        raise VendorRejected("pagerduty", f"GET /incidents answered {response.status_code}")
    return "REST token accepted" + ("" if block.routing_key else "; no default routing key")


def _check_slack(block: SlackCredentials) -> str:
    answer = block.get_client().auth_test()
    return f"authenticated as {answer.get('user')} in {answer.get('team')}"


def _check_email(block: SmtpServer) -> str:
    return block.get_client().probe()


async def _check_zoom(block: ZoomCredentials) -> str:
    async with block.http() as client:
        await block.token(client)
    return "OAuth token issued"


async def _check_statuspage(block: StatuspageCredentials) -> str:
    async with block.get_client() as statuspage:
        page = await statuspage.get_page()
    return f"page {page.get('name')!r} ({page.get('id')}) readable"


async def _check_prometheus(block: PrometheusConnection) -> str:
    result = await block.get_client().query("vector(1)")
    return f"query answered ({result.result_type})"


async def _check_alertmanager(block: AlertmanagerConnection) -> str:
    silences = await block.get_client().list_silences()
    return f"silences readable ({len(silences)})"


def _check_kubernetes(block: KubernetesCluster) -> str:
    from integrations.kubernetes.client import KubeClient

    kube = KubeClient(block.get_client(), block.timeout_seconds)
    version = kube.version()
    return f"API server {version}; {len(kube.namespaces())} namespaces visible"


async def check_credentials(kind: str, name: str) -> str:
    """Load the `kind` block `name` and make one authenticated read with it; what the vendor
    said. Raises ConfigError (no such block) or IntegrationError (the vendor refused it or
    could not be reached)."""
    cls = CREDENTIALS[kind]
    try:
        block: Any = await cls.aload(name)
    except ValueError as exc:
        raise ConfigError(f"no {cls.get_block_type_name()} block named {name!r}") from exc
    try:
        if isinstance(block, ZoomCredentials):
            return await _check_zoom(block)
        if isinstance(block, StatuspageCredentials):
            return await _check_statuspage(block)
        if isinstance(block, JiraCredentials):
            return await asyncio.to_thread(_check_jira, block)
        if isinstance(block, PagerDutyCredentials):
            return await asyncio.to_thread(_check_pagerduty, block)
        if isinstance(block, SmtpServer):
            return await asyncio.to_thread(_check_email, block)
        if isinstance(block, KubernetesCluster):
            return await asyncio.to_thread(_check_kubernetes, block)
        if isinstance(block, PrometheusConnection):
            return await _check_prometheus(block)
        if isinstance(block, AlertmanagerConnection):
            return await _check_alertmanager(block)
        return await asyncio.to_thread(_check_slack, block)
    except (ConfigError, IntegrationError):
        raise
    except Exception as exc:
        raise _vendor_error(kind, exc) from exc
