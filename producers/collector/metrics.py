"""Health metrics of the store collector (Prometheus)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Gauge

if TYPE_CHECKING:
    from producers.collector.collect import Collector

SPOOL_DEPTH = Gauge("tillflow_collector_spool_depth", "Tickets spooled, not yet acknowledged by Kafka.", ["collector"])
SPOOL_AGE = Gauge("tillflow_collector_spool_oldest_seconds", "Age of the oldest unsent ticket.", ["collector"])
KAFKA_UP = Gauge("tillflow_collector_kafka_up", "1 when the last exchange with Kafka succeeded.", ["collector"])
SENT = Gauge("tillflow_collector_sent", "Tickets acknowledged by Kafka since the process started.", ["collector"])


def update(name: str, collector: Collector) -> None:
    SPOOL_DEPTH.labels(name).set(collector.spool.depth())
    SPOOL_AGE.labels(name).set(collector.spool.oldest_age())
    KAFKA_UP.labels(name).set(1 if collector.forwarder.kafka_up else 0)
    SENT.labels(name).set(collector.forwarder.sent)
