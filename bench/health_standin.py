"""A health endpoint per service that answers 503 to its first probes, then 200.

`GET /<service>` answers 503 to that path's first `bad_probes` requests and 200 after: the 5xx
a rollback runbook diagnoses, then the recovery its verify step waits for, without a real
release switch (the benchmark runs remediation in dry-run). Counting probes rather than
seconds gives every incident of a burst the same story however late a loaded process gets to
its probes. Usage: `python bench/health_standin.py PORT BAD_PROBES` (prints a line when it
listens).
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["serve"]


def serve(port: int, bad_probes: int) -> None:
    """Serve until killed."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with lock:
                seen[self.path] = seen.get(self.path, 0) + 1
                healthy = seen[self.path] > bad_probes
            body = b"ok" if healthy else b"bad release"
            self.send_response(200 if healthy else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"health stand-in on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
