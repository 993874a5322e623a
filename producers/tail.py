"""What a producer can learn from the topic itself after a crash: end offsets, and the values of one header
on the records written since given offsets (used to find which records of an interrupted batch arrived).

With ``until_ms`` the scan stops at the first record stamped at or after that time (``offsets_for_times``), so
it does not read everything written since a crash long ago, only what the crashed process could have written.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tillflow.kafka import client_config, endpoints
from tillflow.settings import Settings

CLOCK_MARGIN = 300.0
"""Seconds scanned past the latest time a record of an interrupted batch could have been written, for clocks
that differ or jump (see :func:`bounded_ends`)."""


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


def bounded_ends(
    settings: Settings, topic: str, until_ms: int | None = None, timeout: float = 10.0
) -> dict[int, int]:  # fmt: skip
    """Each partition's end offset, or, with ``until_ms``, the first offset stamped at or after it if sooner.

    Record timestamps are the producers' clocks: a record of another producer whose clock runs ahead can end
    the range early. A caller must then tolerate missing a record (and send it again), never a record too many.
    """
    ends = end_offsets(settings, topic)
    if until_ms is None:
        return ends
    consumer = _consumer(settings, "tillflow-tail")
    try:
        found = consumer.offsets_for_times([TopicPartition(topic, p, until_ms) for p in ends], timeout=timeout)
    finally:
        consumer.close()
    for tp in found:
        if tp.error is not None:
            raise KafkaException(tp.error)
        if tp.offset >= 0:  # -1: no record that late; the end stays
            ends[tp.partition] = min(ends[tp.partition], tp.offset)
    return ends


def header_values_since(
    settings: Settings, topic: str, start: dict[int, int], header: str, match: tuple[str, bytes] | None = None,
    timeout: float = 60.0, until_ms: int | None = None,
) -> set[bytes]:  # fmt: skip
    """Values of ``header`` on the records after ``start`` (partition -> offset) up to the current end (or the
    first record stamped at or after ``until_ms``), keeping only records whose header ``match[0]`` equals
    ``match[1]`` when given."""
    ends = bounded_ends(settings, topic, until_ms)
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
            part, offset = msg.partition() or 0, msg.offset() or 0
            if offset < ends[part]:
                headers = dict(msg.headers() or [])
                value = headers.get(header)
                if isinstance(value, bytes) and (match is None or headers.get(match[0]) == match[1]):
                    found.add(value)
            if offset + 1 >= ends[part] and part in todo:
                todo.discard(part)
                consumer.pause([TopicPartition(topic, part)])
        if todo:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"reading {topic} did not reach its end"))
    finally:
        consumer.close()
    return found
