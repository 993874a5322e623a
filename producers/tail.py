"""What a producer can learn from the topic itself after a crash: end offsets, and the values of one header
on the records written since given offsets (used to find which records of an interrupted batch arrived)."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tillflow.kafka import client_config, endpoints
from tillflow.settings import Settings


def _consumer(settings: Settings, group: str) -> Consumer:
    conf = client_config(settings, endpoints(settings).bootstrap)
    conf.update({"group.id": group, "enable.auto.commit": False, "isolation.level": "read_committed",
                 "socket.timeout.ms": 5000})  # fmt: skip
    return Consumer(conf)


def end_offsets(settings: Settings, topic: str, timeout: float = 3.0) -> dict[int, int]:
    """High watermark of each partition; raises KafkaException when the broker cannot be reached."""
    consumer = _consumer(settings, "tillflow-tail")
    try:
        md = consumer.list_topics(topic, timeout=timeout)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"topic {topic} unknown"))
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in t.partitions}
    finally:
        consumer.close()


def header_values_since(
    settings: Settings, topic: str, start: dict[int, int], header: str, match: tuple[str, bytes] | None = None,
    timeout: float = 60.0,
) -> set[bytes]:  # fmt: skip
    """Values of ``header`` on the records after ``start`` (partition -> offset) up to the current end,
    keeping only records whose header ``match[0]`` equals ``match[1]`` when given."""
    ends = end_offsets(settings, topic)
    found: set[bytes] = set()
    consumer = _consumer(settings, "tillflow-tail")
    try:
        todo = {p for p in ends if ends[p] > start.get(p, 0)}
        consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in todo])
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            headers = dict(msg.headers() or [])
            value = headers.get(header)
            if isinstance(value, bytes) and (match is None or headers.get(match[0]) == match[1]):
                found.add(value)
            part = msg.partition() or 0
            if (msg.offset() or 0) + 1 >= ends[part]:
                todo.discard(part)
        if todo:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"reading {topic} did not reach its end"))
    finally:
        consumer.close()
    return found
