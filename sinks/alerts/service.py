"""`tillflow sink alerts`: alerts topic -> durable outbox -> on-call channels.

Consume a batch of alerts, route each, store the deliveries in the outbox (one SQLite transaction), then
commit the offsets: from then on the outbox owns them. Between polls, deliver what is due, honouring each
channel's rate limit (deferred, not dropped) and retrying failures with doubling waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests
from confluent_kafka import Consumer, KafkaError, Message
from pydantic import ValidationError

from schemas.models import Alert, Record
from schemas.serde import DecodeError
from sinks.alerts.delivery import send
from sinks.alerts.outbox import Outbox
from sinks.alerts.routing import RateLimiter, RoutingConfig, route
from sinks.metrics import ALERT_DEAD, ALERT_DELIVERIES, ALERT_OUTBOX, RECORDS
from tillflow.dlq import DeadLetter, short_reason
from tillflow.kafka import commit_offsets, commit_written
from tillflow.retry import backoff
from tillflow.settings import Settings

log = logging.getLogger(__name__)
SINK = "alerts"


@dataclass
class AlertStats:
    consumed: int = 0
    queued: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dead: int = 0


@dataclass
class _Consumed:
    topic: str
    partition: int
    offset: int


class AlertSink:
    def __init__(
        self,
        consumer: Consumer,
        decode: Callable[[bytes | None], Record],
        outbox: Outbox,
        config: RoutingConfig,
        send_dead_letters: Callable[[list[DeadLetter]], None],
        *,
        store_names: Mapping[str, str] | None = None,
        max_attempts: int = 20,
        retry_initial: float = 5.0,
        retry_max: float = 900.0,
        http_timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.consumer = consumer
        self.decode = decode
        self.outbox = outbox
        self.config = config
        self.send_dead_letters = send_dead_letters
        self.store_names = dict(store_names or {})
        self.max_attempts = max_attempts
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.http_timeout = http_timeout
        self.session = session or requests.Session()
        self.limiter = RateLimiter.for_config(config)
        self.stats = AlertStats()
        self.stop_event = threading.Event()

    def ingest(self, msgs: list[Message]) -> int:
        """Route and store a batch, dead-letter what cannot be read, then commit; returns alerts stored."""
        items: list[tuple[Alert, list[str]]] = []
        dead: list[DeadLetter] = []
        consumed: list[_Consumed] = []
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err)
                continue
            topic, part, off = str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0)
            consumed.append(_Consumed(topic, part, off))
            self.stats.consumed += 1
            try:
                alert = self.decode(msg.value())
                assert isinstance(alert, Alert)
            except (DecodeError, ValidationError, ValueError, AssertionError) as exc:
                stage = "decode" if isinstance(exc, DecodeError) else "validate"
                dead.append(DeadLetter(topic, part, off, msg.key(), msg.value(), stage, short_reason(exc)))
                RECORDS.labels(SINK, topic, "dead_lettered").inc()
                continue
            channels = route(alert, self.config)
            if not channels:
                ALERT_DELIVERIES.labels("none", "unrouted").inc()
            items.append((alert, channels))
            RECORDS.labels(SINK, topic, "written").inc()
        if not consumed:
            return 0
        new = self.outbox.enqueue(items, time.time())
        self.stats.queued += new
        if dead:
            for letter in dead:
                log.error("dead letter %s", letter.describe())
            self.send_dead_letters(dead)
        commit_written(self.consumer, commit_offsets(consumed), "a stored batch of alerts")
        return new

    def deliver_due(self, now: float | None = None) -> int:
        """Attempt every due delivery once; returns how many succeeded."""
        now = time.time() if now is None else now
        done = 0
        for delivery in self.outbox.due(now):
            channel = self.config.channels.get(delivery.channel)
            if channel is None:
                self.outbox.failed(delivery.id, f"channel {delivery.channel!r} is no longer configured", None)
                continue
            wait = self.limiter.wait(delivery.channel, now)
            if wait > 0:
                self.outbox.defer(delivery.id, now + wait)
                ALERT_DELIVERIES.labels(delivery.channel, "rate_limited").inc()
                continue
            outcome = send(
                self.session, channel, delivery.alert, self.http_timeout, self.store_names.get(delivery.alert.store_id)
            )
            if outcome.ok:
                self.outbox.delivered(delivery.id, time.time())
                ALERT_DELIVERIES.labels(delivery.channel, "delivered").inc()
                self.stats.delivered += 1
                done += 1
                continue
            attempts = delivery.attempts + 1
            self.stats.failed_attempts += 1
            if attempts >= self.max_attempts:
                self.outbox.failed(delivery.id, outcome.error, None)
                ALERT_DELIVERIES.labels(delivery.channel, "dead").inc()
                self.stats.dead += 1
                log.error("alert %s to %s failed %d times, parked: %s", delivery.alert.alert_id, delivery.channel,
                          attempts, outcome.error)  # fmt: skip
            else:
                wait = max(backoff(attempts - 1, self.retry_initial, self.retry_max), outcome.retry_after or 0.0)
                self.outbox.failed(delivery.id, outcome.error, time.time() + wait)
                ALERT_DELIVERIES.labels(delivery.channel, "retry").inc()
                log.warning("alert %s to %s failed (%s); retry in %.1fs", delivery.alert.alert_id, delivery.channel,
                            outcome.error, wait)  # fmt: skip
        counts = self.outbox.counts()
        ALERT_OUTBOX.set(counts["pending"])
        ALERT_DEAD.set(counts["dead"])
        return done

    def run(self, topics: list[str], idle_exit: float | None = None) -> AlertStats:
        """Consume and deliver until stopped (or idle: nothing consumed nor pending for ``idle_exit`` s)."""
        self.consumer.subscribe(topics)
        last = time.monotonic()
        try:
            while not self.stop_event.is_set():
                msgs = self.consumer.consume(num_messages=500, timeout=0.2)
                if msgs:
                    self.ingest(msgs)
                    last = time.monotonic()
                if self.deliver_due():
                    last = time.monotonic()
                pending = self.outbox.counts()["pending"]
                if idle_exit is not None and not pending and time.monotonic() - last >= idle_exit:
                    break
        finally:
            self.consumer.close()
        return self.stats


def build_alert_sink(settings: Settings, config: RoutingConfig, topic: str = "alerts") -> AlertSink:
    from schemas.catalogue import load_catalogue
    from tillflow.kafka import decoders, group_member_config
    from tillflow.sender import dead_letter_sender

    catalogue = load_catalogue(settings.catalogue)
    for note in config.warnings(catalogue):
        log.warning("alert routes %s: %s", settings.alerts_routes or "<routes>", note)
    names = {s.id: s.name for s in catalogue.stores}
    return AlertSink(
        Consumer(group_member_config(settings, settings.alerts_group_id)),
        decoders(settings, {topic: "alerts"})[topic],
        Outbox(settings.state_dir / "alerts" / "outbox.sqlite"),
        config,
        dead_letter_sender(settings, SINK),
        store_names=names,
        max_attempts=settings.alerts_max_attempts,
        retry_initial=settings.alerts_retry_initial_seconds,
        retry_max=settings.alerts_retry_max_seconds,
        http_timeout=settings.alerts_http_timeout_seconds,
    )


def run_alert_sink(settings: Settings, idle_exit: float | None = None) -> AlertStats:
    from sinks.alerts.routing import RoutingError, load_routes
    from tillflow.lifecycle import stop_on_signals
    from tillflow.metrics import serve_configured_metrics
    from tillflow.shutdown import StopDeadline

    if settings.alerts_routes is None:
        raise RoutingError("no routing file: set TILLFLOW_ALERTS_ROUTES (see docs/sinks.md)")
    config = load_routes(settings.alerts_routes)
    serve_configured_metrics(settings)
    sink = build_alert_sink(settings, config)
    with stop_on_signals(sink.stop_event, StopDeadline(settings.stop_timeout_s, "the alert sink")):
        return sink.run(["alerts"], idle_exit=idle_exit)
