"""Dead letters: one record per bad input record, with one header scheme whoever writes it.

A dead letter keeps the original key and bytes and goes to ``<topic>.dlq`` (schemas.topics.deadletter_topic)
with these headers (values UTF-8):

- ``tillflow.dlq.reason``: why the record could not be used (at most 2,000 characters, no personal-data values)
- ``tillflow.dlq.stage``: ``decode`` (not readable), ``validate`` (not a valid record), ``map`` (cannot be
  placed: unknown store, older than retention...), ``clickhouse`` (refused by the database)
- ``tillflow.dlq.component``: who found the fault: ``streams``, ``clickhouse``, ``alerts``...
- ``tillflow.dlq.topic``, ``tillflow.dlq.partition``, ``tillflow.dlq.offset``: where the original record is

Every component builds its dead-letter record with :func:`dead_letter_record`; docs/operations.md and the
Prometheus rules use the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from schemas.topics import deadletter_topic
from tillflow.documents import validation_reason

REASON, STAGE, COMPONENT = "tillflow.dlq.reason", "tillflow.dlq.stage", "tillflow.dlq.component"
TOPIC, PARTITION, OFFSET = "tillflow.dlq.topic", "tillflow.dlq.partition", "tillflow.dlq.offset"
STAGES = ("decode", "validate", "map", "clickhouse")


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    stage: str
    """One of :data:`STAGES`."""
    reason: str

    def headers(self, component: str) -> dict[str, str]:
        return {
            REASON: self.reason[:2000],
            STAGE: self.stage,
            COMPONENT: component,
            TOPIC: self.topic,
            PARTITION: str(self.partition),
            OFFSET: str(self.offset),
        }

    def describe(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset} ({self.stage}): {self.reason}"


@dataclass(frozen=True)
class DeadLetterRecord:
    """What to send: the dead-letter topic, the original key and bytes, the headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]


def dead_letter_record(letter: DeadLetter, component: str, topic: str | None = None) -> DeadLetterRecord:
    """The record ``component`` sends for ``letter``: to ``topic``, default ``<letter.topic>.dlq``."""
    return DeadLetterRecord(
        topic or deadletter_topic(letter.topic), letter.key, letter.value or b"", letter.headers(component)
    )


def short_reason(exc: BaseException) -> str:
    """A dead letter's reason on one line: pydantic errors as ``field: message``, others as their text."""
    if isinstance(exc, ValidationError):
        return f"invalid {exc.title}: {validation_reason(exc, top='(record)')}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if not text.startswith(("Code:", type(exc).__name__)) else text
