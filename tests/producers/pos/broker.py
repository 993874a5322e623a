"""A real noida-db broker that a test can stop and start again on the same port and data directory, with
tillflow's registry beside it (the session-wide ``stack`` fixture cannot be stopped mid-test)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.models import PosTicket
from schemas.serde import TopicSerde, registry_client
from schemas.topics import POS_TICKETS
from tillflow.devstack import broker_binary, free_port, kafka_healthy
from tillflow.kafka import client_config, ensure_topics, wanted_topics
from tillflow.registry.process import RegistryProcess
from tillflow.settings import Settings


class Broker:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.registry = RegistryProcess(data_dir.parent / "registry")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the broker (and the registry, the first time)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.registry.proc is None or self.registry.proc.poll() is not None:
            self.registry.start()
        log = (self.data_dir.parent / "broker.log").open("ab")
        self.proc = subprocess.Popen(
            [str(broker_binary()), "start", "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "--only",
             "kafka", "--kafka-port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not kafka_healthy(self.bootstrap, timeout=1.0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"noida-db did not start on {self.bootstrap}")
            time.sleep(0.2)

    def stop(self, registry: bool = False) -> None:
        """Stop the broker (SIGTERM); the registry too if asked."""
        if registry:
            self.registry.stop()
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def settings(self, state_dir: Path) -> Settings:
        settings = Settings(
            state_dir=state_dir, kafka_bootstrap=self.bootstrap, registry_url=self.registry.url, topic_partitions=3
        )
        ensure_topics(AdminClient(client_config(settings)), wanted_topics(settings), 1)
        return settings


def read_tickets(settings: Settings, topic: str = POS_TICKETS, timeout: float = 10.0) -> list[PosTicket]:
    """Every ticket in ``topic`` from the beginning to the current end."""
    consumer = Consumer(
        {
            **client_config(settings),
            "group.id": f"pos-test-{time.time_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    serde = TopicSerde(registry_client(settings.registry_url or ""), topic)
    md = consumer.list_topics(topic, timeout=timeout).topics[topic]
    parts = [TopicPartition(topic, p, 0) for p in md.partitions]
    ends = {p.partition: consumer.get_watermark_offsets(p, timeout=timeout)[1] for p in parts}
    consumer.assign(parts)
    out: list[PosTicket] = []
    remaining = {p for p, end in ends.items() if end > 0}
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        out.append(serde.decode_model(msg.value()))  # type: ignore[arg-type]
        partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
        if offset + 1 >= ends[partition]:
            remaining.discard(partition)
    consumer.close()
    return out


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker of this test module's own (import this fixture into the module)."""
    b = Broker(tmp_path_factory.mktemp("broker") / "data")
    b.start()
    try:
        yield b
    finally:
        b.stop(registry=True)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test's own, for tests that stop and restart it (import this fixture into the module)."""
    b = Broker(tmp_path / "broker" / "data")
    b.start()
    try:
        yield b
    finally:
        b.stop(registry=True)
