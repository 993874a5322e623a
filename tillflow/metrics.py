"""Prometheus ``/metrics`` for long-running tillflow processes.

Each area defines its own metric objects next to its code (``prometheus_client.Counter`` etc., names prefixed
``tillflow_``) on the default registry; a process calls :func:`serve_metrics` once at start.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import start_http_server

log = logging.getLogger(__name__)
_started: dict[int, Any] = {}


def serve_metrics(port: int, host: str = "127.0.0.1") -> int:
    """Serve the default registry on ``host:port`` (0 picks a free port); returns the port. Idempotent."""
    if port and port in _started:
        return port
    server, _thread = start_http_server(port, addr=host)
    bound = int(server.server_port)
    _started[bound] = server
    log.info("serving /metrics on http://%s:%d/metrics", host, bound)
    return bound
