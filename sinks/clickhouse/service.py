"""Wiring for `tillflow sink clickhouse`: client, consumer, decoders and dead-letter producer from Settings."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from schemas.catalogue import load_catalogue
from schemas.models import Record
from schemas.serde import TopicSerde
from schemas.topics import (
    ALERTS,
    CAMERA_COUNTS,
    CONVERSION_HOURLY,
    FORECAST_HOURLY,
    POS_TICKETS,
    STAFF_SHIFTS,
    STOREOPS_HOURLY,
)
from sinks.clickhouse.connection import connect, redacted
from sinks.clickhouse.mapping import timezones_of
from sinks.clickhouse.migrate import DEFAULT_DIR, load_stores, migrate
from sinks.clickhouse.sink import ClickHouseSink, SinkStats
from tillflow.dlq import DeadLetter, dead_letter_record
from tillflow.settings import Settings
from tillflow.shutdown import StopDeadline, stop_on_signals

log = logging.getLogger(__name__)

SINK_TOPICS = (POS_TICKETS, CAMERA_COUNTS, CONVERSION_HOURLY, ALERTS, FORECAST_HOURLY, STAFF_SHIFTS, STOREOPS_HOURLY)


def connect_with_retry(settings: Settings, stop: threading.Event, create: bool = True) -> Any:
    """A client on tillflow's database, retrying with doubling waits while the server is unreachable."""
    from clickhouse_connect.driver.exceptions import OperationalError

    from sinks.clickhouse.connection import clickhouse_dsn

    delay = settings.sink_retry_initial_seconds
    while True:
        try:
            return connect(settings, create=create)
        except OperationalError as exc:
            where = redacted(clickhouse_dsn(settings))
            log.warning("ClickHouse at %s unreachable (%s); retry in %.1fs", where, exc, delay)
            if stop.wait(delay):
                raise
            delay = min(delay * 2, settings.sink_retry_max_seconds)


def prepare(settings: Settings, client: Any) -> int:
    """Apply pending migrations and refresh the stores dimension; returns the number of migrations applied."""
    applied = migrate(client, settings.clickhouse_migrations_dir or DEFAULT_DIR)
    load_stores(client, load_catalogue(settings.catalogue))
    return len(applied)


def dead_letter_sender(settings: Settings, sink: str) -> Callable[[list[DeadLetter]], None]:
    """Sends dead letters to ``<topic>.dlq`` and waits until the broker acknowledged every one."""
    from producers.sender import RecordSender

    sender = RecordSender(settings)

    def send(letters: list[DeadLetter]) -> None:
        for letter in letters:
            record = dead_letter_record(letter, sink)
            sender.send_raw(record.topic, record.key, record.value, record.headers)
        sender.flush()

    return send


def _registry(settings: Settings) -> Any:
    from schemas.serde import registry_client
    from tillflow.kafka import endpoints

    auth = settings.registry_basic_auth.get_secret_value() if settings.registry_basic_auth else None
    ca = str(settings.registry_ssl_ca_location) if settings.registry_ssl_ca_location else None
    return registry_client(endpoints(settings).registry_url, auth, ca)


def decoders(settings: Settings, topics: dict[str, str]) -> dict[str, Callable[[bytes | None], Record]]:
    """Model decoder per consumed topic; ``topics`` maps consumed name to tillflow topic (whose schema applies)."""
    registry = _registry(settings)
    return {name: TopicSerde(registry, logical, auto_register=False).decode_model for name, logical in topics.items()}


def plain_decoders(settings: Settings, topics: dict[str, str]) -> dict[str, Callable[[bytes | None], dict[str, Any]]]:
    """Plain-value decoder per consumed topic (what the columnar mapping reads: timestamps as epoch ms)."""
    from schemas.serde import PlainDecoder

    registry = _registry(settings)
    return {
        name: PlainDecoder(TopicSerde(registry, logical, auto_register=False)).decode
        for name, logical in topics.items()
    }


def build_sink(settings: Settings, client: Any, topics: dict[str, str] | None = None) -> ClickHouseSink:
    """The sink for ``topics`` (consumed name -> tillflow topic; default every topic the sink lands)."""
    from confluent_kafka import Consumer

    from tillflow.kafka import group_member_config

    topics = topics or {t: t for t in SINK_TOPICS}
    consumer = Consumer(group_member_config(settings, settings.sink_group_id))
    return ClickHouseSink(
        client,
        consumer,
        plain_decoders(settings, topics),
        timezones_of(load_catalogue(settings.catalogue)),
        dead_letter_sender(settings, "clickhouse"),
        batch_rows=settings.sink_batch_rows,
        batch_seconds=settings.sink_batch_seconds,
        retry_initial=settings.sink_retry_initial_seconds,
        retry_max=settings.sink_retry_max_seconds,
        logical_topics=topics,
    )


def run_sink(settings: Settings, idle_exit: float | None = None, topics: dict[str, str] | None = None) -> SinkStats:
    """Migrate, then run the sink until SIGTERM/SIGINT (or ``idle_exit`` seconds without records)."""
    from tillflow.metrics import serve_metrics

    stop = threading.Event()
    with stop_on_signals(stop, StopDeadline(settings.stop_timeout_s, "the ClickHouse sink")):
        if settings.metrics_port is not None:
            port = serve_metrics(settings.metrics_port, settings.metrics_host)
            log.info("metrics on http://%s:%d/metrics", settings.metrics_host, port)
        client = connect_with_retry(settings, stop)
        prepare(settings, client)
        sink = build_sink(settings, client, topics)
        sink.stop_event = stop
        started = time.monotonic()
        stats = sink.run(list(sink.logical_topics), idle_exit=idle_exit)
    log.info("sink stopped after %.1fs: %s", time.monotonic() - started, stats)
    return stats
