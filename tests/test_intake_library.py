"""Runbooks and the catalog reload without a restart, and a file that fails validation never
stops paging: it is refused loudly (log, metric) and the last good set keeps serving.

Before: `ResponseStarter` loaded every runbook at start and one invalid file raised, so the
intake did not start at all; a catalog that became invalid failed every response's context."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from firelane.catalog import serving_catalog
from firelane.errors import ConfigError
from firelane.library import Library
from firelane.settings import Settings
from firelane.store import open_store
from flows.respond.starter import ResponseStarter
from integrations.sandbox import Sandbox
from tests.helpers import Series, scrape_page

ROOT = Path(__file__).resolve().parent.parent
GOOD = ROOT / "runbooks" / "declare-incident.yaml"
BAD_SCHEMA = "version: 1\nname: broken\nsteps:\n  - id: a\n    uses: no.such_action\n"
CATALOG = "services:\n  web: {jira_project: OPS, release_dir: /srv/web}\n"
AM = (b'{"version": "4", "groupKey": "{}:{alertname=\\"LibraryCheck\\"}", "alerts": '
      b'[{"status": "firing", "labels": {"alertname": "LibraryCheck", "severity": "critical",'
      b' "service": "web"}}]}')
TOKEN = {"authorization": "Bearer lib-secret", "content-type": "application/json"}


def _folder(tmp_path: Path) -> tuple[Path, Path]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    shutil.copy(GOOD, runbooks / GOOD.name)
    catalog = tmp_path / "services.yaml"
    catalog.write_text(CATALOG)
    return runbooks, catalog


def _touch_later(path: Path, text: str) -> None:
    """Write `text` so that the modification time surely differs from the last look."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_an_invalid_runbook_at_start_is_refused_and_the_others_serve(tmp_path: Path) -> None:
    runbooks, catalog = _folder(tmp_path)
    (runbooks / "broken.yaml").write_text(BAD_SCHEMA)
    settings = Settings(runbooks_dir=runbooks, catalog_path=catalog)
    starter = ResponseStarter(open_store(f"sqlite:///{tmp_path / 's.db'}"), settings,
                              "declare-incident")
    assert [r.runbook.name for r in starter.runbooks] == ["declare-incident"]
    [refusal] = starter.library.refused
    assert refusal.kind == "runbook" and refusal.path.endswith("broken.yaml")
    assert "no.such_action" in refusal.reason and not refusal.kept_last_good


def test_a_runbook_made_invalid_keeps_its_last_good_version_until_fixed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runbooks, catalog = _folder(tmp_path)
    library = Library(runbooks, catalog)
    seen: list[str] = []
    library.on_refused(lambda r: seen.append(r.path))
    assert not library.changed()
    target = runbooks / GOOD.name
    _touch_later(target, GOOD.read_text().replace("uses: jira.create_issue",
                                                  "uses: jira.create_isue"))
    assert library.changed()
    [refusal] = library.reload()
    assert refusal.kept_last_good and "jira.create_isue" in refusal.reason
    assert "keeps serving" in caplog.text and seen == [str(target)]
    [served] = library.runbooks
    assert "jira.create_issue" in served.source
    assert not library.changed() and library.reload() == []
    _touch_later(target, GOOD.read_text().replace("Open the war room", "Open the room"))
    assert library.reload() == [] and library.refused == []
    assert "Open the room" in library.runbooks[0].source
    target.unlink()
    library.reload()
    assert library.runbooks == []


def test_an_invalid_catalog_keeps_the_last_good_one_serving(tmp_path: Path) -> None:
    runbooks, catalog = _folder(tmp_path)
    library = Library(runbooks, catalog)
    assert library.catalog.get("web") is not None
    _touch_later(catalog, "services:\n  web: {jira_projekt: OPS}\n")
    [refusal] = library.reload()
    assert refusal.kind == "catalog" and refusal.kept_last_good
    assert "jira_projekt" in refusal.reason
    assert serving_catalog(catalog).get("web") is not None
    never = tmp_path / "never-valid.yaml"
    never.write_text("services: [1]\n")
    with pytest.raises(ConfigError):
        serving_catalog(never)


@pytest.mark.usefixtures("prefect_api")
def test_the_intake_keeps_paging_after_an_invalid_runbook_and_catalog_are_written(
        firelane_env: str, sandbox: Sandbox, tmp_path: Path) -> None:
    from bench.common import free_port
    from integrations.slack.block import SlackCredentials

    runbooks, catalog = _folder(tmp_path)
    (runbooks / "broken-at-start.yaml").write_text(BAD_SCHEMA)
    slack = SlackCredentials.for_sandbox(sandbox.url, sandbox.ca_file)
    slack.save("default", overwrite=True)
    alarms = slack.get_client().conversations_create(name="firelane-alarms")["channel"]["id"]
    config = tmp_path / "intake.yaml"
    config.write_text("sources:\n  alertmanager: {bearer_token: {env: TEST_LIB_TOKEN}}\n")
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEST_LIB_TOKEN": "lib-secret",
           "FIRELANE_RUNBOOKS_DIR": str(runbooks), "FIRELANE_CATALOG": str(catalog),
           "FIRELANE_WAKE_ADDRESS": "off", "FIRELANE_PAGE_FAILURE_CHANNEL": alarms}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--port",
                                 str(port), "--config", str(config), "--sandbox",
                                 "--reload-every", "0.2"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(f"{base}/healthz") == 200, proc, log)
        assert _metrics(base)[_invalid("runbook")] == 1
        _touch_later(runbooks / GOOD.name, "version: 1\nname: declare-incident\nsteps: [\n")
        _touch_later(runbooks / "new-and-broken.yml", BAD_SCHEMA.replace("broken", "newer"))
        _touch_later(catalog, "services:\n  Web: {}\n")
        _wait(lambda: [_metrics(base)[k] for k in (
            _invalid("runbook"), _invalid("catalog"), _refused("runbook"), _refused("catalog"))]
            == [3, 1, 3, 1], proc, log)
        answer = httpx.post(f"{base}/alerts/alertmanager", content=AM, headers=TOKEN,
                            timeout=10)
        assert answer.status_code == 202, answer.text
        _wait(lambda: len(sandbox.state.pd_incidents) == 1, proc, log, 90)
        store = open_store(firelane_env)
        [incident] = store.list_incidents()
        _wait(lambda: store.list_executions(incident.id)[0].status == "succeeded", proc, log,
              90)
        text = log.read_text()
        assert "runbook " + str(runbooks / GOOD.name) + " refused (its last good version " \
            "keeps serving)" in text
        assert "new-and-broken.yml refused (it is not served)" in text
        assert "catalog " + str(catalog) + " refused (its last good version" in text
        _touch_later(config, config.read_text() + "max_body_bytez: 10\n")
        _wait(lambda: _metrics(base)[_invalid("intake_config")] == 1
              and _metrics(base)[_refused("intake_config")] == 1, proc, log)
        _wait(lambda: len(_notices(sandbox, alarms)) == 5, proc, log)
        notices = _notices(sandbox, alarms)
        assert any("broken-at-start.yaml refused (it is not served)" in n for n in notices)
        assert any("refused (its last good version keeps serving)" in n for n in notices)
        assert any(n.startswith(":warning: Firelane intake on") and "catalog" in n
                   for n in notices)
        assert any("intake configuration" in n and "max_body_bytez" in n for n in notices)
        doctor = subprocess.run([sys.executable, "-m", "flows.cli", "doctor", "--intake-url",
                                 base], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=120)
        [seen] = [line for line in doctor.stdout.splitlines()
                  if line.startswith("FAIL  intake-config")]
        assert "refuses 1 intake_config file(s), 3 runbook file(s), 1 catalog file(s)" in seen
        _touch_later(runbooks / GOOD.name, GOOD.read_text())
        _wait(lambda: _metrics(base)[_invalid("runbook")] == 2, proc, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _notices(sandbox: Sandbox, channel: str) -> list[str]:
    return [str(m["text"]) for m in sandbox.state.dump()["slack_messages"]
            if m["channel"] == channel]


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _metrics(base: str) -> dict[Series, float]:
    return scrape_page(httpx.get(f"{base}/metrics", timeout=5).text)


def _invalid(kind: str) -> Series:
    return ("firelane_config_invalid", (("kind", kind),))


def _refused(kind: str) -> Series:
    return ("firelane_config_refused_total", (("kind", kind),))


def _wait(check: object, proc: subprocess.Popen[bytes], log: Path,
          seconds: float = 60) -> None:
    assert callable(check)
    deadline = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.1)


def test_sighup_reloads_runbooks_and_the_catalog_without_polling(tmp_path: Path) -> None:
    from flows.cli.serve import _reload_on_sighup
    from flows.intake.live import LiveConfig
    from flows.intake.reloading import Reloader

    runbooks, catalog = _folder(tmp_path)
    library = Library(runbooks, catalog)
    reloader = Reloader(LiveConfig.load(None), library)
    previous = signal.getsignal(signal.SIGHUP)
    try:
        _reload_on_sighup(reloader)
        _touch_later(runbooks / "second.yaml", GOOD.read_text().replace(
            "name: declare-incident", "name: second"))
        _touch_later(catalog, "services: [oops]\n")
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 10
        while len(library.runbooks) < 2 or not library.refused:
            assert time.monotonic() < deadline, library.refused
            time.sleep(0.05)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert sorted(r.runbook.name for r in library.runbooks) == ["declare-incident", "second"]
    [refusal] = library.refused
    assert refusal.kind == "catalog" and library.catalog.get("web") is not None
