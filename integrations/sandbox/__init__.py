"""The sandbox: stateful local stand-ins of Jira, PagerDuty, Slack, Zoom, Statuspage and a
Kubernetes API server, and a mail server (a product feature).

`Sandbox().start()` serves them over TLS in-process; `firelane sandbox` runs them as a service.
"""

from integrations.sandbox.faults import FaultRule, Faults
from integrations.sandbox.server import Sandbox, build_app
from integrations.sandbox.state import SandboxState

__all__ = ["FaultRule", "Faults", "Sandbox", "SandboxState", "build_app"]
