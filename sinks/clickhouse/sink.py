"""`tillflow sink clickhouse`: Kafka topics to ClickHouse tables in batches, at least once, idempotently.

The loop is: consume, and when the batch is big or old enough, decode it a topic at a time into columns
(sinks/clickhouse/mapping.py: no object per record; bad records become dead letters with their reason), insert
each table's columns at once, send the dead letters, then commit the batch's offsets. Nothing is committed before
ClickHouse accepted the rows and the dead-letter topic acknowledged the rejects, so a crash replays the batch;
the tables are ReplacingMergeTrees keyed by record identity, so a replay leaves the same rows.

The insert runs in a writer thread while the loop consumes and decodes the next batch (ClickHouse's own work,
in-process chDB included, does not hold Python's lock). One batch is in flight at most: the next one is prepared
beside it, then waits until the one in flight is written and committed, so batches are committed in order and
at most two batches are held in memory. A first try that fails is handled in the loop's thread exactly as before
(split for bad rows, retried with the partitions paused for a server that is away).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from schemas.serde import DecodeError
from sinks.clickhouse.mapping import COLUMNS, TOPIC_TABLES, LocalClock, Mapped, MappingError, columns_for
from sinks.metrics import BATCH_ROWS, CONSUMER_LAG, ERRORS, FLUSH_SECONDS, LAST_FLUSH, RECORDS
from tillflow.dlq import DeadLetter, short_reason
from tillflow.errors import SinkError
from tillflow.kafka import commit_written
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


class RetryableWriteError(SinkError):
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


@dataclass
class Batch:
    """A consumed batch, decoded and mapped: what to insert, what to dead-letter, what to commit."""

    messages: list[Message]
    mapped: Mapped
    """Columns per table, owners as indices into ``messages``."""
    dead: list[DeadLetter]
    """Records refused before ClickHouse saw them (decode, validate, map)."""
    offsets: list[tuple[str, int, int]]
    """(topic, partition, next offset) to commit once the batch is written."""
    per_topic: dict[str, int]


def dead_letter(msg: Message, stage: str, reason: str) -> DeadLetter:
    return DeadLetter(
        str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0), msg.key(), msg.value(), stage, reason
    )


def merge(parts: Sequence[Mapped]) -> Mapped:
    """One :class:`Mapped` from several (different topics of one batch), tables in insert order; the parts'
    lists are reused, so the parts are not to be used after."""
    out = Mapped()
    for table in TABLE_ORDER:
        for part in parts:
            cols = part.columns.get(table)
            if not cols or not part.owners[table]:
                continue
            if table not in out.columns:  # the first part's lists are taken over and extended
                out.columns[table] = cols
                out.owners[table] = part.owners[table]
            else:
                for into, col in zip(out.columns[table], cols, strict=True):
                    into.extend(col)
                out.owners[table].extend(part.owners[table])
    return out


@dataclass
class InFlight:
    """A batch whose first insert runs in the writer thread: committed once :meth:`ClickHouseSink._settle` saw it
    written."""

    batch: Batch
    pending: list[Message]
    started: float
    insert: Future[None]


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
        decoders: Mapping[str, Callable[[bytes | None], dict[str, Any]]],
        timezones: Mapping[str, str],
        send_dead_letters: Callable[[list[DeadLetter]], None],
        *,
        batch_rows: int = 5000,
        batch_seconds: float = 2.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        lag_interval: float = 5.0,
        logical_topics: Mapping[str, str] | None = None,
        overlap: bool = True,
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
        self._pending: list[Message] = []
        self.clock = LocalClock()
        self._held: list[Message] = []
        self._batch_started: float | None = None
        self._last_lag = 0.0
        self.assigned: set[tuple[str, int]] = set()
        """Partitions this instance owns now (kept by the rebalance callbacks; readable from other threads)."""
        self.overlap = overlap
        """Insert in a writer thread while the next batch is consumed and decoded (False: all in one thread)."""
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: InFlight | None = None
        self._retrying = False
        """A batch waits for ClickHouse (the rebalance callbacks may run inside that wait's polls)."""

    # ---- per batch -----------------------------------------------------

    def accept(self, msgs: Sequence[Message]) -> None:
        """Keep consumed messages for the next batch (decoded and mapped when it is written)."""
        if not msgs:
            return
        self._pending.extend(msgs)
        self.stats.consumed += len(msgs)
        if self._batch_started is None:
            self._batch_started = time.monotonic()

    def due(self) -> bool:
        if not self._pending or self._batch_started is None:
            return False
        return len(self._pending) >= self.batch_rows or time.monotonic() - self._batch_started >= self.batch_seconds

    def prepare(self, messages: list[Message]) -> Batch:
        """Decode each topic's records, map them to columns a topic at a time, and note what is refused."""
        decoded: dict[str, tuple[list[dict[str, Any]], list[int]]] = {}
        top: dict[tuple[str, int], int] = {}
        dead: list[DeadLetter] = []
        per_topic: dict[str, int] = {}
        last_topic: str | None = None
        decode: Callable[[bytes | None], dict[str, Any]] | None = None
        records: list[dict[str, Any]] = []
        origin: list[int] = []
        for i, msg in enumerate(cast(list[Any], messages)):  # confluent-kafka types these as optional
            topic = msg.topic()
            if topic != last_topic:  # consumed messages come in runs of one partition
                last_topic, decode = topic, self.decoders[topic]
                records, origin = decoded.setdefault(topic, ([], []))
            key = (topic, msg.partition())
            offset = msg.offset()
            if offset > top.get(key, -1):
                top[key] = offset
            try:
                records.append(decode(msg.value()))  # type: ignore[misc]
            except DecodeError as exc:
                dead.append(dead_letter(msg, "decode", str(exc)))
                per_topic[topic] = per_topic.get(topic, 0) + 1
                continue
            origin.append(i)
        parts: list[Mapped] = []
        for topic, (records, origin) in decoded.items():
            per_topic[topic] = per_topic.get(topic, 0) + len(records)
            if not records:
                continue
            try:
                mapped = columns_for(self.logical_topics.get(topic, topic), records, self.timezones, self.clock)
            except MappingError as exc:
                dead += [dead_letter(messages[i], "map", str(exc)) for i in origin]
                continue
            for j, (stage, reason) in sorted(mapped.rejects.items()):
                dead.append(dead_letter(messages[origin[j]], stage, reason))
            for table, owners in mapped.owners.items():
                mapped.owners[table] = [origin[j] for j in owners]
            parts.append(mapped)
        offsets = [(t, p, o + 1) for (t, p), o in sorted(top.items())]
        return Batch(messages, merge(parts), dead, offsets, per_topic)

    # ---- writing ---------------------------------------------------------

    def _insert(self, mapped: Mapped) -> None:
        for table in TABLE_ORDER:
            cols = mapped.columns.get(table)
            if cols and mapped.owners[table]:
                self.client.insert(table, cols, column_names=COLUMNS[table], column_oriented=True)

    def write(self, mapped: Mapped, messages: Sequence[Message]) -> list[DeadLetter]:
        """Write ``mapped``; returns dead letters for records ClickHouse refused.

        A refused batch is split in halves by record until the refused records are alone. Raises
        :class:`RetryableWriteError` when the failure is not the rows' fault.
        """
        if not any(mapped.owners.values()):
            return []
        try:
            self._insert(mapped)
            return []
        except Exception as exc:
            return self._refused(mapped, messages, exc)

    def _refused(self, mapped: Mapped, messages: Sequence[Message], exc: Exception) -> list[DeadLetter]:
        """ClickHouse refused ``mapped`` with ``exc``: raise if it is not the rows' fault, else split it."""
        if not is_data_error(exc):
            raise RetryableWriteError(short_reason(exc)) from exc
        owners = sorted(set().union(*mapped.owners.values()))
        if len(owners) == 1:
            ERRORS.labels(SINK, "rejected").inc()
            return [dead_letter(messages[owners[0]], "clickhouse", short_reason(exc))]
        mid = len(owners) // 2
        first, second = mapped.take(set(owners[:mid])), mapped.take(set(owners[mid:]))
        return self.write(first, messages) + self.write(second, messages)

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
        """Write and commit everything consumed so far: the batch in flight, then the pending one.

        With ``retry`` False a failed write raises :class:`RetryableWriteError` and its batch (with all that
        was consumed after it) stays pending.
        """
        self._start_write(retry)
        self._settle(retry)

    def _start_write(self, retry: bool = True) -> None:
        """Map the pending batch while the one in flight is inserted, commit that one, then start this one.

        Without :attr:`overlap` the batch is written and committed before this returns.
        """
        if not self._pending:
            self._settle(retry)
            return
        started = time.monotonic()
        pending = self._pending[:]
        batch = self.prepare(pending)
        self._settle(retry)  # raises with this batch still pending
        if len(self._pending) != len(pending) or any(a is not b for a, b in zip(self._pending, pending, strict=True)):
            # a rebalance during the settled batch's wait for ClickHouse took partitions: map what is left
            pending = self._pending[:]
            if not pending:
                return
            batch = self.prepare(pending)
        self._pending, self._batch_started = [], None
        if not self.overlap:
            self._finish(batch, pending, started, self._write_until_accepted(batch, pending, retry))
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse-insert")
        self._inflight = InFlight(batch, pending, started, self._writer.submit(self._insert, batch.mapped))

    def _settle(self, retry: bool = True) -> None:
        """Wait for the batch in flight; write it here when its first try failed; then commit it."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        try:
            inflight.insert.result()
            rejected: list[DeadLetter] = []
        except Exception as exc:
            rejected = self._write_until_accepted(inflight.batch, inflight.pending, retry, failed=exc)
        self._finish(inflight.batch, inflight.pending, inflight.started, rejected)

    def _write_until_accepted(
        self, batch: Batch, pending: list[Message], retry: bool, failed: Exception | None = None
    ) -> list[DeadLetter]:
        """Write ``batch`` (whose first try raised ``failed``, if given), retrying while ClickHouse is away;
        returns the records it refused. On giving up, ``pending`` goes back in front of what is pending."""
        delays = backoff_delays(self.retry_initial, self.retry_max)
        self._retrying = True
        try:
            return self._retry(batch, pending, retry, failed, delays)
        finally:
            self._retrying = False

    def _retry(
        self, batch: Batch, pending: list[Message], retry: bool, failed: Exception | None, delays: Iterator[float]
    ) -> list[DeadLetter]:
        while True:
            try:
                if failed is not None:
                    exc, failed = failed, None
                    return self._refused(batch.mapped, batch.messages, exc)
                return self.write(batch.mapped, batch.messages)
            except RetryableWriteError as exc:
                ERRORS.labels(SINK, "retryable").inc()
                self.stats.retries += 1
                if not retry:
                    self._pending = pending + self._pending
                    raise
                delay = next(delays)
                log.warning("ClickHouse refused a batch of %d records (%s); retry in %.1fs", len(pending), exc, delay)
                try:
                    self._hold(delay)
                except Interrupted:
                    self._pending = pending + self._pending  # not committed: replayed by the partitions' next owner
                    raise

    def _finish(self, batch: Batch, pending: list[Message], started: float, rejected: list[DeadLetter]) -> None:
        """The batch is written: send its dead letters, commit its offsets, count it."""
        dead = batch.dead + rejected
        if dead:
            for letter in dead:
                log.error("dead letter %s", letter.describe())
            self.send_dead_letters(dead)
        commit_written(self.consumer, batch.offsets, "a written batch")
        refused: dict[str, int] = {}
        for letter in dead:
            refused[letter.topic] = refused.get(letter.topic, 0) + 1
        for topic, count in batch.per_topic.items():
            if count - refused.get(topic, 0):
                RECORDS.labels(SINK, topic, "written").inc(count - refused.get(topic, 0))
            if refused.get(topic):
                RECORDS.labels(SINK, topic, "dead_lettered").inc(refused[topic])
        self.stats.dead_lettered += len(dead)
        self.stats.written += len(pending) - len(dead)
        self.stats.batches += 1
        BATCH_ROWS.labels(SINK).observe(len(pending))
        FLUSH_SECONDS.labels(SINK).observe(time.monotonic() - started)
        LAST_FLUSH.labels(SINK).set(time.time())

    def close(self) -> None:
        """Stop the writer thread (after the insert in flight, if any; its batch stays uncommitted)."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    # ---- the loop --------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("assigned %s", sorted(self.assigned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self.assigned -= revoked
        try:
            if self._retrying:  # called from the polls of a batch's wait for ClickHouse: that wait goes on
                raise RetryableWriteError("a batch is waiting for ClickHouse")
            self.flush(retry=False)  # one attempt: the partitions' next owner replays what is not committed
        except Exception as exc:
            log.warning("could not flush before losing partitions (%s); they will be replayed", exc)
            self._pending = [m for m in self._pending if (m.topic(), m.partition()) not in revoked]
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
            msgs = self.consumer.consume(num_messages=min(5000, self.batch_rows), timeout=timeout)
        good = [m for m in msgs if m.error() is None]
        consumed = len(good)
        if consumed < len(msgs):
            for msg in msgs:
                err = msg.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err)
        room = self.batch_rows - len(self._pending)
        while len(good) >= room:  # a batch is never larger than batch_rows
            self.accept(good[:room])
            good = good[room:]
            self._start_write()
            room = self.batch_rows
        self.accept(good)
        if self.due():
            self._start_write()
        elif self._inflight is not None and self._inflight.insert.done():
            self._settle()  # commit it now rather than with the next batch
        self.update_lag()
        return consumed

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
            self.close()
            self.consumer.close()
        return self.stats
