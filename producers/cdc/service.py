"""`tillflow normalize`: raw CDC topics -> ``pos.tickets``, with a consumer loop around :class:`TicketAssembler`.

Delivery is at-least-once and replay-safe: tickets go out, the broker acknowledges them, then the ticket
states are committed to SQLite (``<state_dir>/cdc/<source>/normalizer.sqlite``), then the consumer offsets
are committed, never past a record still held by a ticket that is not yet published. Run one normalizer
per source (the state file is local to it).
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from producers.cdc import metrics
from producers.cdc.embedded import ensure_raw_topics
from producers.cdc.normalize import DeadLetter, Emit, Output, TicketAssembler, TicketState
from producers.cdc.source import CdcSource
from schemas.topics import POS_TICKETS, deadletter_topic
from tillflow.errors import UnavailableError
from tillflow.kafka import commit_written, endpoints, group_member_config
from tillflow.sender import RecordSender
from tillflow.settings import Settings

log = logging.getLogger(__name__)


class SqliteStore:
    """Ticket states in SQLite; writes become durable only at :meth:`commit` (after the broker's ack)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False)  # one user at a time: the loop
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS tickets (key TEXT PRIMARY KEY, state TEXT NOT NULL)")
        self.db.commit()

    def get(self, key: str) -> TicketState | None:
        row = self.db.execute("SELECT state FROM tickets WHERE key = ?", (key,)).fetchone()
        return None if row is None else TicketState.from_json(json.loads(row[0]))

    def put(self, key: str, state: TicketState) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO tickets (key, state) VALUES (?, ?)", (key, json.dumps(state.to_json(), default=str))
        )

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.close()


class RawDecoder:
    """Raw change records: JSON (JsonConverter, with or without schemas) or Confluent-framed Avro."""

    def __init__(self, get_schema: Callable[[int], str] | None = None) -> None:
        self._get_schema = get_schema
        self._schemas: dict[int, Any] = {}

    def decode(self, data: bytes | None) -> Any:
        if data is None:
            return None
        if data[:1] == b"\x00" and len(data) >= 5:
            if self._get_schema is None:
                raise ValueError("Avro record but no schema registry configured")
            schema_id = int.from_bytes(data[1:5], "big")
            schema = self._schemas.get(schema_id)
            if schema is None:
                schema = self._schemas[schema_id] = fastavro.parse_schema(json.loads(self._get_schema(schema_id)))
            return fastavro.schemaless_reader(io.BytesIO(data[5:]), schema, None)
        return json.loads(data)


class Normalizer:
    """One source's raw topics in, PosTickets out. Call :meth:`step` in a loop, :meth:`close` at the end."""

    def __init__(
        self, settings: Settings, source: CdcSource, group_id: str | None = None, commit_interval_s: float = 0.5
    ) -> None:
        self.source = source
        self.commit_interval_s = commit_interval_s
        self._unacked = 0
        self._last_commit = time.monotonic()
        self.store = SqliteStore(settings.state_dir / "cdc" / source.name / "normalizer.sqlite")
        self.assembler = TicketAssembler(source, self.store, settings.cdc_settle_s, settings.cdc_max_wait_s)
        self.sender = RecordSender(settings)
        registry = self.sender.registry
        self.decoder = RawDecoder(lambda sid: str(registry.get_schema(sid).schema_str))
        ep = endpoints(settings)
        ensure_raw_topics(settings, [*source.raw_topics().values(), source.transaction_topic])
        self.consumer = Consumer(
            group_member_config(settings, group_id or f"tillflow-normalize-{source.name}", ep.bootstrap)
        )
        self.roles = {topic: role for role, topic in source.raw_topics().items()}
        self.consumer.subscribe([*self.roles, source.transaction_topic])
        self._consumed: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self.dlq = deadletter_topic(POS_TICKETS)
        self.published = 0
        self.dead_letters = 0

    def step(self, timeout: float = 0.2, now: float | None = None) -> int:
        """Consume one batch, publish what is ready, commit. Returns the number of records consumed."""
        messages = self.consumer.consume(500, timeout)
        now = time.monotonic() if now is None else now
        if messages:
            metrics.NORMALIZER_EVENTS.labels(self.source.name).inc(len(messages))
        outputs: list[Output] = []
        for msg in messages:
            outputs.extend(self._take(msg, now))
        outputs.extend(self.assembler.tick(now))
        self._deliver(outputs)
        metrics.PENDING.labels(self.source.name).set(self.assembler.pending_count)
        return len(messages)

    def _take(self, msg: Message, now: float) -> list[Output]:
        error = msg.error()
        if error is not None:
            if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                return []  # end of a partition; a raw topic the capture has not created yet
            raise UnavailableError(f"consumer error: {error.str()}")
        topic, partition, offset = str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0)
        self._consumed[(topic, partition)] = offset + 1
        ref = (topic, partition, offset)
        try:
            value = self.decoder.decode(msg.value())
            key = self.decoder.decode(msg.key())
        except Exception as exc:
            return [
                DeadLetter(
                    f"{topic}[{partition}]@{offset}: not a JSON or Avro change event: {exc}",
                    None,
                    {"topic": topic, "partition": partition, "offset": offset, "value": repr(msg.value())[:2000]},
                )
            ]
        if topic == self.source.transaction_topic:
            self.assembler.apply_transaction(value)
            return []
        return self.assembler.apply(self.roles[topic], value, now, key=key, ref=ref)

    def _deliver(self, outputs: list[Output], force: bool = False) -> None:
        """Send tickets and dead letters; every ``commit_interval_s`` (or ``force``) commit what was acked."""
        for out in outputs:
            if isinstance(out, Emit):
                self.sender.send(POS_TICKETS, out.ticket)
                self.published += 1
                metrics.TICKETS.labels(self.source.name, out.ticket.kind.value).inc()
            else:
                log.warning("dead letter: %s", out.reason)
                body = json.dumps(
                    {"reason": out.reason, "source": self.source.name, "ticket_id": out.ticket_id, **out.payload},
                    default=str,
                )
                self.sender.send_raw(
                    self.dlq,
                    (out.ticket_id or "").encode() or None,
                    body.encode(),
                    headers={"reason": out.reason[:1000], "source": self.source.name},
                )
                self.dead_letters += 1
                metrics.DEAD_LETTERS.labels(self.source.name).inc()
        self._unacked += len(outputs)
        if force or time.monotonic() - self._last_commit >= self.commit_interval_s:
            self._commit()

    def _commit(self) -> None:
        """Wait for the broker's acknowledgements, then commit ticket states, then consumer offsets."""
        self._last_commit = time.monotonic()
        offsets = []
        for (topic, partition), consumed in self._consumed.items():
            held = self.assembler.lowest_held(topic, partition)
            position = consumed if held is None else held
            if position > self._committed.get((topic, partition), -1):
                offsets.append(TopicPartition(topic, partition, position))
        if not self._unacked and not offsets:
            return
        self.sender.flush()  # raises if the broker did not acknowledge: nothing below happens
        self._unacked = 0
        self.store.commit()
        done = [(tp.topic, tp.partition, tp.offset) for tp in offsets]
        if done and commit_written(self.consumer, done, "normalized changes"):
            for topic, partition, offset in done:
                self._committed[(topic, partition)] = offset

    def run(self, idle_exit_s: float | None = None, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Loop until ``should_stop()``, or until nothing came and nothing was pending for ``idle_exit_s``."""
        run_all([self], idle_exit_s, should_stop)

    def close(self) -> None:
        """Commit what is acknowledged, then leave the group."""
        try:
            self._commit()
        finally:
            self.consumer.close()
            self.store.close()


def run_all(
    normalizers: list[Normalizer], idle_exit_s: float | None = None, should_stop: Callable[[], bool] = lambda: False
) -> None:
    """Step several sources' normalizers in turn (one process for a few stores) until stopped or idle."""
    idle_since = time.monotonic()
    timeout = 0.2 / max(len(normalizers), 1)
    while not should_stop():
        busy = False
        for normalizer in normalizers:
            if normalizer.step(timeout) or normalizer.assembler.pending_count:
                busy = True
        if busy:
            idle_since = time.monotonic()
        elif idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
            break
