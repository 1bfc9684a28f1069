"""Whether the service catalog supplies what each runbook's steps leave to it.

A step may leave out an input its action marks as catalog-supplied (`jira.create_issue`'s
`project` from `jira_project`, `http.check`'s `url` from `health_url`, `release.rollback`'s
`release_dir`). `firelane validate` accepts that, since it cannot know which service an
incident will have; at run time a service without the field fails the step
(`with.project: Field required`, so no ticket at 2 a.m.). `catalog_gaps()` checks every runbook
against every catalog service its `match:` can select, for `firelane doctor`.
"""

from __future__ import annotations

from dataclasses import dataclass

from firelane.catalog import Catalog
from firelane.errors import UnknownAction
from firelane.registry import get_action
from firelane.runbook import LoadedRunbook

__all__ = ["Gap", "catalog_gaps", "selectable_services"]


@dataclass(frozen=True)
class Gap:
    """A step input left to the catalog that a selectable service does not supply."""

    path: str
    runbook: str
    step: str
    uses: str
    input: str
    service: str
    catalog_field: str
    known: bool

    def message(self) -> str:
        """One line: what fails and what to add."""
        where = (f"add {self.catalog_field} to services.{self.service} in the catalog"
                 if self.known else f"add service {self.service!r} to the catalog with "
                 f"{self.catalog_field}")
        return (f"{self.path}: runbook {self.runbook} step {self.step} ({self.uses}) would "
                f"fail with.{self.input}: Field required for service {self.service!r}; "
                f"{where}, or give with.{self.input} in the step")


def selectable_services(loaded: LoadedRunbook, catalog: Catalog) -> list[str]:
    """The services whose incidents `match:` can select: the ones it names (`services`, or a
    `service` label), else every service in the catalog."""
    match = loaded.runbook.match
    if match is not None and match.services:
        return list(match.services)
    if match is not None and "service" in match.labels:
        return [match.labels["service"]]
    return sorted(catalog.services)


def catalog_gaps(runbooks: list[LoadedRunbook], catalog: Catalog) -> list[Gap]:
    """Every (runbook, step, required input, service) the catalog leaves unsupplied."""
    gaps: list[Gap] = []
    for loaded in runbooks:
        services = selectable_services(loaded, catalog)
        for step in loaded.runbook.all_steps():
            try:
                spec = get_action(step.uses)
            except UnknownAction:
                continue
            fields = spec.inputs.model_fields
            for name, attr_path in spec.catalog_fields().items():
                info = next((f for n, f in fields.items() if (f.alias or n) == name), None)
                if info is None or not info.is_required() or name in step.with_:
                    continue
                for service in services:
                    entry = catalog.get(service)
                    if spec.catalog_defaults(entry, {}).get(name) is None:
                        gaps.append(Gap(loaded.path, loaded.runbook.name, step.id, step.uses,
                                        name, service, attr_path, entry is not None))
    return gaps
