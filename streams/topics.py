"""Topics of the streams app: co-partitioned inputs, the timer's ticks, the peer stage, outputs, dead letters.

Inputs and outputs carry Confluent-framed Avro as raw bytes (the app does the Avro itself with
schemas.serde); the two internal topics carry JSON. ``prefix`` renames every topic (replays run in their
own namespace); Avro subjects stay those of the real topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS, deadletter_topic


@dataclass(frozen=True)
class TopicNames:
    app_id: str
    tickets: str
    counts: str
    conversion: str
    alerts: str
    ticks: str
    peers: str

    @classmethod
    def build(cls, app_id: str, prefix: str = "") -> TopicNames:
        return cls(
            app_id=app_id,
            tickets=prefix + POS_TICKETS,
            counts=prefix + CAMERA_COUNTS,
            conversion=prefix + CONVERSION_HOURLY,
            alerts=prefix + ALERTS,
            ticks=f"{app_id}-ticks",
            peers=f"{app_id}-peers",
        )

    def dlq(self, topic: str) -> str:
        return deadletter_topic(topic)


@dataclass
class Topics:
    names: TopicNames
    inputs: Any
    """tickets, counts and ticks: one channel, so one worker owns partition p of all three."""
    peers: Any
    conversion: Any
    alerts: Any
    dlq: dict[str, Any]


def define_topics(app: Any, names: TopicNames, partitions: int) -> Topics:
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    app.topic(names.ticks, partitions=partitions, internal=True, **raw)  # declared so Faust creates it
    return Topics(
        names=names,
        inputs=app.topic(names.tickets, names.counts, names.ticks, **raw),
        peers=app.topic(names.peers, partitions=partitions, internal=True, **raw),
        conversion=app.topic(names.conversion, **raw),
        alerts=app.topic(names.alerts, **raw),
        dlq={t: app.topic(deadletter_topic(t), **raw) for t in (names.tickets, names.counts)},
    )
