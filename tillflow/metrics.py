"""Prometheus ``/metrics`` for long-running tillflow processes.

Each area defines its own metric objects next to its code (``prometheus_client.Counter`` etc., names prefixed
``tillflow_``) on the default registry; a process calls :func:`serve_metrics` once at start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import start_http_server

if TYPE_CHECKING:
    from tillflow.settings import Settings

log = logging.getLogger(__name__)
_started: dict[int, Any] = {}


def serve_configured_metrics(
    settings: Settings, announce: Callable[[str], None] | None = None, port: int | None = None
) -> int | None:
    """Serve ``/metrics`` when a port is named (``port``, a command's option, else ``TILLFLOW_METRICS_PORT``);
    the bound port, else None. ``announce`` (for example a console's print) is told the URL."""
    wanted = port if port is not None else settings.metrics_port
    if wanted is None:
        return None
    port = serve_metrics(wanted, settings.metrics_host)
    if announce is not None:
        announce(f"metrics on http://{settings.metrics_host}:{port}/metrics")
    return port


def serve_metrics(port: int, host: str = "127.0.0.1") -> int:
    """Serve the default registry on ``host:port`` (0 picks a free port); returns the port. Idempotent."""
    if port and port in _started:
        return port
    server, _thread = start_http_server(port, addr=host)
    bound = int(server.server_port)
    _started[bound] = server
    log.info("serving /metrics on http://%s:%d/metrics", host, bound)
    return bound
