"""One operator flow per runbook: what the Prefect UI's "Run" form of a runbook's deployment calls.

`flows.runs.operator:<runbook_name_with_underscores>` (e.g.
`flows.runs.operator:web_5xx_rollback`) is a flow named `runbook` whose signature is built from
the runbook file: the incident's typed fields
(title, a severity dropdown, the service as a dropdown of the catalog's services, labels,
description), the runbook's own `inputs` with their types, enums and defaults, and `dry_run`.
Prefect renders that signature as the deployment's form and checks it before the run starts; the
flow checks it again with the runbook's own rules before any step runs, so a bad input fails the
run at once with the runbook's message. The flow then declares the incident, runs the runbook as
its `run-runbook` subflow (approvals pause their own subflow runs) and writes the timeline report,
whose artifact lands on this run's page.

The schema is built where the module is imported: on `prefect deploy` (the form) and in the
worker (the run). Both read `FIRELANE_RUNBOOKS_DIR` and `FIRELANE_CATALOG`.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Annotated, Any, Literal

from prefect import Flow, flow
from pydantic import Field, ValidationError

from firelane.catalog import load_catalog
from firelane.errors import RunbookError
from firelane.inputs import new_execution, resolve_inputs
from firelane.loader import find_runbook, load_runbook
from firelane.models import IncidentDraft, Severity
from firelane.runbook import InputSpec, LoadedRunbook
from firelane.settings import Settings
from firelane.store import open_store
from flows.engine.plugins import load_plugins
from flows.runs.report import timeline_report
from flows.runs.run_runbook import run_runbook_result, tag_flow_run

__all__ = ["INCIDENT_FIELDS", "attribute_name", "operator_flow", "runbook_names"]

INCIDENT_FIELDS = ("title", "severity", "service", "labels", "description", "dry_run", "sandbox")

_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                          "array": list[Any], "object": dict[str, Any]}


def attribute_name(runbook: str) -> str:
    """The module attribute (and entrypoint suffix) of a runbook's operator flow."""
    return runbook.replace("-", "_")


def runbook_names(settings: Settings | None = None) -> list[str]:
    """Names of the runbooks in `FIRELANE_RUNBOOKS_DIR`, sorted (every file must load)."""
    settings = settings or Settings.from_env()
    load_plugins(settings)
    return sorted(load_runbook(path).runbook.name
                  for path in settings.runbooks_dir.glob("*.y*ml"))


_FIELD_HELP = {
    "title": "What is wrong, in one line.",
    "severity": "SEV1 (worst) to SEV4.",
    "service": "The affected service (from the service catalog).",
    "labels": "Labels the runbook can match and template on, e.g. {\"region\": \"eu-1\"}.",
    "description": "Anything the responders should know.",
    "dry_run": "Change nothing and page nobody: read-only steps run, every other step "
               "records what it would have done or sent (with sandbox: coordination runs "
               "against the sandbox).",
    "sandbox": "Talk to Firelane's sandbox instead of the real vendors (the worker needs "
               "FIRELANE_SANDBOX_URL).",
}


def _input_annotation(spec: InputSpec) -> Any:
    base: Any = Literal[tuple(spec.enum)] if spec.enum else _TYPES[spec.type]
    return base | None if spec.default is None and not spec.required else base


def _signature(loaded: LoadedRunbook, settings: Settings) -> tuple[inspect.Signature, str]:
    """The operator form as a signature, and the docstring that carries its field help."""
    rb = loaded.runbook
    clash = sorted(set(rb.inputs) & (set(INCIDENT_FIELDS) - {"dry_run"}))
    if clash:
        raise RunbookError(f"{loaded.path}: input(s) {', '.join(clash)} collide with the "
                           "incident fields of the operator form; rename them")
    services = sorted(load_catalog(settings.catalog_path).services)
    service: Any = Literal[tuple(services)] if services else str
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("title", kw, annotation=Annotated[str, Field(min_length=1,
                                                                       max_length=500)]),
        inspect.Parameter("severity", kw, default=Severity.SEV2, annotation=Severity),
        inspect.Parameter("service", kw, annotation=service,
                          default=services[0] if len(services) == 1 else inspect.Parameter.empty),
        inspect.Parameter("labels", kw, default={}, annotation=dict[str, str]),
        inspect.Parameter("description", kw, default="", annotation=str)]
    help_lines = dict(_FIELD_HELP)
    for name, spec in rb.inputs.items():
        default = spec.default if spec.default is not None else (
            inspect.Parameter.empty if spec.required else None)
        params.append(inspect.Parameter(name, kw, default=default,
                                         annotation=_input_annotation(spec)))
        help_lines[name] = (spec.description or f"Runbook input ({spec.type}).").replace(
            "\n", " ")
    if "dry_run" not in rb.inputs:
        params.append(inspect.Parameter("dry_run", kw, default=False, annotation=bool))
    params.append(inspect.Parameter("sandbox", kw, default=False, annotation=bool))
    summary = " ".join((rb.description or f"Run the {rb.name} runbook.").split())
    doc = summary + "\n\nArgs:\n" + "".join(
        f"    {p.name}: {help_lines[p.name]}\n" for p in params)
    return inspect.Signature(params, return_annotation=dict[str, Any]), doc


async def _launch(runbook: str, params: dict[str, Any]) -> dict[str, Any]:
    settings = Settings.from_env()
    load_plugins(settings)
    loaded = load_runbook(find_runbook(runbook, settings.runbooks_dir))
    try:
        draft = IncidentDraft.model_validate(
            {k: params[k] for k in ("title", "severity", "service", "labels", "description")
             if params.get(k) is not None})
    except ValidationError as exc:
        raise RunbookError(f"{runbook}: bad incident fields: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
    catalog = load_catalog(settings.catalog_path)
    if catalog.services and draft.service not in catalog.services:
        known = ", ".join(sorted(catalog.services))
        raise RunbookError(f"{runbook}: service {draft.service!r} is not in the catalog "
                           f"{settings.catalog_path} (known: {known})")
    given = {k: params[k] for k in loaded.runbook.inputs if params.get(k) is not None}
    resolve_inputs(loaded, given)
    sandbox = bool(params.get("sandbox"))
    if sandbox and not settings.sandbox_url:
        raise RunbookError(f"{runbook}: sandbox=true but this worker has no FIRELANE_SANDBOX_URL "
                           "(start it with `firelane sandbox` and export what it prints)")
    store = open_store(settings.database_url)
    try:
        incident = store.declare_incident(draft, actor=f"prefect:runbook/{runbook}")
        execution = store.create_execution(new_execution(
            loaded, incident, given, dry_run=bool(params.get("dry_run")), sandbox=sandbox))
    finally:
        store.close()
    await tag_flow_run(f"incident:{incident.id}")
    result = await run_runbook_result(execution.id)
    report = await timeline_report.fn(incident.id, publish=True)
    outcome = {"incident": f"INC-{incident.number}", "execution_id": execution.id,
               "status": result["status"], "steps": result["steps"],
               "report": report["paths"]}
    if result["status"] != "succeeded":
        failed = [str(r["step"]) for r in result["steps"] if r["status"] == "failed"]
        raise RunbookError(f"INC-{incident.number}: runbook {runbook} failed at "
                           f"{', '.join(failed) or 'a step'}; see the timeline report "
                           f"{report['paths'][-1]}")
    return outcome


@cache
def operator_flow(runbook: str) -> Flow[..., Any]:
    """The operator flow of `runbook` (cached per process)."""
    settings = Settings.from_env()
    load_plugins(settings)
    loaded = load_runbook(find_runbook(runbook, settings.runbooks_dir))
    signature, doc = _signature(loaded, settings)

    async def launch(**params: Any) -> dict[str, Any]:
        bound = signature.bind(**params)
        bound.apply_defaults()
        return await _launch(runbook, dict(bound.arguments))

    launch.__signature__ = signature  # type: ignore[attr-defined]
    launch.__name__ = attribute_name(runbook)
    launch.__doc__ = doc
    return flow(name="runbook", flow_run_name=f"{runbook} · {{title}}", log_prints=False,
                persist_result=False, validate_parameters=True)(launch)


def __getattr__(name: str) -> Flow[..., Any]:
    if name.startswith("_"):
        raise AttributeError(name)
    for runbook in runbook_names():
        if attribute_name(runbook) == name:
            return operator_flow(runbook)
    where = Settings.from_env().runbooks_dir.resolve()
    raise AttributeError(f"module {__name__!r} has no runbook flow {name!r}: no runbook by that "
                         f"name in {where} (FIRELANE_RUNBOOKS_DIR; found: "
                         f"{', '.join(runbook_names()) or 'none'})")
