"""A stand-in for a Kafka Connect 4.x worker's REST API, for testing tillflow's connector client.

A real Connect worker cannot run here (its Jetty 12 security jar is missing from every package), so this
server reproduces the documented requests and responses of the endpoints tillflow uses: status codes,
``{"error_code", "message"}`` error bodies, ``ConfigInfos`` validation answers with per-field ``errors``,
``ConnectorInfo`` on create (201) and update (200), connector/task status with a task ``trace`` when FAILED,
409 while the worker group rebalances, 202 for pause/resume/restart, 204 for delete, and 401 without the
basic-auth credentials when they are required.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

POSTGRES = "io.debezium.connector.postgresql.PostgresConnector"
# Required fields of the Postgres connector (a subset) and the valid snapshot modes, as Debezium validates.
REQUIRED = ("database.hostname", "database.user", "database.dbname", "topic.prefix")
SNAPSHOT_MODES = ("always", "initial", "initial_only", "no_data", "when_needed", "configuration_based", "custom")
STALE = (
    "Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)"
)
TRACE = (
    "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer. "
    "This connector will be stopped.\n"
    "\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable(ErrorHandler.java:67)\n"
    'Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user "tillflow_ro"'
)


@dataclass
class Cluster:
    """The worker's state, which tests arrange and inspect."""

    connectors: dict[str, dict[str, str]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    fail_tasks: set[str] = field(default_factory=set)
    """Connectors whose task fails when started."""
    rebalancing: int = 0
    """Answer this many more write requests with 409."""
    status_polls_until_running: int = 1
    auth: tuple[str, str] | None = None
    unreachable: set[str] = field(default_factory=set)
    """Database hosts that validation reports as refusing connections (Debezium validates connectivity)."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    _polls: dict[str, int] = field(default_factory=dict)

    def status(self, name: str) -> dict[str, Any]:
        polls = self._polls[name] = self._polls.get(name, 0) + 1
        state = self.states.get(name, "RUNNING")
        if state == "RUNNING" and polls <= self.status_polls_until_running:
            return {"name": name, "connector": {"state": "UNASSIGNED", "worker_id": "10.0.0.7:8083"}, "tasks": [],
                    "type": "source"}  # fmt: skip
        task: dict[str, Any] = {"id": 0, "state": state, "worker_id": "10.0.0.7:8083"}
        if name in self.fail_tasks:
            task.update(state="FAILED", trace=TRACE)
        return {"name": name, "connector": {"state": state, "worker_id": "10.0.0.7:8083"}, "tasks": [task],
                "type": "source"}  # fmt: skip


def _validate(config: dict[str, str], unreachable: set[str]) -> dict[str, Any]:
    configs = []
    errors = 0
    for name in sorted(set(config) | set(REQUIRED)):
        value = config.get(name)
        errs: list[str] = []
        if name in REQUIRED and not value:
            errs.append(f'Missing required configuration "{name}" which has no default value.')
        if name == "snapshot.mode" and value not in SNAPSHOT_MODES:
            errs.append(
                f"The 'snapshot.mode' value '{value}' is invalid: Value must be one of {', '.join(SNAPSHOT_MODES)}"
            )
        if name == "database.hostname" and value in unreachable:
            port = config.get("database.port", "5432")
            errs.append(
                f"Error while validating connector config: Connection to {value}:{port} refused. Check that the "
                "hostname and port are correct and that the postmaster is accepting TCP/IP connections."
            )
        errors += bool(errs)
        configs.append(
            {
                "definition": {
                    "name": name,
                    "type": "STRING",
                    "required": name in REQUIRED,
                    "default_value": None,
                    "importance": "HIGH",
                    "documentation": "",
                    "group": "Connector",
                    "width": "MEDIUM",
                    "display_name": name,
                    "dependents": [],
                    "order": 1,
                },
                "value": {"name": name, "value": value, "recommended_values": [], "errors": errs, "visible": True},
            }
        )
    return {"name": POSTGRES, "error_count": errors, "groups": ["Common", "Connector"], "configs": configs}


class _Handler(BaseHTTPRequestHandler):
    cluster: Cluster

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error_code": status, "message": message})

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _authorised(self) -> bool:
        if self.cluster.auth is None:
            return True
        expected = base64.b64encode(":".join(self.cluster.auth).encode()).decode()
        if self.headers.get("Authorization") == f"Basic {expected}":
            return True
        self._send(401)
        return False

    def _route(self, method: str) -> None:
        c = self.cluster
        url = urlparse(self.path)
        path = unquote(url.path)
        c.requests.append((method, self.path))
        if not self._authorised():
            return
        body = self._body() if method in ("PUT", "POST") else None
        if method != "GET" and c.rebalancing > 0 and path.startswith("/connectors/"):
            c.rebalancing -= 1
            return self._error(409, STALE)
        if method == "GET" and path == "/connectors":
            return self._send(200, sorted(c.connectors))
        m = re.fullmatch(r"/connector-plugins/([^/]+)/config/validate", path)
        if m and method == "PUT":
            if m.group(1) != POSTGRES:
                return self._error(
                    400, f"Failed to find any class that implements Connector and which name matches {m.group(1)}"
                )
            return self._send(200, _validate(body or {}, c.unreachable))
        m = re.fullmatch(r"/connectors/([^/]+)(/[a-z]+)?", path)
        if not m:
            return self._error(404, "HTTP 404 Not Found")
        name, sub = m.group(1), m.group(2) or ""
        if (method, sub) == ("PUT", "/config"):
            created = name not in c.connectors
            c.connectors[name] = dict(body or {})
            c.states.setdefault(name, "RUNNING")
            tasks = [{"connector": name, "task": 0}]
            return self._send(201 if created else 200, {"name": name, "config": body, "tasks": tasks, "type": "source"})
        if name not in c.connectors:
            return self._error(404, f"Connector {name} not found")
        if (method, sub) == ("GET", "/config"):
            return self._send(200, c.connectors[name])
        if (method, sub) == ("GET", "/status"):
            return self._send(200, c.status(name))
        if (method, sub) == ("PUT", "/pause"):
            c.states[name] = "PAUSED"
            return self._send(202)
        if (method, sub) == ("PUT", "/resume"):
            c.states[name] = "RUNNING"
            return self._send(202)
        if (method, sub) == ("POST", "/restart"):
            query = parse_qs(url.query)
            c.fail_tasks.discard(name)
            if query.get("includeTasks") == ["true"]:
                status = c.status(name)
                status["connector"]["state"] = "RESTARTING"
                return self._send(202, status)
            return self._send(204)
        if (method, sub) == ("DELETE", ""):
            del c.connectors[name]
            c.states.pop(name, None)
            return self._send(204)
        return self._error(405, "HTTP 405 Method Not Allowed")

    def do_GET(self) -> None:
        self._route("GET")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


class ConnectStandIn:
    """Serves a :class:`Cluster` on 127.0.0.1 (optionally over TLS) in a background thread."""

    def __init__(self, cluster: Cluster, tls: tuple[str, str] | None = None) -> None:
        handler = type("Handler", (_Handler,), {"cluster": cluster})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ConnectStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
