"""The agents: hours (tickets + counts + ticks, co-partitioned), peers (underreporting) and the tick timer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from functools import partial
from typing import Any, cast

from aiokafka.errors import KafkaError
from faust.streams import _current_event  # the table context Faust sets for single-event iteration
from prometheus_client import Counter, Gauge

from streams.processor import Processor, RecordBatch, Send
from streams.tables import Tables, apply_held, detach_all
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
    record of a message handed over on its own."""
    msg = event.message
    batch = getattr(msg, "batch", None)
    if batch is not None:
        return cast(RecordBatch, batch)
    return RecordBatch(msg.partition, [msg.topic], [msg.offset], [msg.key], [msg.value])


def joined(group: list[Any]) -> RecordBatch:
    """The records of a group of events of one partition, in arrival order, as one batch."""
    return RecordBatch.join([batch_of(e) for e in group])


def _by_partition(events: list[Any]) -> list[list[Any]]:
    """A batch of events split by input partition, each part in arrival order."""
    groups: dict[int, list[Any]] = defaultdict(list)
    for event in events:
        groups[event.message.partition].append(event)
    return list(groups.values())


@contextlib.contextmanager
def _table_context(group: list[Any]) -> Iterator[None]:
    """Table writes go to the changelog partition of the current event: make it the group's last event."""
    token = _current_event.set(weakref.ref(group[-1]))
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
    """Send a processed group's records even if the agent is cancelled meanwhile (a stop).

    The group's table writes wait for this (streams.tables.Staged) and are dropped after a cancellation, as is
    the batch's acknowledgement (streams/transport.py: Stream.take_events): a restart reads the batch again
    from the old state and sends its records again."""
    await asyncio.shield(asyncio.ensure_future(sending))


def _count(processor: Processor, now_ms: int, group: list[Any]) -> list[Send]:
    return processor.process_batch(joined(group), now_ms)


def _peers(processor: Processor, group: list[Any]) -> list[Send]:
    return processor.process_peers(joined(group).raws())


async def process_parts(
    app: Any,
    events: list[Any],
    process: Callable[[list[Any]], list[Send]],
    state: Sequence[MutableMapping[str, Any]],
    send: Sender,
) -> None:
    """A batch of events, one input partition's part at a time through ``process`` (its table writes go to that
    partition's changelog); then every output sent and acknowledged by the broker, once for the batch; only then
    the parts' table writes that ``state`` (streams.tables.Staged) held back. A crash before that sends the
    outputs again from the old state; never the state without its outputs. The parts' keys are disjoint (keyed
    by store, store-hour or partition), so a part never reads another's held-back writes."""
    held = []
    sends: list[Send] = []
    for group in _by_partition(events):
        with _table_context(group):
            sends += process(group)
        held.append((group, detach_all(state)))
    await _complete(send(app, sends))
    for group, writes in held:
        with _table_context(group):
            apply_held(writes)


def define_agents(
    app: Any,
    processor: Processor,
    topics: Topics,
    tables: Tables,
    batch_size: int,
    tick_s: float,
    send: Sender = send_all,
    batch_within_s: float = 0.2,
    lag_interval_s: float = 5.0,
    stall_after_s: float = 30.0,
) -> dict[str, Any]:
    """Define the agents and the timer on ``app``; returns them by name.

    Agents take up to ``batch_size`` events or what arrived within ``batch_within_s``: each batch writes
    every store-hour it touched to the changelog once, so larger batches cost less per event.
    """

    progress = Stall(stall_after_s)
    data_topics = {topics.names.tickets, topics.names.counts, topics.names.peers}

    @app.agent(topics.inputs, name="hours")
    async def hours(stream: Any) -> None:
        """Count tickets and frames into store-hours; close, emit and alert per partition."""
        async for events in stream.take_events(batch_size, within=batch_within_s):
            await process_parts(app, events, partial(_count, processor, int(time.time() * 1000)), processor.state, send)
            PROCESSED.inc(sum(len(batch_of(e)) for e in events))

    @app.agent(topics.peers, name="peers")
    async def peers(stream: Any) -> None:
        """Confirm underreporting candidates against peers in the same mall and category."""
        async for events in stream.take_events(batch_size, within=batch_within_s):
            await process_parts(app, events, partial(_peers, processor), processor.peers_state, send)
            PROCESSED.inc(sum(len(batch_of(e)) for e in events))

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
        now = time.monotonic()
        for tp in stalled:  # the safety net: read a stalled partition again, at most once per stall_after_s
            if not isinstance(tp, str) and now - rewound.get(tp, -stall_after_s) >= stall_after_s:
                rewound[tp] = now
                await app.consumer.rewind(tp)

    rewound: dict[Any, float] = {}
    return {"hours": hours, "peers": peers, "tick": tick, "lag": lag}
