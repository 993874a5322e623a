"""The topics tillflow reads and writes, with the contract and key of each."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.models import Alert, CameraCount, HourlyConversion, HourlyForecast, PosTicket, Record

POS_TICKETS = "pos.tickets"
CAMERA_COUNTS = "camera.counts"
CONVERSION_HOURLY = "conversion.hourly"
ALERTS = "alerts"
FORECAST_HOURLY = "forecast.hourly"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    model: type[Record]
    key_field: str
    joined: bool
    """Joined topics are co-partitioned: same key, same partition count, same (murmur2) partitioner."""
    compacted: bool = False

    @property
    def subject(self) -> str:
        """Schema Registry subject under the TopicNameStrategy."""
        return f"{self.name}-value"


TOPICS: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in (
        TopicSpec(POS_TICKETS, PosTicket, "store_id", joined=True),
        TopicSpec(CAMERA_COUNTS, CameraCount, "store_id", joined=True),
        TopicSpec(CONVERSION_HOURLY, HourlyConversion, "store_id", joined=False),
        TopicSpec(ALERTS, Alert, "store_id", joined=False),
        TopicSpec(FORECAST_HOURLY, HourlyForecast, "store_id", joined=False),
    )
}


def deadletter_topic(topic: str) -> str:
    """Where records that could not be read or mapped from ``topic`` are kept, with the reason."""
    return f"{topic}.dlq"


def topic_spec(name: str) -> TopicSpec:
    try:
        return TOPICS[name]
    except KeyError:
        raise KeyError(f"unknown topic {name!r}; known topics: {', '.join(sorted(TOPICS))}") from None
