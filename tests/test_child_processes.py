"""The end-of-run check fails a run that leaves a process behind, and passes a clean one."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_CONFTEST = 'pytest_plugins = ["tests.child_processes"]\n'

_ORPHAN = '''
import subprocess, sys

def test_starts_a_daemon():
    # the intermediate process exits at once, so the sleeper is orphaned
    subprocess.run([sys.executable, "-c",
                    "import subprocess; subprocess.Popen(['sleep', '300'], "
                    "start_new_session=True)"], check=True)
'''

_CLEAN = '''
import subprocess

def test_waits_for_its_child():
    subprocess.run(["true"], check=True)
'''


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
         body: str) -> pytest.RunResult:
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile(body)
    env_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", env_path)
    return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")


def test_an_orphaned_grandchild_fails_the_run_and_is_killed(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, _ORPHAN)
    result.stdout.fnmatch_lines(["*1 process(es) started by the suite outlived it*",
                                 "*pid *: sleep 300*", "*1 passed*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [pid] = re.findall(r"pid (\d+): sleep 300", result.stdout.str())
    assert _cmd(Path("/proc") / pid) != b"sleep\x00300\x00", \
        "the check should have killed the sleeper"


def test_a_run_that_cleans_up_passes(pytester: pytest.Pytester,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, _CLEAN)
    assert result.ret == pytest.ExitCode.OK
    assert "outlived" not in result.stdout.str()


def _cmd(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
