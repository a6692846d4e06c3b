"""A recording stand-in for the Kubeflow Pipelines v2beta1 REST API (there is no cluster in CI).

It answers only what `kfp.Client` asks when it creates experiments, runs and recurring runs,
and keeps every request so tests can check what a real cluster would have received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CREATED_IDS = {
    "/apis/v2beta1/experiments": {"experiment_id": "experiment-1"},
    "/apis/v2beta1/runs": {"run_id": "run-1"},
    "/apis/v2beta1/recurringruns": {"recurring_run_id": "recurring-1"},
}


class _KfpApiHandler(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict]]

    def _answer(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, {}))
        self._answer({"multi_user": False} if self.path.endswith("/healthz") else {})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.requests.append(("POST", self.path, body))
        self._answer(CREATED_IDS.get(self.path, {}))

    def log_message(self, *args) -> None:
        """Quiet."""


@contextmanager
def recording_kfp_api() -> Iterator[tuple[str, list[tuple[str, str, dict]]]]:
    """Yields the API's URL on 127.0.0.1 and the list of (method, path, body) it received."""
    handler = type("Handler", (_KfpApiHandler,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler.requests
    finally:
        server.shutdown()
        server.server_close()
