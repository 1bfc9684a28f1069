"""Validation of `shell.run` and `shell.check` steps against the runbook's `shell:` block.

A literal argv[0] that the runbook does not list (`shell.allow` for `shell.run`,
`shell.read_only` for `shell.check`) is refused here, with its file and line, so the author
learns it before an incident does; a templated argv[0] is only knowable at run time, where the
action refuses it the same way.
"""

from __future__ import annotations

from firelane.errors import Problem
from firelane.runbook import Runbook
from firelane.templating import has_template
from firelane.yamlsrc import Located

__all__ = ["POLICIES", "shell_problems"]

POLICIES = {"shell.run": "allow", "shell.check": "read_only"}


def shell_problems(located: Located, runbook: Runbook) -> list[Problem]:
    """Every shell step whose literal argv[0] is not in the list its action reads."""
    out: list[Problem] = []
    for key, steps in (("steps", runbook.steps), ("on_failure", runbook.on_failure)):
        for index, step in enumerate(steps):
            policy = POLICIES.get(step.uses)
            argv = step.with_.get("argv")
            if policy is None or not isinstance(argv, list) or not argv:
                continue
            first = argv[0]
            if not isinstance(first, str) or has_template(first):
                continue
            listed: list[str] = getattr(runbook.shell, policy)
            if first in listed:
                continue
            hint = ""
            if step.uses == "shell.check" and first in runbook.shell.allow:
                hint = (f"; {first!r} is in shell.allow, which is for shell.run: a diagnostic "
                        "that changes nothing belongs in shell.read_only")
            out.append(located.problem(
                (key, index, "with", "argv", 0),
                f"{step.uses}: {first!r} is not in this runbook's shell.{policy} "
                f"({', '.join(listed) or 'empty'}); add it there{hint}"))
    return out
