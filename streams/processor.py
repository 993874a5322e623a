"""Between Kafka records and the engine: decode Avro, dead-letter what cannot be used, encode outputs.

Kept free of Faust so the same path runs in the agents, the benchmarks and the tests; the agents only
group records by partition, set the table context and send what this returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Histogram

from schemas.catalogue import Catalogue
from schemas.serde import DecodeError, PlainDecoder, TopicSerde
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from streams.engine import FRAME, TICKET, Engine, Output, StreamConfig
from streams.peers import PeerEngine
from streams.tables import Tables
from streams.topics import TopicNames
from tillflow.dlq import DeadLetter, dead_letter_record

EVENTS = Counter("tillflow_streams_events_total", "Input records processed.", ["topic"])
DUPLICATES = Counter("tillflow_streams_duplicates_total", "Duplicate tickets and frames counted once.")
DEAD_LETTERS = Counter("tillflow_streams_dead_letters_total", "Records sent to a dead-letter topic.", ["topic"])
EMITTED = Counter("tillflow_streams_emitted_total", "Records emitted.", ["topic"])
BATCH_SECONDS = Histogram(
    "tillflow_streams_batch_seconds",
    "Time to process one batch of one input partition (decode, count, close, encode outputs).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LATE = Counter("tillflow_streams_late_events_total", "Events counted into an hour that had already closed.")
HOURS_CLOSED = Counter("tillflow_streams_hours_closed_total", "Store and zone hours emitted final.")
HOURS_CORRECTED = Counter(
    "tillflow_streams_hours_corrected_total", "Final hours emitted again with a higher revision (late events)."
)
ALERTS_FIRED = Counter("tillflow_streams_alerts_total", "Alert records emitted.", ["kind", "state"])
ALERTS_SUPPRESSED = Counter(
    "tillflow_streams_alerts_suppressed_total",
    "Findings not paged because a root alert (cause FEED_SILENT, CAMERA_SILENT) or a data gap (DATA_GAP) explains"
    " them; a root alert lists them in its details as related.",
    ["kind", "cause"],
)


@dataclass(frozen=True)
class Raw:
    """One consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records of one partition number, side by side, in the order to process them; co-partitioned topics may
    be interleaved (each record's topic is in :attr:`topics`). What the worker's batched transport hands to an
    agent as one event (streams/transport.py), and what the agents give the processor."""

    partition: int
    topics: list[str]
    offsets: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]

    def __len__(self) -> int:
        return len(self.offsets)

    def raw(self, index: int) -> Raw:
        return Raw(self.topics[index], self.partition, self.offsets[index], self.keys[index], self.values[index])

    def raws(self) -> list[Raw]:
        return [self.raw(i) for i in range(len(self.offsets))]

    def spans(self) -> dict[str, tuple[int, int]]:
        """(first, last) offset of each topic in the batch (a topic's offsets ascend through the batch)."""
        topics, offsets = self.topics, self.offsets
        backwards = topics[::-1]
        return {t: (offsets[topics.index(t)], offsets[-1 - backwards.index(t)]) for t in dict.fromkeys(topics)}

    @classmethod
    def of(cls, partition: int, records: Iterable[Raw]) -> RecordBatch:
        """Records (of ``partition``) as one batch."""
        batch = cls(partition, [], [], [], [])
        for raw in records:
            batch.topics.append(raw.topic)
            batch.offsets.append(raw.offset)
            batch.keys.append(raw.key)
            batch.values.append(raw.value)
        return batch

    @classmethod
    def join(cls, batches: list[RecordBatch]) -> RecordBatch:
        """Batches of one partition, one after the other, as one batch."""
        if len(batches) == 1:
            return batches[0]
        joined = cls(batches[0].partition, [], [], [], [])
        for batch in batches:
            joined.topics.extend(batch.topics)
            joined.offsets.extend(batch.offsets)
            joined.keys.extend(batch.keys)
            joined.values.extend(batch.values)
        return joined


@dataclass(frozen=True)
class Send:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Processor:
    """Turns batches of one input partition into records to send; state lives in the mappings given."""

    def __init__(
        self,
        catalogue: Catalogue,
        config: StreamConfig,
        names: TopicNames,
        serdes: dict[str, TopicSerde],
        tables: Tables,
        partition_count: int,
    ) -> None:
        self.names = names
        self.serdes = serdes
        t = tables
        self.engine = Engine(catalogue, config, t.hours, t.stores, t.partitions, t.history, t.retained)
        self.peers = PeerEngine(catalogue, config.underreporting, t.peer_groups)
        self.partition_count = partition_count
        self.groups = sorted(self.peers.members)
        self._kinds = {names.tickets: TICKET, names.counts: FRAME}
        self._hot_decoders = {
            names.tickets: PlainDecoder(serdes[POS_TICKETS]).decode,
            names.counts: PlainDecoder(serdes[CAMERA_COUNTS]).decode,
        }

    @property
    def state(self) -> tuple[MutableMapping[str, Any], ...]:
        """The tables the input batches write (streams.tables.Staged where the agents hold writes back)."""
        engine = self.engine
        return (engine.hours, engine.stores, engine.parts, engine.history, engine.retained)

    @property
    def peers_state(self) -> tuple[MutableMapping[str, Any], ...]:
        """The table the peer messages write."""
        return (self.peers.groups,)

    def process(self, partition: int, records: Iterable[Raw], now_ms: int) -> list[Send]:
        """Inputs (tickets, counts, ticks) of one partition, in order."""
        return self.process_batch(RecordBatch.of(partition, records), now_ms)

    def process_batch(self, batch: RecordBatch, now_ms: int) -> list[Send]:
        """A batch of the inputs (tickets, counts, ticks) of one partition, in order. Tickets and counts between
        two ticks are counted in one engine call; Prometheus counters move once per call."""
        started = time.perf_counter()
        partition = batch.partition
        sends: list[Send] = []
        out = Output()
        events: list[tuple[str, dict[str, Any]]] = []
        index: list[int] = []
        kinds, decoders, ticks = self._kinds, self._hot_decoders, self.names.ticks
        for i, (topic, value) in enumerate(zip(batch.topics, batch.values, strict=True)):
            if topic == ticks:
                if events:
                    out.extend(self._apply(partition, events, batch, index, now_ms, sends))
                    events, index = [], []
                out.extend(self._tick(partition, batch.raw(i), now_ms, sends))
                continue
            try:
                events.append((kinds[topic], decoders[topic](value)))
            except DecodeError as exc:
                sends.append(self._dead_letter(batch.raw(i), "decode", str(exc)))
                continue
            index.append(i)
        if events:
            out.extend(self._apply(partition, events, batch, index, now_ms, sends))
        self._emit(out, sends)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return sends

    def _apply(
        self,
        partition: int,
        events: list[tuple[str, dict[str, Any]]],
        batch: RecordBatch,
        index: list[int],
        now_ms: int,
        sends: list[Send],
    ) -> Output:
        out = self.engine.apply(partition, events, now_ms)
        for j, reason in out.rejects:
            sends.append(self._dead_letter(batch.raw(index[j]), "map", reason))
        out.rejects = []
        tickets = sum(1 for kind, _ in events if kind == TICKET)
        if tickets:
            EVENTS.labels(self.names.tickets).inc(tickets)
        if len(events) - tickets:
            EVENTS.labels(self.names.counts).inc(len(events) - tickets)
        if out.duplicates:
            DUPLICATES.inc(out.duplicates)
        return out

    def _tick(self, partition: int, raw: Raw, now_ms: int, sends: list[Send]) -> Output:
        tick = json.loads(raw.value or b"{}")
        close_all = bool(tick.get("close_all"))
        out = self.engine.tick(partition, int(tick.get("now", now_ms)), close_all=close_all)
        if close_all:
            self._emit(out, sends)
            out = Output()
            for group in self.groups:
                sends.append(Send(self.names.peers, group.encode(), json.dumps({"flush_from": partition}).encode()))
        return out

    def _emit(self, out: Output, sends: list[Send]) -> None:
        conv = self.serdes[CONVERSION_HOURLY]
        for record in out.conversions:
            sends.append(Send(self.names.conversion, record["store_id"].encode(), conv.encode(record)))
        EMITTED.labels(self.names.conversion).inc(len(out.conversions))
        if out.late:
            LATE.inc(out.late)
        if out.closed:
            HOURS_CLOSED.inc(out.closed)
        if out.corrected:
            HOURS_CORRECTED.inc(out.corrected)
        for kind, cause in out.suppressed:
            ALERTS_SUPPRESSED.labels(kind, cause).inc()
        self._emit_alerts(out.alerts, sends)
        for group, message in out.peers:
            sends.append(Send(self.names.peers, group.encode(), json.dumps(message).encode()))

    def _emit_alerts(self, alerts: list[dict[str, Any]], sends: list[Send]) -> None:
        serde = self.serdes[ALERTS]
        for alert in alerts:
            sends.append(Send(self.names.alerts, alert["store_id"].encode(), serde.encode(alert)))
            ALERTS_FIRED.labels(alert["kind"], alert["state"]).inc()
        EMITTED.labels(self.names.alerts).inc(len(alerts))

    def _dead_letter(self, raw: Raw, stage: str, reason: str) -> Send:
        DEAD_LETTERS.labels(raw.topic).inc()
        letter = DeadLetter(raw.topic, raw.partition, raw.offset, raw.key, raw.value, stage, reason)
        record = dead_letter_record(letter, "streams", self.names.dlq(raw.topic))
        return Send(record.topic, record.key, record.value, record.headers)

    def process_peers(self, records: Iterable[Raw]) -> list[Send]:
        """Messages of the peer topic: store-hour summaries and end-of-replay flush markers."""
        sends: list[Send] = []
        for raw in records:
            group = (raw.key or b"").decode()
            message = json.loads(raw.value or b"{}")
            if "flush_from" in message:
                state = self.peers.state(group)
                flushed = set(state.get("flushed", [])) | {int(message["flush_from"])}
                state["flushed"] = sorted(flushed)
                self.peers.groups[group] = state
                if len(flushed) >= self.partition_count:
                    self._emit_alerts(self.peers.flush(group), sends)
                continue
            self._emit_alerts(self.peers.apply(group, message), sends)
        return sends
