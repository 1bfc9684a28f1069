"""Everything that talks to the outside world. Importing this package registers its actions.

Jira, PagerDuty, Slack and video (Jitsi/Zoom) each have a credentials Block, a client built on
the vendor's library and actions; `integrations.sandbox` holds local stand-ins of all four.
"""

from integrations import jira, pagerduty, slack, video
from integrations.jira import JiraCredentials
from integrations.pagerduty import PagerDutyCredentials
from integrations.slack import SlackCredentials
from integrations.video import ZoomCredentials

__all__ = ["BLOCKS", "JiraCredentials", "PagerDutyCredentials", "SlackCredentials",
           "ZoomCredentials"]

BLOCKS = (JiraCredentials, PagerDutyCredentials, SlackCredentials, ZoomCredentials)
del jira, pagerduty, slack, video
