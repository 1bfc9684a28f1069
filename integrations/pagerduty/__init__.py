"""PagerDuty: a credentials block, the `pagerduty` clients with their retries off, actions."""

from integrations.pagerduty import actions as _actions
from integrations.pagerduty import urgency as _urgency

__all__: list[str] = []
del _actions, _urgency
