"""SIGHUP to a real `firelane serve` process reloads its configuration under load: while a
thread sends alerts continuously, an old token is removed (secrets in files, as Docker and
Kubernetes mount them, since a running process's environment cannot change). Every request is
answered 202, or 401 only for the removed token and only after the reload; the process stays
up; a bad file on the next SIGHUP is refused with an ERROR line and the old configuration stays
in force."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.common import free_port

ROOT = Path(__file__).resolve().parent.parent
AM_BODY = json.dumps({"version": "4", "alerts": [{"status": "firing",
                                                  "labels": {"alertname": "Hup"}}]}).encode()
OLD, NEW = "hup-old-token-0123456789", "hup-new-token-9876543210"


def _until(check: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path,
           seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_sighup_under_load_rotates_a_token_and_refuses_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / "old").write_text(OLD + "\n")
    (tmp_path / "new").write_text(NEW + "\n")
    config = tmp_path / "intake.yaml"
    config.write_text("sources:\n  alertmanager:\n    bearer_token:\n"
                      f"      - {{file: {tmp_path / 'new'}}}\n"
                      f"      - {{file: {tmp_path / 'old'}}}\n")
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FIRELANE_WAKE_ADDRESS": "off",
           "FIRELANE_DATABASE_URL": f"sqlite:///{tmp_path / 'hup.db'}"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--port", str(port),
                                 "--config", str(config), "--no-respond"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    answers: list[tuple[str, int, float]] = []
    stop = threading.Event()

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def send() -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            while not stop.is_set():
                for name, token in (("old", OLD), ("new", NEW)):
                    status = client.post("/alerts/alertmanager", content=AM_BODY, headers={
                        "content-type": "application/json",
                        "authorization": f"Bearer {token}"}).status_code
                    answers.append((name, status, time.monotonic()))

    sender = threading.Thread(target=send)
    try:
        _until(healthy, proc, log)
        sender.start()
        _until(lambda: len(answers) >= 40, proc, log)
        config.write_text(f"sources:\n  alertmanager: {{bearer_token: [{{file: "
                          f"{tmp_path / 'new'}}}]}}\n")
        hup_at = time.monotonic()
        os.kill(proc.pid, signal.SIGHUP)
        _until(lambda: any(s == 401 for _, s, _ in answers), proc, log)
        refused_at = len(answers)
        _until(lambda: len(answers) >= refused_at + 40, proc, log)
        config.write_text("sources:\n  alertmanager: {bearer_token: [\n")
        os.kill(proc.pid, signal.SIGHUP)
        _until(lambda: "reload of" in log.read_text(), proc, log)
        after_bad = len(answers)
        _until(lambda: len(answers) >= after_bad + 40, proc, log)
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(timeout=30)
        alive = proc.poll() is None
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_text()
    assert alive, text
    assert all(status == 202 for name, status, _ in answers if name == "new"), answers
    old = [(status, at) for name, status, at in answers if name == "old"]
    assert {status for status, _ in old} == {202, 401}
    first_refusal = next(i for i, (status, _) in enumerate(old) if status == 401)
    assert all(status == 202 for status, _ in old[:first_refusal])
    assert all(status == 401 for status, _ in old[first_refusal:])
    assert old[first_refusal][1] >= hup_at
    assert len(old) - first_refusal >= 40
    assert "alertmanager.bearer_token: 2 -> 1 credential(s)" in text, text
    assert "previous configuration stays in force" in text and str(config) in text, text
    assert OLD not in text and NEW not in text
