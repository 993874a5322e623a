"""`tillflow sink clickhouse`: Kafka topics to ClickHouse tables in batches, at least once, idempotently.

The loop is: consume, decode and map each record to rows (bad records become dead letters), and when the batch
is big or old enough, write it, send its dead letters, then commit its offsets. Nothing is committed before
ClickHouse accepted the rows and the dead-letter topic acknowledged the rejects, so a crash replays the batch;
the tables are ReplacingMergeTrees keyed by record identity, so a replay leaves the same rows.

When ClickHouse is unreachable the same batch is retried with doubling waits; meanwhile the partitions are
paused (the consumer stays in its group) and nothing new is read, so batches are neither lost nor reordered.
A batch ClickHouse refuses for its data (a violated constraint, a value out of range) is split in halves until
the refused records are isolated; those go to ``<topic>.dlq`` with the server's message, the rest is written.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from pydantic import ValidationError

from schemas.models import Record
from schemas.serde import DecodeError
from sinks.clickhouse.mapping import COLUMNS, TOPIC_TABLES, MappingError, Row, rows_for
from sinks.metrics import BATCH_ROWS, CONSUMER_LAG, ERRORS, FLUSH_SECONDS, LAST_FLUSH, RECORDS
from tillflow.dlq import DeadLetter
from tillflow.retry import backoff_delays

log = logging.getLogger(__name__)

SINK = "clickhouse"
# Every table a topic maps to, in insert order (a ticket before its lines): a table missing here would be skipped.
TABLE_ORDER = tuple(table for tables in TOPIC_TABLES.values() for table in tables)

# ClickHouse error codes that blame the rows themselves: retrying cannot help, the rows go to the DLQ.
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
        469,  # VIOLATED_CONSTRAINT
    }
)
_CODE = re.compile(r"Code:\s*(\d+)")


class RetryableWriteError(RuntimeError):
    """ClickHouse could not take the batch for a reason that is not the rows' fault (down, overloaded, DDL)."""


class Interrupted(Exception):
    """Stop was requested while a batch was waiting to be retried; it stays uncommitted."""


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def is_data_error(exc: BaseException) -> bool:
    """True when the rows caused the failure (so retrying is useless), False when the server or link did."""
    from clickhouse_connect.driver.exceptions import DataError, OperationalError

    if isinstance(exc, OperationalError):
        return False
    if isinstance(exc, DataError | TypeError | ValueError | OverflowError):
        return True
    return error_code(exc) in DATA_ERROR_CODES


def short_reason(exc: BaseException) -> str:
    """One line naming what was wrong: pydantic errors as ``field: message``, others as their text."""
    if isinstance(exc, ValidationError):
        parts = []
        for item in exc.errors():
            loc = ".".join(str(p) for p in item["loc"]) or "(record)"
            parts.append(f"{loc}: {item['msg'].removeprefix('Value error, ')}")
        return f"invalid {exc.title}: " + "; ".join(parts)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if not text.startswith(("Code:", type(exc).__name__)) else text


@dataclass
class Pending:
    """One consumed record: where it came from, and its rows or why it cannot be written."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    rows: dict[str, list[Row]] = field(default_factory=dict)
    dead: DeadLetter | None = None

    def dead_letter(self, stage: str, reason: str) -> DeadLetter:
        return DeadLetter(self.topic, self.partition, self.offset, self.key, self.value, stage, reason)


def group_rows(items: Sequence[Pending]) -> list[tuple[str, list[Row]]]:
    """Rows of several records per table, in insert order (tickets before their lines)."""
    tables: dict[str, list[Row]] = {}
    for item in items:
        for table, rows in item.rows.items():
            tables.setdefault(table, []).extend(rows)
    return [(t, tables[t]) for t in TABLE_ORDER if tables.get(t)]


class Located(Protocol):
    topic: str
    partition: int
    offset: int


def commit_offsets(items: Sequence[Located]) -> list[tuple[str, int, int]]:
    """(topic, partition, next offset) per partition: one past the highest offset consumed."""
    top: dict[tuple[str, int], int] = {}
    for item in items:
        key = (item.topic, item.partition)
        top[key] = max(top.get(key, -1), item.offset)
    return [(t, p, o + 1) for (t, p), o in sorted(top.items())]


@dataclass
class SinkStats:
    consumed: int = 0
    written: int = 0
    dead_lettered: int = 0
    batches: int = 0
    retries: int = 0


class ClickHouseSink:
    """The consume-write-commit loop around a clickhouse-connect client and a confluent-kafka consumer."""

    def __init__(
        self,
        client: Any,
        consumer: Consumer,
        decoders: Mapping[str, Callable[[bytes | None], Record]],
        timezones: Mapping[str, str],
        send_dead_letters: Callable[[list[DeadLetter]], None],
        *,
        batch_rows: int = 5000,
        batch_seconds: float = 2.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        lag_interval: float = 5.0,
        logical_topics: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.consumer = consumer
        self.decoders = dict(decoders)
        self.timezones = timezones
        self.send_dead_letters = send_dead_letters
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.lag_interval = lag_interval
        self.logical_topics = dict(logical_topics or {})
        """Consumed topic name -> tillflow topic (for prefixed or renamed topics); identity by default."""
        self.stats = SinkStats()
        self.stop_event = threading.Event()
        self._pending: list[Pending] = []
        self._held: list[Message] = []
        self._batch_started: float | None = None
        self._last_lag = 0.0
        self.assigned: set[tuple[str, int]] = set()
        """Partitions this instance owns now (kept by the rebalance callbacks; readable from other threads)."""

    # ---- per record ------------------------------------------------------

    def accept(self, msg: Message) -> Pending:
        """Decode, validate and map one message; a failure marks it dead with the stage and reason."""
        topic = str(msg.topic())
        item = Pending(topic, int(msg.partition() or 0), int(msg.offset() or 0), msg.key(), msg.value())
        try:
            record = self.decoders[topic](item.value)
        except DecodeError as exc:
            item.dead = item.dead_letter("decode", str(exc))
        except (ValidationError, ValueError) as exc:
            item.dead = item.dead_letter("validate", short_reason(exc))
        else:
            try:
                item.rows = rows_for(self.logical_topics.get(topic, topic), record, self.timezones)
            except MappingError as exc:
                item.dead = item.dead_letter("map", str(exc))
        self._pending.append(item)
        self.stats.consumed += 1
        if self._batch_started is None:
            self._batch_started = time.monotonic()
        return item

    def due(self) -> bool:
        if not self._pending or self._batch_started is None:
            return False
        return len(self._pending) >= self.batch_rows or time.monotonic() - self._batch_started >= self.batch_seconds

    # ---- writing ---------------------------------------------------------

    def _insert(self, items: Sequence[Pending]) -> None:
        for table, rows in group_rows(items):
            self.client.insert(table, rows, column_names=COLUMNS[table])

    def write(self, items: Sequence[Pending]) -> list[DeadLetter]:
        """Write the rows of ``items``; returns dead letters for records ClickHouse refused.

        Raises :class:`RetryableWriteError` when the failure is not the rows' fault.
        """
        if not items:
            return []
        try:
            self._insert(items)
            return []
        except Exception as exc:
            if not is_data_error(exc):
                raise RetryableWriteError(short_reason(exc)) from exc
            if len(items) == 1:
                ERRORS.labels(SINK, "rejected").inc()
                return [items[0].dead_letter("clickhouse", short_reason(exc))]
            mid = len(items) // 2
            return self.write(items[:mid]) + self.write(items[mid:])

    def _hold(self, seconds: float) -> None:
        """Wait with the partitions paused, still polling so the consumer keeps its group membership."""
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)
        deadline = time.monotonic() + seconds
        try:
            while True:
                if self.stop_event.is_set():
                    raise Interrupted
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                msg = self.consumer.poll(min(0.2, remaining))
                if msg is not None and not msg.error():
                    self._held.append(msg)
        finally:
            if assignment:
                self.consumer.resume(assignment)

    def flush(self, retry: bool = True) -> None:
        """Write the pending batch (retrying until it is accepted), dead-letter the rejects, commit.

        With ``retry`` False a failed write raises :class:`RetryableWriteError` and the batch stays pending.
        """
        batch, self._pending, self._batch_started = self._pending, [], None
        if not batch:
            return
        started = time.monotonic()
        delays = backoff_delays(self.retry_initial, self.retry_max)
        while True:
            try:
                rejected = self.write([item for item in batch if item.dead is None])
                break
            except RetryableWriteError as exc:
                ERRORS.labels(SINK, "retryable").inc()
                self.stats.retries += 1
                if not retry:
                    self._pending = batch + self._pending
                    raise
                delay = next(delays)
                log.warning("ClickHouse refused a batch of %d records (%s); retry in %.1fs", len(batch), exc, delay)
                try:
                    self._hold(delay)
                except Interrupted:
                    self._pending = batch  # not committed: the next owner of these partitions replays them
                    raise
        rejected_at = {(d.topic, d.partition, d.offset) for d in rejected}
        dead = [item.dead for item in batch if item.dead is not None] + rejected
        if dead:
            for letter in dead:
                log.error("dead letter %s", letter.describe())
            self.send_dead_letters(dead)
        self.consumer.commit(offsets=[TopicPartition(t, p, o) for t, p, o in commit_offsets(batch)], asynchronous=False)
        for item in batch:
            refused = item.dead or (item.topic, item.partition, item.offset) in rejected_at
            outcome = "dead_lettered" if refused else "written"
            RECORDS.labels(SINK, item.topic, outcome).inc()
        self.stats.dead_lettered += len(dead)
        self.stats.written += len(batch) - len(dead)
        self.stats.batches += 1
        BATCH_ROWS.labels(SINK).observe(len(batch))
        FLUSH_SECONDS.labels(SINK).observe(time.monotonic() - started)
        LAST_FLUSH.labels(SINK).set(time.time())

    # ---- the loop --------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("assigned %s", sorted(self.assigned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self.assigned -= revoked
        try:
            self.flush(retry=False)  # one attempt: the partitions' next owner replays what is not committed
        except Exception as exc:
            log.warning("could not flush before losing partitions (%s); they will be replayed", exc)
            self._pending = [i for i in self._pending if (i.topic, i.partition) not in revoked]
            self._held = [m for m in self._held if (m.topic(), m.partition()) not in revoked]
        for tp in partitions:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(SINK, tp.topic, str(tp.partition))

    def update_lag(self) -> None:
        now = time.monotonic()
        if now - self._last_lag < self.lag_interval:
            return
        self._last_lag = now
        assignment = self.consumer.assignment()
        if not assignment:
            return
        for tp in self.consumer.position(assignment):
            try:
                low, high = self.consumer.get_watermark_offsets(tp, timeout=1.0, cached=False)
            except Exception:
                continue
            position = tp.offset if tp.offset >= 0 else low
            CONSUMER_LAG.labels(SINK, tp.topic, str(tp.partition)).set(max(0, high - position))

    def poll_once(self, timeout: float = 0.2) -> int:
        """Consume what is there (held messages first), flush when due; returns the records consumed."""
        msgs: list[Message] = self._held
        self._held = []
        if not msgs:
            msgs = self.consumer.consume(num_messages=min(1000, self.batch_rows), timeout=timeout)
        n = 0
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err)
                continue
            self.accept(msg)
            n += 1
            if len(self._pending) >= self.batch_rows:
                self.flush()
        if self.due():
            self.flush()
        self.update_lag()
        return n

    def run(self, topics: Sequence[str], idle_exit: float | None = None) -> SinkStats:
        """Consume ``topics`` until :attr:`stop_event` is set (or nothing arrived for ``idle_exit`` seconds)."""
        self.consumer.subscribe(list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
        last = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if self.poll_once():
                    last = time.monotonic()
                elif idle_exit is not None and not self._pending and time.monotonic() - last >= idle_exit:
                    break
            self.flush()
        except Interrupted:
            log.warning("stopped while ClickHouse was unavailable: %d records left uncommitted", len(self._pending))
        finally:
            self.consumer.close()
        return self.stats
