"""Reading a topic's state in tests: high watermarks per partition."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from tillflow.kafka import consumer_config
from tillflow.settings import Settings


def _consumer(settings: Settings) -> Consumer:
    config = consumer_config(settings, f"test-{time.time_ns()}")
    config["enable.auto.commit"] = False
    return Consumer(config)


def watermarks(settings: Settings, topic: str) -> dict[int, int]:
    """The high watermark of each partition of ``topic``."""
    consumer = _consumer(settings)
    try:
        meta = consumer.list_topics(topic, timeout=10)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.topics[topic].partitions
        }
    finally:
        consumer.close()


def headers_of(msg: Any) -> dict[str, bytes]:
    """A consumed message's headers by name (values as bytes; a missing value as b'')."""
    out: dict[str, bytes] = {}
    for name, value in msg.headers() or []:
        out[str(name)] = value.encode() if isinstance(value, str) else bytes(value or b"")
    return out
