"""Firelane's core: the incident model, runbook language, templating, action registry and store.

No network I/O lives here. Integrations register actions with `firelane.action`; flows run
runbooks with the engine in `flows/`.
"""

from firelane import core_actions as _core_actions
from firelane import update_actions as _update_actions
from firelane.catalog import Catalog, ServiceEntry, load_catalog
from firelane.errors import (
    ActionError,
    ApprovalRejected,
    ConfigError,
    FirelaneError,
    RunbookError,
    RunbookValidationError,
    StoreError,
    TemplateError,
)
from firelane.loader import load_runbook, parse_runbook
from firelane.models import (
    ActionItem,
    Alert,
    Execution,
    Incident,
    IncidentDraft,
    IncidentStatus,
    Severity,
    TimelineEvent,
)
from firelane.registry import ActionContext, ActionSpec, action, get_action, registered_actions
from firelane.runbook import LoadedRunbook, Runbook, Step
from firelane.settings import Settings

del _core_actions, _update_actions

__all__ = [
    "ActionContext",
    "ActionError",
    "ActionItem",
    "ActionSpec",
    "Alert",
    "ApprovalRejected",
    "Catalog",
    "ConfigError",
    "Execution",
    "FirelaneError",
    "Incident",
    "IncidentDraft",
    "IncidentStatus",
    "LoadedRunbook",
    "Runbook",
    "RunbookError",
    "RunbookValidationError",
    "ServiceEntry",
    "Settings",
    "Severity",
    "Step",
    "StoreError",
    "TemplateError",
    "TimelineEvent",
    "action",
    "get_action",
    "load_catalog",
    "load_runbook",
    "parse_runbook",
    "registered_actions",
]
