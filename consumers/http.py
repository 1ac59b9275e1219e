"""WorkerHttp - /metrics, /healthz, /livez, /readyz and /models of a worker, on a daemon thread."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

Probe = Callable[[], tuple[bool, dict[str, Any]]]
"""(ok, JSON report): 200 when ok, else 503."""


class WorkerHttp:
    """Serves the worker's metrics text, health report and loaded model list."""

    def __init__(
        self,
        port: int,
        metrics: Callable[[], bytes],
        health: Probe,
        models: Callable[[], list[dict[str, Any]]],
        live: Probe | None = None,
        ready: Probe | None = None,
    ) -> None:
        routes = {
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, metrics()),
            "/healthz": lambda: _health_response(health),
            "/models": lambda: (200, "application/json", json.dumps(models()).encode()),
        }
        if live is not None:
            routes["/livez"] = lambda: _health_response(live)
        if ready is not None:
            routes["/readyz"] = lambda: _health_response(ready)
        self._server = ThreadingHTTPServer(("0.0.0.0", port), _handler(routes))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        logger.info("worker http on port %d (/metrics /healthz /livez /readyz /models)", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _health_response(health: Probe) -> tuple[int, str, bytes]:
    ok, report = health()
    return (200 if ok else 503), "application/json", json.dumps(report).encode()


def _handler(routes: dict[str, Callable[[], tuple[int, str, bytes]]]) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                self.send_error(404)
                return
            try:
                status, kind, body = route()
            except Exception:  # a failing probe answers 500, the worker goes on
                logger.exception("http %s failed", self.path)
                status, kind, body = 500, "text/plain", b"internal error"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("http " + format, *args)

    return Handler
