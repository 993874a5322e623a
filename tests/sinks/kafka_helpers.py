"""Topics of a test's own on the session broker, and producing/reading them."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.models import Record
from schemas.topics import TOPICS, deadletter_topic
from tests.support.kafka import headers_of
from tillflow.kafka import client_config, consumer_config, ensure_topics
from tillflow.sender import RecordSender
from tillflow.settings import Settings


def make_topics(settings: Settings, suffix: str, logical: Iterable[str] = tuple(TOPICS)) -> dict[str, str]:
    """``<topic>.<suffix>`` for each tillflow topic, with its dead-letter topic; returns actual -> logical."""
    mapping = {f"{name}.{suffix}": name for name in logical}
    wanted = {name: 3 for name in mapping} | {deadletter_topic(name): 1 for name in mapping}
    ensure_topics(AdminClient(client_config(settings)), wanted, 1)
    return mapping


def produce(settings: Settings, topic: str, logical: str, records: Iterable[Record | bytes]) -> int:
    """Records in the logical topic's schema (or raw bytes) to ``topic``, keyed by store id; flushed."""
    n = 0
    with RecordSender(settings) as sender:
        serde = sender.serde(logical)
        for record in records:
            if isinstance(record, bytes):
                sender.send_raw(topic, b"wg-fashion", record)
            else:
                sender.send_raw(topic, str(getattr(record, "store_id", "")).encode(), serde.encode(record))
            n += 1
    return n


def read_all(
    settings: Settings, topic: str, expect: int, timeout: float = 20.0
) -> list[tuple[bytes | None, dict[str, str]]]:
    """(value, headers) of the first ``expect`` records of ``topic``."""
    consumer = Consumer(consumer_config(settings, f"reader-{time.monotonic_ns()}"))
    consumer.subscribe([topic])
    out: list[tuple[bytes | None, dict[str, str]]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            headers = {k: v.decode() for k, v in headers_of(msg).items()}
            out.append((msg.value(), headers))
    finally:
        consumer.close()
    return out


def committed(settings: Settings, group: str, topic: str, partitions: int = 3) -> int:
    """Sum over partitions of the group's committed offsets (unset counts 0)."""
    consumer = Consumer(consumer_config(settings, group))
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        consumer.close()


def end_offsets(settings: Settings, topic: str, partitions: int = 3) -> int:
    consumer = Consumer(consumer_config(settings, "watermarks"))
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions))
    finally:
        consumer.close()
