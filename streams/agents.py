"""The agents: hours (tickets + counts + ticks, co-partitioned), peers (underreporting) and the tick timer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

from aiokafka.errors import KafkaError
from faust.streams import _current_event  # the table context Faust sets for single-event iteration
from prometheus_client import Counter, Gauge

from streams.processor import Processor, RecordBatch, Send
from streams.tables import Tables
from streams.topics import Topics
from streams.watchdog import Stall, consumer_state, task_stacks

log = logging.getLogger(__name__)
STALLED = Gauge(
    "tillflow_streams_stalled_seconds",
    "Longest time an input partition of this worker has had records waiting while its committed offset did"
    " not move, or the worker has been rebalancing or recovering its tables (0: every partition makes progress).",
)
PROCESSED = Counter("tillflow_streams_records_processed_total", "Input records (all topics) an agent finished.")
CONSUMER_LAG = Gauge(
    "tillflow_streams_consumer_lag",
    "Records of an input partition this worker owns that it has not read yet (high watermark - position).",
    ["topic", "partition"],
)


REBALANCING = "every input (the worker is rebalancing or recovering its tables)"
"""What the stall warning names while the worker is in a rebalance or its tables' recovery."""


def batch_of(event: Any) -> RecordBatch:
    """The records an event stands for: the batch of a :class:`streams.transport.BatchMessage`, or the one
    record of a message from any other transport (Faust's own, ``test_context``)."""
    msg = event.message
    batch = getattr(msg, "batch", None)
    if batch is not None:
        return cast(RecordBatch, batch)
    return RecordBatch(msg.partition, [msg.topic], [msg.offset], [msg.key], [msg.value])


@contextlib.contextmanager
def _table_context(event: Any) -> Iterator[None]:
    """Table writes go to the changelog partition of the current event: make it the batch's event."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


async def send_all(app: Any, sends: list[Send]) -> None:
    """Send records with the app's producer and wait until the broker acknowledged every one: the agents
    write a batch's state to the tables only after this (streams.tables.Staged)."""
    delivered = []
    for s in sends:
        headers = [(k, v.encode()) for k, v in s.headers.items()] or None  # Kafka header values are bytes
        delivered.append(await app.producer.send(s.topic, s.key, s.value, None, None, headers))
    if delivered:
        await asyncio.gather(*delivered)


Sender = Callable[[Any, list[Send]], Awaitable[None]]


async def _complete(sending: Awaitable[None]) -> None:
    """Send a processed batch's records even if the agent is cancelled meanwhile (a stop).

    The batch's table writes wait for this (streams.tables.Staged) and are dropped after a cancellation, as is
    its acknowledgement: a restart reads the batch again from the old state and sends its records again."""
    await asyncio.shield(asyncio.ensure_future(sending))


def define_agents(
    app: Any,
    processor: Processor,
    topics: Topics,
    tables: Tables,
    tick_s: float,
    send: Sender = send_all,
    lag_interval_s: float = 5.0,
    stall_after_s: float = 30.0,
) -> dict[str, Any]:
    """Define the agents and the timers on ``app``; returns them by name.

    Their input topics are handed over a fetched batch of one partition at a time (streams/transport.py):
    the engine counts a whole batch at once and writes every store-hour it touched to the changelog once.
    """

    progress = Stall(stall_after_s)
    data_topics = {topics.names.tickets, topics.names.counts, topics.names.peers}

    @app.agent(topics.inputs, name="hours")
    async def hours(stream: Any) -> None:
        """Count tickets and frames into store-hours; close, emit and alert per partition.

        One event is one fetched batch of one partition (streams/transport.py). It is acknowledged only
        after its outputs were handed to the producer, so an agent stopped or cancelled in the middle of a
        batch acknowledges nothing of it, and its offsets are never committed.
        """
        async for event in stream.noack().events():
            batch = batch_of(event)
            with _table_context(event):
                sends = processor.process_batch(batch, int(time.time() * 1000))
            await _complete(send(app, sends))
            with _table_context(event):
                processor.apply_state()  # only now: outputs delivered (a crash before: both are redone)
            await stream.ack(event)
            PROCESSED.inc(len(batch))

    @app.agent(topics.peers, name="peers")
    async def peers(stream: Any) -> None:
        """Confirm underreporting candidates against peers in the same mall and category."""
        async for event in stream.noack().events():
            batch = batch_of(event)
            with _table_context(event):
                sends = processor.process_peers([batch.raw(i) for i in range(len(batch))])
            await _complete(send(app, sends))
            with _table_context(event):
                processor.apply_peers_state()
            await stream.ack(event)
            PROCESSED.inc(len(batch))

    @app.timer(interval=tick_s)
    async def tick() -> None:
        """Send a tick to every input partition this worker owns: throttled updates and quiet hours."""
        now_ms = int(time.time() * 1000)
        owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topics.names.tickets}
        for partition in sorted(owned):
            try:
                await app.producer.send(
                    topics.names.ticks, None, json.dumps({"now": now_ms}).encode(), partition, None, None
                )
            except (AssertionError, KafkaError) as exc:  # metadata of a just-created topic not loaded yet
                log.debug("tick to %s[%d] not sent: %r; next interval retries", topics.names.ticks, partition, exc)

    reported: set[tuple[str, str]] = set()
    lag_topics = {topics.names.tickets, topics.names.counts, topics.names.peers}

    @app.timer(interval=lag_interval_s)
    async def lag() -> None:
        """Sample the consumer lag of the partitions this worker owns into ``tillflow_streams_consumer_lag``."""
        try:
            lags = await app.consumer.input_lag(lag_topics)
        except Exception as exc:  # not started, rebalancing, or another transport: the next interval retries
            log.debug("consumer lag not sampled: %r", exc)
            return
        current = {(tp.topic, str(tp.partition)): value for tp, value in lags.items()}
        for labels in reported - current.keys():
            with contextlib.suppress(KeyError):  # another app in this process removed it
                CONSUMER_LAG.remove(*labels)
        for labels, value in current.items():
            CONSUMER_LAG.labels(*labels).set(value)
        reported.clear()
        reported.update(current)
        watched: dict[Any, tuple[int, int]] = dict(app.consumer.uncommitted(data_topics))
        if app.rebalancing or app.in_recovery:  # no input is processed meanwhile: a phase that never ends stalls
            watched[REBALANCING] = (0, 1)
        stalled = progress.observe(time.monotonic(), watched)
        STALLED.set(max(stalled.values(), default=0.0))
        fresh = set(stalled) - progress.reported
        if fresh:
            progress.reported |= fresh
            log.warning(
                "stalled: no offset committed for %.0f s on %s although records wait there\n%s\n%s",
                max(stalled.values()),
                ", ".join(sorted(tp if isinstance(tp, str) else f"{tp.topic}[{tp.partition}]" for tp in fresh)),
                consumer_state(app),
                task_stacks(),
            )

    return {"hours": hours, "peers": peers, "tick": tick, "lag": lag}
