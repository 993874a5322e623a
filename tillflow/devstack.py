"""The local stack for development, demos and tests: a Kafka-protocol broker and a schema registry.

The broker is the ``noida-db`` binary from PyPI (Kafka protocol, persisted to disk); the registry is
tillflow's own Confluent-compatible stand-in (``tillflow.registry``). Both listen on 127.0.0.1 only, keep
their data under ``<state_dir>``, and are described in ``<state_dir>/stack.json`` so other commands find
them. Nothing is started when Kafka and a registry are configured.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from confluent_kafka.admin import AdminClient

from tillflow.errors import UnavailableError
from tillflow.extras import missing_extra
from tillflow.kafka import ensure_topics, stack_file, wanted_topics
from tillflow.settings import Settings

HOST = "127.0.0.1"


class StackError(UnavailableError):
    """The local stack could not be started or stopped."""


def free_port(preferred: int = 0, wait_s: float = 0.0) -> int:
    """``preferred`` if it is free (non-zero; waiting up to ``wait_s`` for it), else a port the kernel picks.

    Probed with SO_REUSEADDR, as servers bind: the connections of a process that just died (TIME_WAIT) do
    not keep its port from being used again."""
    deadline = time.monotonic() + wait_s
    while True:
        for port in ([preferred] if preferred else []) + [0]:
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((HOST, port))
                except OSError:
                    continue
                bound = int(sock.getsockname()[1])
            if port or time.monotonic() >= deadline or not preferred:
                return bound
            break  # the preferred port is taken: wait for it a little longer
        else:
            raise StackError("no free port")
        time.sleep(0.2)


def broker_binary() -> Path:
    problem = missing_extra("the local broker", "noida_db")
    if problem:
        raise StackError(problem)
    spec = importlib.util.find_spec("noida_db")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the noida-db package has no binary folder")
    path = Path(next(iter(spec.submodule_search_locations))) / "noida-db"
    if not path.exists():
        raise StackError(f"noida-db binary missing at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is not alive
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Component:
    name: str
    pid: int
    port: int
    marker: str
    """A string in the process's command line, so a recycled PID is never signalled."""

    @property
    def running(self) -> bool:
        return _alive(self.pid) and self.marker in _cmdline(self.pid)


def kafka_problem(bootstrap: str, timeout: float = 2.0, settings: Settings | None = None) -> str | None:
    """Why the broker does not answer a metadata request (None: it does). With ``settings``, the client
    carries their security settings (SASL, TLS), as every other client does. librdkafka's own log is off:
    a probe that is refused while the broker starts is expected, not worth a line on the terminal."""
    from tillflow.kafka import client_config

    conf: dict[str, Any] = client_config(settings, bootstrap) if settings else {"bootstrap.servers": bootstrap}
    conf.update({"socket.timeout.ms": int(timeout * 1000), "log_level": 0})
    try:
        AdminClient(conf).list_topics(timeout=timeout)
    except Exception as exc:
        return str(exc)
    return None


def kafka_healthy(bootstrap: str, timeout: float = 2.0, settings: Settings | None = None) -> bool:
    return kafka_problem(bootstrap, timeout, settings) is None


def registry_problem(url: str, timeout: float = 2.0, settings: Settings | None = None) -> str | None:
    """Why the registry does not list its subjects (None: it does), with the registry's basic auth and CA
    from ``settings``."""
    auth: tuple[str, str] | None = None
    verify: str | bool = True
    if settings is not None:
        if settings.registry_basic_auth:
            user, _, password = settings.registry_basic_auth.get_secret_value().partition(":")
            auth = (user, password)
        if settings.registry_ssl_ca_location:
            verify = str(settings.registry_ssl_ca_location)
    try:
        response = requests.get(f"{url}/subjects", timeout=timeout, auth=auth, verify=verify)
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.status_code == 200 else f"HTTP {response.status_code}: {response.text[:200]}"


def registry_healthy(url: str, timeout: float = 2.0, settings: Settings | None = None) -> bool:
    return registry_problem(url, timeout, settings) is None


def _wait(check: Any, what: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StackError(f"{what} exited with code {proc.returncode}; log {log}:\n{tail}")
        if check():
            return
        time.sleep(0.2)
    proc.terminate()
    raise StackError(f"{what} did not become healthy within {timeout:.0f}s; log {log}")


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        return subprocess.Popen(
            args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )


def read_stack(settings: Settings) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(stack_file(settings).read_text())
        return data
    except (OSError, ValueError):
        return None


def components(stack: dict[str, Any]) -> list[Component]:
    return [
        Component("kafka", stack["kafka"]["pid"], stack["kafka"]["port"], "noida-db"),
        Component("registry", stack["registry"]["pid"], stack["registry"]["port"], "tillflow.registry"),
    ]


def up(settings: Settings, timeout: float = 30.0) -> dict[str, Any]:
    """Start the broker and registry (unless running or configured) and create the topics.

    Returns the stack description: bootstrap, registry URL, PIDs and what happened to each topic.
    """
    state = settings.state_dir.resolve()
    if settings.kafka_bootstrap:
        if not settings.registry_url:
            raise StackError("TILLFLOW_KAFKA_BOOTSTRAP is set but TILLFLOW_REGISTRY_URL is not")
        stack: dict[str, Any] = {"external": True, "bootstrap": settings.kafka_bootstrap, "url": settings.registry_url}
        bootstrap = settings.kafka_bootstrap
    else:
        existing = read_stack(settings)
        if existing and all(c.running for c in components(existing)):
            stack = existing
        else:
            ports = (0, 0)
            if existing:  # a component died: come back on the same ports, so running clients reconnect
                ports = (int(existing["kafka"]["port"]), int(existing["registry"]["port"]))
                down(settings)
            stack = _start(settings, state, timeout, ports)
        bootstrap = stack["kafka"]["bootstrap"]
    from tillflow.kafka import client_config

    admin = AdminClient(client_config(settings, bootstrap))
    stack["topics"] = ensure_topics(admin, wanted_topics(settings), settings.topic_replication_factor)
    return stack


def _start(settings: Settings, state: Path, timeout: float, ports: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """Start both components; ``ports`` (kafka, registry) of a previous start are preferred over the
    configured ones when free."""
    logs = state / "logs"
    kafka_port = free_port(ports[0] or settings.dev_kafka_port, 10.0 if ports[0] else 0.0)
    kafka_dir = state / "kafka"
    kafka_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = f"{HOST}:{kafka_port}"
    kafka = _spawn(
        [
            str(broker_binary()),
            "start",
            "--data-dir",
            str(kafka_dir),
            "--host",
            HOST,
            "--only",
            "kafka",
            "--kafka-port",
            str(kafka_port),
        ],
        logs / "kafka.log",
    )
    try:
        _wait(lambda: kafka_healthy(bootstrap), "kafka broker", kafka, logs / "kafka.log", timeout)
        registry_port = free_port(ports[1] or settings.dev_registry_port, 10.0 if ports[1] else 0.0)
        url = f"http://{HOST}:{registry_port}"
        registry = _spawn(
            [
                sys.executable,
                "-m",
                "tillflow.registry",
                "--host",
                HOST,
                "--port",
                str(registry_port),
                "--data-dir",
                str(state / "registry"),
            ],
            logs / "registry.log",
        )
        _wait(lambda: registry_healthy(url), "schema registry", registry, logs / "registry.log", timeout)
    except StackError:
        _stop_pid(kafka.pid, "noida-db")
        raise
    stack = {
        "kafka": {"pid": kafka.pid, "port": kafka_port, "bootstrap": bootstrap, "data_dir": str(kafka_dir)},
        "registry": {"pid": registry.pid, "port": registry_port, "url": url},
        "started_at": time.time(),
    }
    stack_file(settings).write_text(json.dumps(stack, indent=2))
    return stack


def _stop_pid(pid: int, marker: str, timeout: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; only if the PID still runs what we started."""
    if not (_alive(pid) and marker in _cmdline(pid)):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def down(settings: Settings) -> list[str]:
    """Stop what `up` started; returns the names of the components stopped. Data stays on disk."""
    stack = read_stack(settings)
    if stack is None or stack.get("external"):
        return []
    stopped = [c.name for c in reversed(components(stack)) if _stop_pid(c.pid, c.marker)]
    stack_file(settings).unlink(missing_ok=True)
    return stopped


def status(settings: Settings) -> dict[str, Any]:
    """Each component's PID, liveness and health, and the topics with their partition counts."""
    if settings.kafka_bootstrap:
        bootstrap, url = settings.kafka_bootstrap, settings.registry_url or ""
        result: dict[str, Any] = {"external": True, "components": []}
    else:
        stack = read_stack(settings)
        if stack is None:
            return {"external": False, "components": [], "running": False}
        bootstrap, url = stack["kafka"]["bootstrap"], stack["registry"]["url"]
        result = {
            "external": False,
            "components": [
                {"name": c.name, "pid": c.pid, "port": c.port, "running": c.running} for c in components(stack)
            ],
        }
    kafka_error = kafka_problem(bootstrap, settings=settings)
    registry_error = registry_problem(url, settings=settings) if url else "no registry URL configured"
    result["kafka"] = {"bootstrap": bootstrap, "healthy": kafka_error is None, "problem": kafka_error}
    result["registry"] = {"url": url, "healthy": registry_error is None, "problem": registry_error}
    result["running"] = result["kafka"]["healthy"] and result["registry"]["healthy"]
    if result["kafka"]["healthy"]:
        from tillflow.kafka import client_config

        md = AdminClient(client_config(settings, bootstrap)).list_topics(timeout=5)
        result["topics"] = {
            name: len(t.partitions) for name, t in sorted(md.topics.items()) if not name.startswith("__")
        }
    return result
