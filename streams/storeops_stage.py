"""The store-operations stage of the streams app: Kafka records in, ``storeops.hourly`` and alerts out.

:class:`OpsProcessor` is free of Faust (decode Avro, dead-letter what cannot be used, run the
:class:`streams.storeops.OpsEngine`, encode outputs); :func:`define_ops_agent` adds one agent to the app
that reads tickets, camera counts, staff shifts and the app's own ``conversion.hourly`` records. All four
topics are keyed by store with the same partition count, so partition n of each holds the same stores and
the stage's tables (``ops_hours``, ``ops_stores``) live in changelog partition n.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from prometheus_client import Counter

from schemas.catalogue import Catalogue
from schemas.serde import DecodeError, PlainDecoder, TopicSerde
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS, STAFF_SHIFTS, STOREOPS_HOURLY
from streams.processor import Raw, RecordBatch, Send
from streams.storeops import CONVERSION, FRAME, SHIFT, TICKET, OpsConfig, OpsEngine
from streams.topics import TopicNames

log = logging.getLogger(__name__)
OPS_EVENTS = Counter("tillflow_storeops_events_total", "Records read by the store-operations stage.", ["topic"])
OPS_EMITTED = Counter("tillflow_storeops_emitted_total", "Store-operations records emitted.", ["grain"])
OPS_ALERTS = Counter("tillflow_storeops_alerts_total", "UNDERSTAFFED and QUEUE_LONG records.", ["kind", "state"])
OPS_REJECTED = Counter(
    "tillflow_storeops_skipped_total",
    "Tickets, counts or conversions the store-operations stage could not place.",
    ["topic"],
)
OPS_DEAD_LETTERS = Counter(
    "tillflow_storeops_dead_letters_total", "Records the store-operations stage dead-lettered.", ["topic"]
)


@dataclass(frozen=True)
class OpsTopicNames:
    tickets: str
    counts: str
    shifts: str
    conversion: str
    storeops: str
    alerts: str

    @classmethod
    def of(cls, names: TopicNames) -> OpsTopicNames:
        prefix = names.tickets.removesuffix(POS_TICKETS)
        return cls(
            tickets=names.tickets,
            counts=names.counts,
            shifts=prefix + STAFF_SHIFTS,
            conversion=names.conversion,
            storeops=prefix + STOREOPS_HOURLY,
            alerts=names.alerts,
        )

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.tickets, self.counts, self.shifts, self.conversion)


class OpsProcessor:
    """Batches of one input partition to records to send; state lives in the two mappings given."""

    def __init__(
        self,
        catalogue: Catalogue,
        config: OpsConfig,
        names: OpsTopicNames,
        serdes: dict[str, TopicSerde],
        hours: MutableMapping[str, Any],
        stores: MutableMapping[str, Any],
    ) -> None:
        self.names = names
        self.serdes = serdes
        self.engine = OpsEngine(catalogue, config, hours, stores)
        self._kinds = {
            names.tickets: (TICKET, POS_TICKETS),
            names.counts: (FRAME, CAMERA_COUNTS),
            names.shifts: (SHIFT, STAFF_SHIFTS),
            names.conversion: (CONVERSION, CONVERSION_HOURLY),
        }
        self._decoders = {
            t: PlainDecoder(serdes[t]) for t in (POS_TICKETS, CAMERA_COUNTS, STAFF_SHIFTS, CONVERSION_HOURLY)
        }
        self._queue_cams = catalogue.queue_cameras()
        self._queue_stores = {c.store_id.encode() for c in catalogue.cameras if c.id in self._queue_cams}

    def process(self, records: Iterable[Raw], now_ms: int) -> list[Send]:
        raws = list(records)
        return self.process_batch(RecordBatch.of(raws[0].partition if raws else 0, raws), now_ms)

    def process_batch(self, records: RecordBatch, now_ms: int) -> list[Send]:
        """A batch of one partition's inputs (the hours agent's batches, shifts, conversion records), in order;
        counters move once per batch."""
        sends: list[Send] = []
        batch: list[tuple[str, dict[str, Any]]] = []
        sources: list[int] = []
        kinds, decoders, queue_stores = self._kinds, self._decoders, self._queue_stores
        decoded: dict[str, int] = {}
        for i, (topic, key, value) in enumerate(zip(records.topics, records.keys, records.values, strict=True)):
            known = kinds.get(topic)
            if known is None:
                continue  # a tick: the agent takes them with the hours agent's batches (define_ops_agent)
            kind, real = known
            if kind == FRAME and key not in queue_stores:
                continue  # only queue cameras matter here: frames of stores without one are not even decoded
            try:
                record = decoders[real].decode(value)
            except DecodeError as exc:
                if kind in (SHIFT,):  # the other inputs are dead-lettered by the hours stage already
                    sends.append(self._dead_letter(records.raw(i), f"undecodable: {exc}"))
                continue
            decoded[topic] = decoded.get(topic, 0) + 1
            if kind == FRAME and record["camera_id"] not in self._queue_cams:
                continue
            batch.append((kind, record))
            sources.append(i)
        for topic, count in decoded.items():
            OPS_EVENTS.labels(topic).inc(count)
        if not batch:
            return sends
        out = self.engine.apply(batch, now_ms)
        for index, reason in out.rejects:
            source = records.raw(sources[index])
            if batch[index][0] == SHIFT:
                sends.append(self._dead_letter(source, reason))
            else:  # tickets and counts are kept by the hours stage; here the reason is counted and logged
                OPS_REJECTED.labels(source.topic).inc()
                log.warning("store operations skipped %s[%d]@%d: %s", source.topic, source.partition,
                            source.offset, reason)  # fmt: skip
        ops = self.serdes[STOREOPS_HOURLY]
        for rec in out.records:
            sends.append(Send(self.names.storeops, rec["store_id"].encode(), ops.encode(rec)))
            OPS_EMITTED.labels(rec["grain"]).inc()
        alerts = self.serdes[ALERTS]
        for alert in out.alerts:
            sends.append(Send(self.names.alerts, alert["store_id"].encode(), alerts.encode(alert)))
            OPS_ALERTS.labels(alert["kind"], alert["state"]).inc()
        return sends

    def _dead_letter(self, raw: Raw, reason: str) -> Send:
        OPS_DEAD_LETTERS.labels(raw.topic).inc()
        headers = {"error": reason, "topic": raw.topic, "partition": str(raw.partition), "offset": str(raw.offset)}
        return Send(f"{raw.topic}.dlq", raw.key, raw.value or b"", headers)


def _ops(processor: OpsProcessor, now_ms: int, group: list[Any]) -> list[Send]:
    from streams.agents import joined

    return processor.process_batch(joined(group), now_ms)


def define_ops_agent(
    app: Any,
    catalogue: Catalogue,
    names: TopicNames,
    registry: Any,
    partitions: int,
    batch_size: int,
    send: Any,
    config: OpsConfig | None = None,
    batch_within_s: float = 0.2,
) -> dict[str, Any]:
    """Add the ``storeops`` agent and its tables to ``app``; returns {"storeops": agent, "ops_processor": ...}."""
    from streams.agents import process_parts
    from streams.tables import Staged

    ops_names = OpsTopicNames.of(names)
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    app.topic(ops_names.shifts, partitions=partitions, **raw)
    app.topic(ops_names.storeops, partitions=partitions, **raw)
    hours = app.Table("ops_hours", partitions=partitions, key_type=str, help="Store-operations hours.")
    stores = app.Table("ops_stores", partitions=partitions, key_type=str, help="Shifts, queue runs, history.")
    serdes = {
        t: TopicSerde(registry, t)
        for t in (POS_TICKETS, CAMERA_COUNTS, STAFF_SHIFTS, CONVERSION_HOURLY, STOREOPS_HOURLY, ALERTS)
    }
    held = [Staged(hours), Staged(stores)]  # written once the batch's outputs were delivered (streams.tables)
    processor = OpsProcessor(catalogue, config or OpsConfig(), ops_names, serdes, *held)

    # subscribed to the ticks as well: with the batched transport the hours agent's inputs (tickets, counts and
    # ticks of one partition) come as one batch routed by the topic of its last record, maybe a tick
    @app.agent(app.topic(*ops_names.inputs, names.ticks, **raw), name="storeops")
    async def storeops(stream: Any) -> None:
        """Zones and categories, staffing and queues per store-hour; UNDERSTAFFED and QUEUE_LONG."""
        async for events in stream.take_events(batch_size, within=batch_within_s):
            await process_parts(app, events, partial(_ops, processor, int(time.time() * 1000)), held, send)

    return {"storeops": storeops, "ops_processor": processor}
