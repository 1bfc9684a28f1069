"""Jira's documented limits on what Firelane sends, and the errors Jira answers past them.

Jira Cloud REST v2/v3 `POST /rest/api/2/issue`
(https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issues/#api-rest-api-2-issue-post):
the `summary` system field holds at most 255 characters, counted as Java counts them (UTF-16
code units), and must be a single line (https://support.atlassian.com/jira-cloud-administration/docs/what-are-the-limits-on-jira-cloud-fields/,
limits measured in ENVIRONMENT.md). A refusal is HTTP 400 with
`{"errorMessages": [], "errors": {"summary": "..."}}`.
"""

from __future__ import annotations

from firelane.registry import ActionContext
from integrations.limits import Limit, fit_for, utf16_units

__all__ = ["SUMMARY", "SUMMARY_NEWLINE_ERROR", "SUMMARY_TOO_LONG_ERROR", "fit_summary"]

_DOC = ("https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issues/"
        "#api-rest-api-2-issue-post")

SUMMARY = Limit("jira", "summary", 255, _DOC, unit=utf16_units, one_line=True)
SUMMARY_TOO_LONG_ERROR = "Summary must be less than 255 characters."
SUMMARY_NEWLINE_ERROR = "The summary is invalid because it contains newline characters."


def fit_summary(ctx: ActionContext, summary: str, description: str) -> tuple[str, str]:
    """The summary Jira accepts and the description to send with it: a summary that had to be
    fitted is put in full at the top of the description, where Jira has room."""
    fitted = fit_for(ctx, SUMMARY, summary)
    if fitted == summary:
        return summary, description
    return fitted, f"{summary}\n\n{description}" if description else summary
