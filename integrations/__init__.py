"""Everything that talks to the outside world. Importing this package registers its actions.

`integrations.remediation` holds the remediation actions (shell, HTTP, supervisord, release
rollback). Jira, PagerDuty, Slack and video (Jitsi/Zoom) each have a credentials Block
(`integrations.<vendor>.block`), a client built on the vendor's library and actions;
`integrations.statuspage` posts to Atlassian Statuspage (a credentials Block, a paced `httpx`
client, actions); `integrations.sandbox` holds local stand-ins of all five, a Kubernetes API
server and a mail server. `integrations.prometheus` reads a real Prometheus (a connection
Block, read-only actions, and a graph of the incident); `integrations.alertmanager` silences
alerts in a real Alertmanager; `integrations.kubernetes` acts on a Kubernetes cluster through
the official client (a cluster Block, rollout actions); `integrations.email` sends e-mail
through SMTP (an `SmtpServer` Block, `email.send`). Importing the actions does not import
Prefect (validation and `--plan` stay fast and offline); the blocks do, when first used.
"""

from typing import Any

from integrations import (
    alertmanager,
    email,
    jira,
    kubernetes,
    pagerduty,
    prometheus,
    remediation,
    slack,
    statuspage,
    video,
)

__all__ = ["blocks"]

del (alertmanager, email, jira, kubernetes, pagerduty, prometheus, remediation, slack,
     statuspage, video)


def blocks() -> tuple[Any, ...]:
    """The credentials and connection Block classes (imports Prefect)."""
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

    return (JiraCredentials, PagerDutyCredentials, SlackCredentials, ZoomCredentials,
            SshTarget, HttpHeaders, SupervisorCredentials, PrometheusConnection, SmtpServer,
            StatuspageCredentials, AlertmanagerConnection, KubernetesCluster)
