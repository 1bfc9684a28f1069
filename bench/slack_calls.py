"""One Slack Web API call: slack_sdk's stock `WebClient` (a new connection per call) against
Firelane's `KeepAliveWebClient` (kept connections), through the sandbox over HTTPS.

The sandbox runs in its own process, so the calling thread's CPU (`time.thread_time`) is the
client's alone. Rounds alternate the two clients so both see the same machine; each call posts
a message to one channel (`chat.postMessage`, a war room's most common call). Writes
`bench/results/slack_calls.json`. Usage: `python bench/slack_calls.py [--calls N] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk import WebClient  # noqa: E402

from bench.common import summarize, write_results  # noqa: E402
from integrations.slack.transport import KeepAliveWebClient  # noqa: E402


def _sandbox() -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "sandbox", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    for line in proc.stdout:
        if "FIRELANE_SANDBOX_URL" in line:
            url, ca = (part.split("=", 1)[1] for part in line.split()[1:3])
            return proc, url, ca
    raise SystemExit("the sandbox did not start")


def _round(client: WebClient, channel: str, calls: int,
           wall: list[float], cpu: list[float]) -> None:
    for n in range(calls):
        t0, c0 = time.perf_counter(), time.thread_time()
        client.chat_postMessage(channel=channel, text=f"update {n}")
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - t0) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    proc, url, ca = _sandbox()
    try:
        context = ssl.create_default_context(cafile=ca)
        made: dict[str, Any] = {
            name: cls(token="xoxb-sandbox", base_url=f"{url}/slack/api/", ssl=context,
                      timeout=10, retry_handlers=[])
            for name, cls in (("stock_webclient", WebClient),
                              ("keep_alive", KeepAliveWebClient))}
        channel = str(made["keep_alive"].conversations_create(name="bench")["channel"]["id"])
        samples: dict[str, dict[str, list[float]]] = {
            name: {"wall": [], "cpu": []} for name in made}
        for client in made.values():
            _round(client, channel, 10, [], [])
        for _ in range(args.rounds):
            for name, client in made.items():
                _round(client, channel, args.calls, samples[name]["wall"],
                       samples[name]["cpu"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    figures = {"params": vars(args),
               "wall_ms": {name: summarize(s["wall"]) for name, s in samples.items()},
               "client_cpu_ms": {name: summarize(s["cpu"]) for name, s in samples.items()}}
    for what in ("wall_ms", "client_cpu_ms"):
        stock, kept = (figures[what][k]["p50"] for k in ("stock_webclient", "keep_alive"))
        print(f"{what:<14} p50: stock WebClient {stock} ms, kept connections {kept} ms")
    print(f"wrote {write_results('slack_calls', figures)}")


if __name__ == "__main__":
    main()
