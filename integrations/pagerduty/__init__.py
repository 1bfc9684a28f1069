"""PagerDuty: a credentials block, the `pagerduty` clients with their retries off, actions."""

from integrations.pagerduty import actions as _actions
from integrations.pagerduty.block import PagerDutyCredentials

__all__ = ["PagerDutyCredentials"]
del _actions
