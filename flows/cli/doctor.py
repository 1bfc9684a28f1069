"""`firelane doctor`: is everything Firelane depends on there and working? One line per check,
with the fix.

Checks, in the order a new install meets them: the Prefect API (reachable and authenticated),
Firelane's block types registered with it (so the Prefect UI can create credentials blocks),
every credentials block the runbooks name (present, and accepted by its vendor in one cheap
authenticated read), the service catalog and the runbooks (valid), every runbook against every
catalog service its `match:` can select (the catalog fields its steps leave to the catalog), the
incident store (reachable, schema current) and the intake (`/readyz`). `--fix` registers the
block types. Exit status 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from firelane.catalog import Catalog, load_catalog
from firelane.coverage import catalog_gaps
from firelane.errors import ConfigError, FirelaneError, IntegrationError
from firelane.loader import load_runbook
from firelane.runbook import LoadedRunbook
from firelane.settings import Settings
from firelane.store import Store

__all__ = ["Finding", "add_doctor_command", "run_checks"]

TIMEOUT_SECONDS = 10.0
_INTEGRATIONS = ("jira", "pagerduty", "slack", "email", "statuspage", "kubernetes", "prometheus",
                 "alertmanager")


@dataclass(frozen=True)
class Finding:
    """One check's result: `ok`, `FAIL` or `skip`, what was found, and how to fix it."""

    state: str
    check: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """The line `doctor` prints."""
        fix = f"  → {self.fix}" if self.fix and self.state != "ok" else ""
        return f"{self.state:<4}  {self.check:<22} {self.detail}{fix}"


async def _prefect_api(timeout: float) -> Finding:
    url = os.environ.get("PREFECT_API_URL", "")
    if not url:
        return Finding("FAIL", "prefect-api", "PREFECT_API_URL is not set",
                       "export PREFECT_API_URL=http://<prefect server>:4200/api")
    from prefect.client.orchestration import get_client

    try:
        async with asyncio.timeout(timeout), get_client() as client:
            await client.read_block_types()
    except httpx.HTTPStatusError as exc:
        code = exc.response.status_code
        if code in (401, 403):
            return Finding("FAIL", "prefect-api", f"{url} refused the request ({code})",
                           "set PREFECT_API_AUTH_STRING to the server's "
                           "PREFECT_SERVER_API_AUTH_STRING")
        return Finding("FAIL", "prefect-api", f"{url} answered {code}",
                       "check the Prefect server's log")
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        return Finding("FAIL", "prefect-api", f"{url} unreachable ({type(exc).__name__})",
                       "start the Prefect server (`prefect server start`) or fix "
                       "PREFECT_API_URL")
    return Finding("ok", "prefect-api", f"{url} answers an authenticated read")


async def _block_types(fix: bool) -> Finding:
    from integrations.block_types import missing_block_types, register_block_types

    missing = await missing_block_types()
    if missing and fix:
        await register_block_types()
        registered = missing
        missing = await missing_block_types()
        if not missing:
            return Finding("ok", "block-types", f"registered {', '.join(registered)}")
    if missing:
        return Finding("FAIL", "block-types", f"not registered: {', '.join(missing)} (the "
                       "Prefect UI cannot create them)", "firelane doctor --fix (or `prefect "
                       "block register -m integrations.block_types`)")
    return Finding("ok", "block-types", "every Firelane block type is registered")


def _needed(runbooks: list[LoadedRunbook]) -> dict[tuple[str, str], list[str]]:
    """(credentials kind, block name) → the runbooks that need it."""
    needed: dict[tuple[str, str], list[str]] = {}
    for loaded in runbooks:
        runbook = loaded.runbook
        kinds = {step.uses.split(".", 1)[0] for step in runbook.all_steps()}
        kinds = {k for k in kinds if k in _INTEGRATIONS} | (set(runbook.credentials) & {
            *_INTEGRATIONS, "zoom"})
        for kind in sorted(kinds):
            needed.setdefault((kind, runbook.credentials.get(kind, "default")),
                              []).append(runbook.name)
    return needed


async def _credentials(runbooks: list[LoadedRunbook], timeout: float) -> list[Finding]:
    from integrations.block_types import CREDENTIALS, check_credentials

    out = []
    for (kind, name), users in _needed(runbooks).items():
        check = f"credentials {kind}/{name}"
        type_name = CREDENTIALS[kind].get_block_type_name()
        try:
            async with asyncio.timeout(timeout):
                said = await check_credentials(kind, name)
        except ConfigError as exc:
            out.append(Finding("FAIL", check, f"{exc} (used by {', '.join(users)})",
                               f"create a {type_name} block named {name!r} in the Prefect UI "
                               "(Blocks → +)"))
        except IntegrationError as exc:
            out.append(Finding("FAIL", check, str(exc), f"fix the {type_name} block {name!r}: "
                               "its token, URL or TLS setting"))
        except TimeoutError:
            out.append(Finding("FAIL", check, f"no answer within {timeout:g} s",
                               f"check the {type_name} block {name!r}'s URL"))
        else:
            out.append(Finding("ok", check, said))
    return out


async def _catalog_blocks(catalog: Catalog | None, timeout: float) -> list[Finding]:
    """The blocks the catalog names per service: PagerDuty routing-key Secret blocks and
    supervisord credentials."""
    if catalog is None:
        return []
    from prefect.blocks.system import Secret

    from integrations.block_types import SupervisorCredentials

    wanted: dict[tuple[str, str], Any] = {}
    for name, entry in sorted(catalog.services.items()):
        if entry.pagerduty is not None and entry.pagerduty.routing_key_block:
            wanted.setdefault(("Secret", entry.pagerduty.routing_key_block), []).append(name)
        if entry.supervisor is not None and entry.supervisor.credentials_block:
            wanted.setdefault(("SupervisorCredentials", entry.supervisor.credentials_block),
                              []).append(name)
    out = []
    for (kind, block), services in wanted.items():
        cls: Any = Secret if kind == "Secret" else SupervisorCredentials
        check = f"catalog block {block}"
        try:
            async with asyncio.timeout(timeout):
                await cls.aload(block)
        except ValueError:
            out.append(Finding("FAIL", check, f"no {kind} block named {block!r} (services "
                               f"{', '.join(services)})", f"create the {kind} block {block!r} "
                               "in the Prefect UI"))
        except TimeoutError:
            out.append(Finding("FAIL", check, f"no answer within {timeout:g} s",
                               "check the Prefect API"))
        else:
            out.append(Finding("ok", check, f"{kind} block present"))
    return out


def _runbooks(settings: Settings) -> tuple[list[LoadedRunbook], list[Finding]]:
    loaded, out = [], []
    paths = sorted([*settings.runbooks_dir.glob("*.yaml"), *settings.runbooks_dir.glob("*.yml")])
    for path in paths:
        try:
            loaded.append(load_runbook(path))
        except FirelaneError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            out.append(Finding("FAIL", "runbook", f"{path}: {first}",
                               f"firelane validate {path}"))
    if not out:
        out.append(Finding("ok", "runbooks", f"{len(loaded)} in {settings.runbooks_dir} "
                           "validate"))
    return loaded, out


def _catalog(path: Path) -> tuple[Catalog | None, Finding]:
    try:
        catalog = load_catalog(path)
    except ConfigError as exc:
        return None, Finding("FAIL", "catalog", str(exc).replace("\n", " "),
                             f"fix {path} (a running intake keeps its last good version)")
    exists = path.exists()
    return catalog, Finding("ok", "catalog", f"{path}: {len(catalog.services)} service(s)"
                            if exists else f"{path} does not exist (an empty catalog)")


def _coverage(runbooks: list[LoadedRunbook], catalog: Catalog) -> list[Finding]:
    gaps = catalog_gaps(runbooks, catalog)
    if not gaps:
        return [Finding("ok", "catalog-coverage", "every runbook's catalog fields are there "
                        "for every service its match: can select")]
    return [Finding("FAIL", "catalog-coverage", gap.message().split("; ")[0],
                    "; ".join(gap.message().split("; ")[1:])) for gap in gaps]


def _store(settings: Settings) -> Finding:
    store = Store(settings.database_url)
    try:
        status = store.schema_status()
    except FirelaneError as exc:
        return Finding("FAIL", "store", f"{store.safe_url}: {exc}",
                       "check FIRELANE_DATABASE_URL and that the database is up")
    finally:
        store.close()
    if status.state == "current":
        return Finding("ok", "store", f"{store.safe_url} at {status.current} (head)")
    if status.state == "behind":
        return Finding("FAIL", "store", f"{store.safe_url} at {status.current or 'empty'}, "
                       f"{len(status.pending)} migration(s) pending", "firelane db upgrade")
    return Finding("FAIL", "store", f"{store.safe_url} is newer ({status.current}) than this "
                   "Firelane", "upgrade Firelane")


async def _intake(url: str, timeout: float) -> list[Finding]:
    base = url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            answer = await client.get(f"{base}/readyz")
            metrics = await client.get(f"{base}/metrics") if answer.status_code == 200 else None
    except httpx.HTTPError as exc:
        return [Finding("FAIL", "intake", f"{url} unreachable ({type(exc).__name__})",
                        "start it (`firelane serve`), or pass --intake-url")]
    if answer.status_code != 200:
        return [Finding("FAIL", "intake", f"{url}/readyz answered {answer.status_code}: "
                        f"{answer.text[:200]}", "see the intake's log")]
    body: dict[str, Any] = answer.json()
    degraded = body.get("degraded") or []
    out = [Finding("ok", "intake", f"{url} ready" + (f" (degraded: {', '.join(degraded)})"
                                                     if degraded else ""))]
    invalid = _refused_files(metrics.text if metrics is not None else "")
    if invalid:
        out.append(Finding("FAIL", "intake-config", "the running intake refuses " + ", ".join(
            f"{n:g} {kind} file(s)" for kind, n in invalid.items()) + " and serves their last "
            "good versions", "see its ERROR lines (firelane.library, firelane.intake), fix the "
            "files; it reloads them on change"))
    return out


def _refused_files(page: str) -> dict[str, float]:
    """`firelane_config_invalid` by kind, from an intake's /metrics page (non-zero only)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(page):
        if family.name == "firelane_config_invalid":
            out.update({s.labels["kind"]: s.value for s in family.samples if s.value})
    return out


async def run_checks(settings: Settings, intake_url: str | None, fix: bool = False,
                     timeout: float = TIMEOUT_SECONDS) -> list[Finding]:
    """Every check's finding, in order (nothing is changed unless `fix`)."""
    import integrations  # noqa: F401  (registers the actions the coverage check reads)

    findings = [await _prefect_api(timeout)]
    runbooks, runbook_findings = _runbooks(settings)
    catalog, catalog_finding = _catalog(settings.catalog_path)
    if findings[0].state == "ok":
        findings.append(await _block_types(fix))
        findings += await _credentials(runbooks, timeout)
        findings += await _catalog_blocks(catalog, timeout)
    else:
        findings.append(Finding("skip", "block-types", "the Prefect API is not usable"))
        findings.append(Finding("skip", "credentials", "the Prefect API is not usable"))
    findings += [catalog_finding, *runbook_findings]
    if catalog is not None:
        findings += _coverage(runbooks, catalog)
    findings.append(await asyncio.to_thread(_store, settings))
    if intake_url:
        findings += await _intake(intake_url, timeout)
    return findings


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    findings = asyncio.run(run_checks(settings, args.intake_url or None, args.fix,
                                      args.timeout))
    for finding in findings:
        print(finding.line(), flush=True)
    failed = sum(f.state == "FAIL" for f in findings)
    print(f"{failed} problem(s)" if failed else "everything checked is fine")
    return 1 if failed else 0


def add_doctor_command(sub: Any) -> None:
    """Register `firelane doctor`."""
    doc = sub.add_parser("doctor", help="check the Prefect API, block types, credentials, "
                         "catalog, runbooks, store and intake; one line each with the fix")
    doc.add_argument("--fix", action="store_true",
                     help="register Firelane's block types with the Prefect API")
    doc.add_argument("--intake-url", default="http://127.0.0.1:8787",
                     help="the intake to check ('' to skip)")
    doc.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS,
                     help="seconds per network check")
    doc.set_defaults(fn=cmd_doctor)
