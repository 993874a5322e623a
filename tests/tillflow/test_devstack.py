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
from tillflow.settings import Settings


def _consume_all(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{time.time()}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg.value())
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
    with pytest.raises(RuntimeError, match=r"pos\.tickets has 3 partitions, expected 5"):
        devstack.up(other)
