"""Everything that talks to the outside world. Importing this package registers its actions.

Integrations (Jira, PagerDuty, Slack, video, remediation, alert sources and the sandbox) arrive
in later issues; the core actions (`core.note`, `core.wait`, `core.fail`) live in `firelane`.
"""

import firelane as _firelane

__all__: list[str] = []
del _firelane
