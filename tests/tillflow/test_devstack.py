"""The local stack on real processes: start, idempotent re-start, status, restart with data kept, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from tillflow import devstack
from tillflow.errors import ConfigError
from tillflow.settings import Settings


def _consume_all(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{time.time()}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is not None and not msg.error():
            got.append(bytes(msg.value() or b""))
    c.close()
    return got


def test_up_status_down_and_restart_keeps_data(tmp_path: Path):
    settings = Settings(state_dir=tmp_path / "state", topic_partitions=4)
    stack = devstack.up(settings)
    try:
        assert json.loads((tmp_path / "state" / "stack.json").read_text())["kafka"]["pid"] == stack["kafka"]["pid"]
        assert stack["topics"]["pos.tickets"] == "created"
        st = devstack.status(settings)
        assert st["running"] is True
        assert st["topics"]["pos.tickets"] == st["topics"]["camera.counts"] == 4
        assert st["topics"]["pos.tickets.dlq"] == 4
        assert st["topics"]["alerts.dlq"] == 1

        again = devstack.up(settings)  # idempotent: same processes, nothing created
        assert again["kafka"]["pid"] == stack["kafka"]["pid"]
        assert set(again["topics"].values()) == {"exists"}

        p = Producer({"bootstrap.servers": stack["kafka"]["bootstrap"], "acks": "all"})
        for i in range(5):
            p.produce("alerts", key=b"s", value=f"v{i}".encode())
        assert p.flush(10) == 0
    finally:
        assert set(devstack.down(settings)) == {"kafka", "registry"}
    assert devstack.status(settings)["running"] is False
    assert not (tmp_path / "state" / "stack.json").exists()

    restarted = devstack.up(settings)  # data survives a restart
    try:
        assert restarted["kafka"]["pid"] != stack["kafka"]["pid"]
        values = _consume_all(restarted["kafka"]["bootstrap"], "alerts", 5)
        assert values == [f"v{i}".encode() for i in range(5)]
    finally:
        devstack.down(settings)


def test_dead_process_is_noticed_and_replaced(tmp_path: Path):
    settings = Settings(state_dir=tmp_path / "state", topic_partitions=1)
    first = devstack.up(settings)
    try:
        os.kill(first["registry"]["pid"], signal.SIGKILL)
        time.sleep(0.3)
        st = devstack.status(settings)
        assert st["running"] is False
        assert {c["name"]: c["running"] for c in st["components"]}["registry"] is False
        second = devstack.up(settings)
        assert second["registry"]["pid"] != first["registry"]["pid"]
        assert devstack.status(settings)["running"] is True
        # Back on the same ports, so clients that were running reconnect by themselves.
        assert (second["kafka"]["port"], second["registry"]["port"]) == (
            first["kafka"]["port"],
            first["registry"]["port"],
        )
        os.kill(second["kafka"]["pid"], signal.SIGKILL)
        time.sleep(0.3)
        third = devstack.up(settings)
        assert (
            third["kafka"]["bootstrap"] == first["kafka"]["bootstrap"]
            and third["registry"]["url"] == first["registry"]["url"]
        )
    finally:
        devstack.down(settings)


def test_busy_preferred_port_falls_back_to_a_free_one():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        port = devstack.free_port(taken)
        assert port != taken and port > 0


def test_configured_endpoints_start_nothing(stack: Settings, tmp_path: Path):
    """With Kafka and registry configured, `up` starts no process and only ensures the topics."""
    from tillflow.kafka import endpoints

    ep = endpoints(stack)
    external = Settings(
        state_dir=tmp_path / "ext", kafka_bootstrap=ep.bootstrap, registry_url=ep.registry_url, topic_partitions=3
    )
    result = devstack.up(external)
    assert result["external"] is True and "kafka" not in result
    assert set(result["topics"].values()) == {"exists"}
    assert not (tmp_path / "ext" / "stack.json").exists()
    assert devstack.down(external) == []


def test_joined_topics_with_other_partition_counts_are_refused(stack: Settings, tmp_path: Path):
    from tillflow.kafka import endpoints

    ep = endpoints(stack)
    other = Settings(state_dir=tmp_path, kafka_bootstrap=ep.bootstrap, registry_url=ep.registry_url, topic_partitions=5)
    with pytest.raises(ConfigError, match=r"pos\.tickets has 3 partitions, expected 5"):
        devstack.up(other)


class _AuthProxy:
    """Stand-in for a production registry behind HTTP basic auth: checks the credentials, then forwards the
    GET to the real local registry."""

    def __init__(self, upstream: str, user: str, password: str) -> None:
        import base64
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import requests

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != expected:
                    body, code = b'{"error_code": 401, "message": "Unauthorized"}', 401
                else:
                    answer = requests.get(upstream + self.path, timeout=5)
                    body, code = answer.content, answer.status_code
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_status_checks_use_the_security_settings(stack: Settings, tmp_path: Path):
    """`dev status` probes Kafka and the registry the way every other client connects: with the configured
    security protocol, and with the registry's basic auth."""
    from pydantic import SecretStr

    from tillflow.kafka import endpoints

    ep = endpoints(stack)
    proxy = _AuthProxy(ep.registry_url, "svc", "s3cret")
    try:
        base = Settings(state_dir=tmp_path, kafka_bootstrap=ep.bootstrap, registry_url=proxy.url)
        without = devstack.status(base)
        assert without["kafka"]["healthy"] and not without["registry"]["healthy"]
        assert without["registry"]["problem"].startswith("HTTP 401")
        with_auth = devstack.status(base.model_copy(update={"registry_basic_auth": SecretStr("svc:s3cret")}))
        assert with_auth["running"] and with_auth["registry"]["problem"] is None
        tls = devstack.status(base.model_copy(update={"kafka_security_protocol": "SSL"}))  # the broker speaks PLAINTEXT
        assert not tls["kafka"]["healthy"] and tls["kafka"]["problem"]
    finally:
        proxy.close()


def test_a_refused_probe_writes_no_librdkafka_log_line(capfd: pytest.CaptureFixture[str]):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    capfd.readouterr()
    assert devstack.kafka_problem(f"127.0.0.1:{port}", timeout=1.0)
    assert f"127.0.0.1:{port}" not in capfd.readouterr().err  # (clients of earlier tests may still log theirs)
