"""Sending validated records to a topic: Avro in Confluent wire format, keyed, idempotent, acknowledged.

Every producer (simulator, file import, pollers, CDC normalizer, camera), the streams replay and the sinks use
:class:`RecordSender`, so partitioning, framing and delivery checks are the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas.models import Record
from schemas.serde import TopicSerde
from schemas.topics import topic_spec
from tillflow.dlq import DeadLetter, dead_letter_record
from tillflow.errors import UnavailableError
from tillflow.kafka import endpoints, producer_config, registry_from_settings
from tillflow.settings import Settings


class DeliveryError(UnavailableError):
    """The broker did not acknowledge one or more records."""


class RecordSender:
    """Produce records of the tillflow topics; ``flush`` raises if any was not acknowledged."""

    def __init__(self, settings: Settings, **producer_overrides: Any) -> None:
        ep = endpoints(settings)
        self.registry = registry_from_settings(settings, ep.registry_url)
        conf = producer_config(settings, ep.bootstrap, **producer_overrides)
        self.producer = Producer(conf)
        timeout_ms = int(conf.get("message.timeout.ms", conf.get("delivery.timeout.ms", 300_000)))
        self.delivery_timeout_s: float | None = timeout_ms / 1000 if timeout_ms > 0 else None
        """After this many seconds a queued record is written or has failed; None: it is retried forever."""
        self._serdes: dict[str, TopicSerde] = {}
        self.sent = 0
        self.acked = 0
        self._errors: list[str] = []

    def serde(self, topic: str) -> TopicSerde:
        serde = self._serdes.get(topic)
        if serde is None:
            serde = self._serdes[topic] = TopicSerde(self.registry, topic)
        return serde

    def _on_delivery(self, error: KafkaError | None, msg: Message) -> None:
        if error is None:
            self.acked += 1
        elif len(self._errors) < 20:
            self._errors.append(f"{msg.topic()} key={msg.key()!r}: {error.str()}")

    def send(self, topic: str, record: Record, headers: dict[str, str] | None = None) -> None:
        """Queue one record, keyed by its topic's key field."""
        spec = topic_spec(topic)
        key = str(getattr(record, spec.key_field)).encode()
        self.send_raw(topic, key, self.serde(topic).encode(record), headers)

    def send_many(self, topic: str, records: Iterable[Record]) -> int:
        n = 0
        for record in records:
            self.send(topic, record)
            n += 1
        return n

    def send_raw(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str] | None = None) -> None:
        """Queue bytes as they are (dead-letter records, raw change events)."""
        while True:
            try:
                self.producer.produce(
                    topic, value=value, key=key, headers=list((headers or {}).items()), on_delivery=self._on_delivery
                )
                break
            except BufferError:
                self.producer.poll(0.1)
        self.sent += 1
        self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued record; raise :class:`DeliveryError` if any was refused or is still queued."""
        remaining = self.producer.flush(timeout)
        if remaining or self._errors:
            problems = "; ".join(self._errors) or f"{remaining} records still queued after {timeout}s"
            raise DeliveryError(f"{self.sent - self.acked} of {self.sent} records not acknowledged: {problems}")

    def reset(self) -> None:
        """Drop every record still queued and forget past delivery errors (after an outage, before resending)."""
        self.producer.purge()
        self.producer.flush(0)  # serve the purged records' callbacks
        self.sent = self.acked = 0
        self._errors.clear()

    def __enter__(self) -> RecordSender:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.flush()


def dead_letter_sender(settings: Settings, component: str) -> Callable[[list[DeadLetter]], None]:
    """Sends dead letters to ``<topic>.dlq`` and waits until the broker acknowledged every one."""
    sender = RecordSender(settings)

    def send(letters: list[DeadLetter]) -> None:
        for letter in letters:
            record = dead_letter_record(letter, component)
            sender.send_raw(record.topic, record.key, record.value, record.headers)
        sender.flush()

    return send
