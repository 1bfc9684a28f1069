"""The sample service `make demo` and the remediation tests roll back: a tiny HTTP server whose
release directory decides whether it is healthy (`RELEASE_HEALTH` file: `ok` or `broken`).

Every request but `/metrics` answers 200 on a good release and 500 on a bad one, and is counted
the way a real service instruments itself: `http_requests_total{code}` and the latency
histogram `http_request_duration_seconds`, exposed at `/metrics` for Prometheus to scrape (the
demo's alerting rule watches their 5xx ratio)."""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

HERE = Path(__file__).resolve().parent
REQUESTS = Counter("http_requests_total", "Requests answered, by status code",
                   ["code", "path"])
LATENCY = Histogram("http_request_duration_seconds", "Time to answer a request", ["path"])


class Handler(BaseHTTPRequestHandler):
    """`/metrics` for Prometheus; anything else 200 on a good release, 500 on a bad one, the
    release name in the body."""

    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            return
        started = time.perf_counter()
        health = (HERE / "RELEASE_HEALTH").read_text().strip()
        status = 200 if health == "ok" else 500
        self._send(status, f"{health} {HERE.name}\n".encode(), "text/plain")
        path = "/healthz" if self.path.startswith("/healthz") else "/"
        REQUESTS.labels(code=str(status), path=path).inc()
        LATENCY.labels(path=path).observe(time.perf_counter() - started)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
