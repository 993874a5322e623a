"""Dead-letter records: the original key and bytes, with headers naming where they came from and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    stage: str
    """decode (not readable), validate (not a valid record), map (cannot be placed), clickhouse (rejected)."""
    reason: str

    def headers(self, sink: str) -> dict[str, str]:
        return {
            "tillflow.dlq.reason": self.reason[:2000],
            "tillflow.dlq.stage": self.stage,
            "tillflow.dlq.sink": sink,
            "tillflow.dlq.topic": self.topic,
            "tillflow.dlq.partition": str(self.partition),
            "tillflow.dlq.offset": str(self.offset),
        }

    def describe(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset} ({self.stage}): {self.reason}"
