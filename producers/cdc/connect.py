"""A small Kafka Connect REST client (``requests``) for the connector lifecycle commands.

Endpoints used (Kafka Connect 4.x): ``PUT /connector-plugins/{class}/config/validate``,
``PUT|GET /connectors/{name}/config``, ``GET /connectors/{name}/status``, ``PUT /connectors/{name}/pause``,
``PUT /connectors/{name}/resume``, ``POST /connectors/{name}/restart``, ``DELETE /connectors/{name}``.
Errors come back as ``{"error_code": N, "message": "..."}``; 409 means the worker group is rebalancing and
the request is retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from tillflow.errors import SourceError


class ConnectError(SourceError):
    """Kafka Connect answered with an error (the message carries its status and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kafka Connect returned {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class FieldError:
    name: str
    value: Any
    errors: tuple[str, ...]


@dataclass(frozen=True)
class ConnectorState:
    """A connector's state and its tasks' states, with the trace of each failed task."""

    name: str
    state: str
    worker_id: str | None
    tasks: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def failed(self) -> bool:
        return self.state == "FAILED" or any(t.get("state") == "FAILED" for t in self.tasks)

    @property
    def running(self) -> bool:
        return self.state == "RUNNING" and bool(self.tasks) and all(t.get("state") == "RUNNING" for t in self.tasks)

    def traces(self) -> list[str]:
        out = []
        for t in self.tasks:
            if t.get("state") == "FAILED":
                out.append(f"task {t.get('id')} on {t.get('worker_id')}: {t.get('trace', '(no trace)')}")
        return out


def validation_errors(result: dict[str, Any]) -> list[FieldError]:
    """The failing fields of a ``/config/validate`` answer, in the order Connect lists them."""
    errors = []
    for entry in result.get("configs", []):
        value = entry.get("value", {})
        if value.get("errors"):
            errors.append(FieldError(value.get("name", "?"), value.get("value"), tuple(value["errors"])))
    return errors


def config_diff(desired: dict[str, str], live: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
    """(key, live value, desired value) for each key that differs; a password value is never shown."""
    rows = []
    for key in sorted(set(desired) | set(live)):
        want, have = desired.get(key), live.get(key)
        if want != have:
            if "password" in key:
                want = None if want is None else "(set)"
                have = None if have is None else "(set, different)"
            rows.append((key, have, want))
    return rows


class ConnectClient:
    """Talks to one Kafka Connect worker URL; retries 409 (rebalance) with a backoff."""

    def __init__(
        self,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        timeout: float = 30.0,
        retries_409: int = 10,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = auth
        # Passed on every request: a Session's verify loses to REQUESTS_CA_BUNDLE in the environment.
        self.verify = verify
        if cert:
            self.session.cert = cert
        self.session.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
        self.timeout = timeout
        self.retries_409 = retries_409
        self.backoff_s = backoff_s
        self._sleep = sleep

    def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        """One request, retrying 409 (rebalance in progress); returns (status, JSON body or None)."""
        for attempt in range(self.retries_409 + 1):
            try:
                resp = self.session.request(
                    method, self.url + path, json=body, timeout=self.timeout, verify=self.verify
                )
            except requests.RequestException as exc:
                raise ConnectError(0, f"{method} {self.url}{path}: {exc}") from exc
            if resp.status_code == 409 and attempt < self.retries_409:
                self._sleep(self.backoff_s * min(2**attempt, 16))
                continue
            if resp.status_code in ok:
                return resp.status_code, (resp.json() if resp.content else None)
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text or resp.reason
            raise ConnectError(resp.status_code, f"{method} {path}: {message}")
        raise AssertionError("unreachable")

    def _request(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        return self._call(method, path, body, ok)[1]

    def validate(self, config: dict[str, str]) -> dict[str, Any]:
        """``PUT /connector-plugins/{class}/config/validate``: the full answer (see :func:`validation_errors`)."""
        plugin = config["connector.class"]
        result: dict[str, Any] = self._request("PUT", f"/connector-plugins/{plugin}/config/validate", config)
        return result

    def put_config(self, name: str, config: dict[str, str]) -> bool:
        """Create or update (idempotent). True when the connector was created."""
        status, _ = self._call("PUT", f"/connectors/{name}/config", config, ok=(200, 201))
        return status == 201

    def get_config(self, name: str) -> dict[str, str] | None:
        """The live config, or None when the connector does not exist."""
        try:
            config: dict[str, str] = self._request("GET", f"/connectors/{name}/config")
        except ConnectError as exc:
            if exc.status == 404:
                return None
            raise
        return config

    def status(self, name: str) -> ConnectorState:
        data = self._request("GET", f"/connectors/{name}/status")
        conn = data.get("connector", {})
        return ConnectorState(
            name=data.get("name", name),
            state=conn.get("state", "UNKNOWN"),
            worker_id=conn.get("worker_id"),
            tasks=tuple(data.get("tasks", [])),
        )

    def wait_running(
        self, name: str, timeout: float = 60.0, interval: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> ConnectorState:
        """Poll the status until the connector and all its tasks run, or one fails, or time runs out."""
        deadline = clock() + timeout
        while True:
            try:
                state = self.status(name)
            except ConnectError as exc:
                if exc.status != 404:  # just created: the status is not there yet
                    raise
                state = ConnectorState(name, "UNASSIGNED", None)
            if state.running or state.failed or clock() >= deadline:
                return state
            self._sleep(interval)

    def pause(self, name: str) -> None:
        self._request("PUT", f"/connectors/{name}/pause", ok=(202,))

    def resume(self, name: str) -> None:
        self._request("PUT", f"/connectors/{name}/resume", ok=(202,))

    def restart(self, name: str, include_tasks: bool = True, only_failed: bool = False) -> None:
        query = f"?includeTasks={str(include_tasks).lower()}&onlyFailed={str(only_failed).lower()}"
        self._request("POST", f"/connectors/{name}/restart{query}", ok=(200, 202, 204))

    def delete(self, name: str) -> None:
        self._request("DELETE", f"/connectors/{name}", ok=(204,))

    def connectors(self) -> list[str]:
        names: list[str] = self._request("GET", "/connectors")
        return names
