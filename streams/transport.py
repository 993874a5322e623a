"""Faust's aiokafka transport: a cheaper hand-off of each fetched record to the streams, and commits that
never run ahead of processing.

**The rule** (at-least-once): never commit an offset whose record has not been processed and whose effects
(table changelog writes, output records, dead letters) have not been handed to the broker and acknowledged.
Faust 0.15 breaks it in several places, each fixed below and each measured losing records when a busy worker
was stopped (issue 12; tests/streams/test_restart_busy.py):

- ``Stream.take_events`` acknowledged its batch in a ``finally``, also when the agent was cancelled or
  raised in the middle of it: :class:`Stream` acknowledges a batch only when the agent asks for the next.
- ``ProducerBuffer.flush`` (run before each commit) gave up after 0.1 s, leaving table changelog writes
  queued behind committed offsets: :class:`Producer` flushes every record queued before the commit began.
- ``getmany`` dropped records fetched for a partition that was not active (paused for recovery) while the
  fetch position had moved past them: :meth:`Consumer.getmany` seeks back to them (never forward).
- a gap of offsets not handed over was marked processed: :meth:`Consumer._gap_confirmed` reads the
  partition again first and accepts only a gap seen twice at the same place (compaction, transaction markers).
- a hand-off cancelled by a rebalance moved the read offset past its record: it is read again; so is one that
  finished while a rebalance began (:meth:`Consumer._stale`).
- the stream *skips* a message of an ended generation, or one it takes while a rebalance stopped the flow, and
  then acknowledges it all the same: the skipped copy's mark let a commit pass the copy read again after the
  rebalance before it was processed, and a stop then lost it. :meth:`Consumer.ack` refuses such a message.
- ``_new_offset`` committed past one missing offset right after the committed one (it took Kafka's committed
  offset, the next to process, for the last processed): :meth:`Consumer._new_offset` does not.
- seeks ran in the agents' thread while aiokafka runs in its own: a fetch response handled at the same moment
  moved the position past the seek, and the partition stalled; :meth:`Consumer._seek` seeks in the consumer's
  thread.
- after a seek the read offset meant the *next* offset, elsewhere the last one handed over (one record
  could slip); partitions without a committed offset were left where the fetcher had read ahead.

Faust's fetcher hands every record over through ``Service.wait_first(callback(message),
suspend_flow.wait())``, which creates four tasks and an ``asyncio.wait`` per record: about a third of a
worker's CPU. Here the callback is first run inline; almost always it finishes without suspending (the
stream's queue has room, flow is not suspended, the producer buffer is not full) and nothing else is
needed. Only when it suspends does the record take Faust's path, with the callback resumed exactly where
it stopped, so a rebalance (``suspend_flow``) still cancels a blocked hand-off (which is then read again).

With batches the worker must also bound what it reads ahead of its agents (issue 16: a backlog's replay held
most of the backlog in memory): :meth:`Consumer._wait_for_room` and :meth:`ConsumerThread._fetch_records`.

Selected with ``broker_consumer`` / ``broker_producer`` = ``broker_urls(bootstrap, SCHEME)`` and
``Stream=Stream`` (streams/app.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator, Callable, Collection, Coroutine, Generator, Iterable, Sequence
from typing import Any, cast

import faust
from aiokafka.consumer.fetcher import FetchResult
from faust.exceptions import NotReady
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer
from faust.types import TP
from faust.types.tuples import ConsumerMessage, ack_lock
from faust.utils.functional import consecutive_numbers
from mode import Seconds, want_seconds
from mode.utils.aiter import aiter
from mode.utils.futures import notify

from streams.processor import RecordBatch

SCHEME = "tillflow+kafka"
FAUST_VERSION = "0.15.3"
"""The faust-streaming release whose consumer internals this module follows (pinned in pyproject.toml)."""

_BATCHED = "_tillflow_batched_topics"


def broker_urls(bootstrap: str, scheme: str = "kafka") -> str:
    """Faust's broker setting for a ``host:port,host:port`` bootstrap list, with the transport's scheme."""
    return ";".join(f"{scheme}://{host}" for host in bootstrap.split(","))


def batch_topics(app: Any, topics: Iterable[str], max_records: int = 2000, max_in_flight: int | None = None) -> None:
    """Have this transport hand the records of ``topics`` (one agent's co-partitioned inputs) to the agents a
    fetched batch at a time: the records of partition n of all of them, fetched together, make one batch (of
    at most ``max_records``), interleaved one by one in turn as Faust's scheduler would deliver them.

    At most ``max_in_flight`` records of the group (default four batches) are handed over and not yet
    acknowledged at any time: the drain loop waits for the agents before handing over more (see
    :meth:`Consumer._wait_for_room`)."""
    groups: dict[str, tuple[int, int, int]] = getattr(app, _BATCHED, {})
    group = len({g for g, *_ in groups.values()})
    bound = max_in_flight if max_in_flight is not None else 4 * max_records
    groups.update({topic: (group, max_records, max(bound, max_records)) for topic in topics})
    setattr(app, _BATCHED, groups)


def batched_topics(app: Any) -> dict[str, tuple[int, int, int]]:
    """Topic -> (group, most records per batch, most records in flight) for the topics named with
    :func:`batch_topics`."""
    return dict(getattr(app, _BATCHED, {}))


def interleave(parts: list[list[Any]]) -> tuple[list[int], list[Any]]:
    """(index of the part, item) of each item, taking one item of each part in turn (slice assignments: no
    Python loop per item)."""
    owners: list[int] = []
    items: list[Any] = []
    live = [(k, part) for k, part in enumerate(parts) if part]
    done = 0
    while live:
        rows = min(len(part) - done for _, part in live)
        width = len(live)
        block: list[Any] = [None] * (rows * width)
        block_owners: list[int] = [0] * (rows * width)
        for column, (k, part) in enumerate(live):
            block[column::width] = part[done : done + rows]
            block_owners[column::width] = [k] * rows
        items += block
        owners += block_owners
        done += rows
        live = [(k, part) for k, part in live if len(part) > done]
    return owners, items


def record_batches(parts: list[tuple[TP, list[Any]]], max_records: int) -> list[RecordBatch]:
    """aiokafka records of the same partition number of co-partitioned topics as batches to hand over."""
    partition = parts[0][0].partition
    owners, records = interleave([recs for _, recs in parts])
    names = [tp.topic for tp, _ in parts]
    out = []
    for start in range(0, len(records), max_records):
        chunk = records[start : start + max_records]
        out.append(
            RecordBatch(
                partition,
                [names[k] for k in owners[start : start + max_records]],
                [r.offset for r in chunk],
                [r.key for r in chunk],
                [r.value for r in chunk],
            )
        )
    return out


class BatchMessage(ConsumerMessage):  # type: ignore[misc]
    """One Faust message standing for a :class:`RecordBatch`: its partition (and so its table changelog
    partition) is the batch's, its topic and offset those of the batch's last record (the conductor routes it
    by that topic: every agent of the group subscribes to all its topics); key and value are None (nothing is
    decoded); :attr:`spans` holds each topic's range of offsets in the batch, acknowledged as one."""

    __slots__ = ("batch", "spans")

    def __init__(self, batch: RecordBatch, tps: dict[str, TP], timestamp: float, generation_id: int | None) -> None:
        tp = tps[batch.topics[-1]]
        super().__init__(
            tp.topic, tp.partition, batch.offsets[-1], timestamp, 0, None, None, None, None, 0, 0, tp,
            generation_id=generation_id,
        )  # fmt: skip
        self.batch = batch
        self.spans: dict[TP, tuple[int, int]] = {tps[t]: span for t, span in batch.spans().items()}


def acked_range(first: int, last: int, committed: int | None) -> range:
    """Offsets an acknowledged batch marks as processed in one partition: all it spans from ``first`` to
    ``last``, from the committed offset (the next one to process) on.

    Offsets missing inside the span (compaction, transaction markers) are included: nothing else will ever
    carry them, and leaving them out would stop every later commit of the partition.
    """
    return range(first if committed is None else max(first, committed), last + 1)


def _in_thread(fun: Callable[..., None]) -> Callable[..., Coroutine[Any, Any, None]]:
    """``fun`` as a coroutine function, for mode's ``call_thread``."""

    async def call(*args: Any) -> None:
        fun(*args)

    return call


class _Resume:
    """Awaitable that continues a coroutine which already yielded ``first`` (a future) to its caller."""

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, None, Any]:
        coro, yielded = self.coro, self.first
        while True:
            error: BaseException | None = None
            try:
                yield yielded
            except BaseException as exc:  # cancellation while blocked: deliver it to the callback
                error = exc
            try:
                yielded = coro.send(None) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value


class _HandOver:
    """A hand-off that suspended; ``done`` once the record reached its streams."""

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro, self.first, self.done = coro, first, False

    async def run(self) -> None:
        await _Resume(self.coro, self.first)
        self.done = True


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):  # type: ignore[misc]
    async def _fetch_records(
        self, consumer: Any, active_partitions: Any, timeout: float | None = None, max_records: int | None = None
    ) -> dict[Any, list[Any]]:
        """Faust's, decoding at most the bound of records in flight of each partition's group per poll (the
        largest bound for a topic not batched); the rest stays in aiokafka's fetch buffer, compressed.

        Faust's poll returned every record aiokafka had fetched, all decoded at once: a worker catching up on a
        backlog got hundreds of thousands of records per poll (586,608, the whole three-day replay of 200
        stores, in its first poll on the local broker; issue 16), and its memory followed the backlog.
        aiokafka's own ``max_records`` bounds a poll, not a partition: it drains the first partition before
        the others, and co-partitioned tickets and counts would no longer be read side by side.
        """
        batched = batched_topics(self.consumer.app)
        if not batched or max_records is not None:
            return cast(
                dict[Any, list[Any]], await super()._fetch_records(consumer, active_partitions, timeout, max_records)
            )
        largest = max(bound for _, _, bound in batched.values())
        # wait for records as Faust's poll does, decoding one; then each partition up to its bound
        records = cast(dict[Any, list[Any]], await super()._fetch_records(consumer, active_partitions, timeout, 1))
        if not records:
            return records
        for tp, fetched in list(consumer._fetcher._records.items()):
            if (active_partitions and tp not in active_partitions) or not isinstance(fetched, FetchResult):
                continue  # a fetch error is left for the next poll to raise, as aiokafka does
            room = batched.get(tp.topic, (0, 0, largest))[2] - len(records.get(tp, ()))
            if room > 0:
                for got_tp, got in (await super()._fetch_records(consumer, {tp}, 0, room)).items():
                    records.setdefault(got_tp, []).extend(got)
        return records


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - runs inside every worker test
        # faust.transport.consumer.Consumer._drain_messages (faust-streaming 0.15), hand-off changed.
        if batched_topics(self.app):
            await self._drain_batches(fetcher)
            return
        callback = cast(Callable[[Any], Coroutine[Any, Any, Any]], self.callback)
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every, num_since_yield = 100, 0
        with self._draining():
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                epoch = self._seek_epoch
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                reseeking: set[Any] = set()
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await asyncio.sleep(0)
                            num_since_yield = 0
                        if tp in reseeking:
                            continue  # read again from the start of its gap
                        offset = message.offset
                        if self._seeks_since(epoch):  # this fetch may predate the seek: read it again after it
                            await self._read_again(tp, offset, "fetched while seeking")
                            reseeking.add(tp)
                            continue
                        r_offset = get_read_offset(tp)  # the last offset handed over (see perform_seek)
                        if r_offset is not None and offset <= r_offset:
                            self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                            continue
                        if r_offset is not None and offset > r_offset + 1 and acks_enabled_for(message.topic):
                            if not await self._gap_confirmed(tp, r_offset + 1, offset):
                                reseeking.add(tp)
                                continue
                            await self._add_gap(tp, r_offset + 1, offset - 1)  # Faust's marked ``offset`` too
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        if not await self._hand_over(callback, message):  # cancelled by a rebalance or a stop
                            await self._read_again(tp, offset, "not handed over (a rebalance or a stop)")
                            reseeking.add(tp)
                            continue
                        if self._stale(message):
                            # queued while a rebalance began: the stream skips it and its ack is refused
                            await self._read_again(tp, offset, "handed over while a rebalance began")
                            reseeking.add(tp)
                            continue
                        if self._seeks_since(epoch):
                            await self._read_again(tp, offset, "fetched or handed over while seeking")
                            reseeking.add(tp)
                            continue
                        set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)

    @contextlib.contextmanager
    def _draining(self) -> Generator[None, None, None]:
        """How both drain loops end, as Faust's ``_drain_messages`` ends: the broker stopping the consumer, or a
        cancellation, while the app stops ends the loop quietly; anything else is logged and raised; the
        fetching flag is cleared in every case."""
        try:
            yield
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, callback: Callable[[Any], Coroutine[Any, Any, Any]], message: Any) -> bool:
        """Whether ``message`` reached its streams: False when a rebalance or a stop cancelled the hand-off (the
        caller reads it again)."""
        coro = callback(message)
        try:
            first = coro.send(None)
        except StopIteration:
            return True  # handed over without suspending: the usual case
        hand_over = _HandOver(coro, first)
        await self.wait_first(hand_over.run(), self.suspend_flow.wait())
        return hand_over.done

    async def _drain_batches(self, fetcher: Any) -> None:  # pragma: no cover - runs inside every worker test
        """The drain loop with the topics of :func:`batch_topics` handed over a fetched batch at a time (one
        :class:`BatchMessage` per partition number of each group); other topics (changelogs: recovery,
        standbys) one record at a time as in :meth:`_drain_messages`. Same rules: nothing is marked read that
        was not handed over, and whatever was fetched and not handed over is read again."""
        callback = cast(Callable[[Any], Coroutine[Any, Any, Any]], self.callback)
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        acks_enabled_for = self.app.topics.acks_enabled_for
        to_message = self._to_message
        batched = batched_topics(self.app)
        with self._draining():
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                epoch = self._seek_epoch
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if not records or self.should_stop:
                    unset_flag(CONSUMER_FETCHING)
                    continue
                if not self.flow_active:  # as Faust's getmany: flow stopped while fetching, seek back
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                    unset_flag(CONSUMER_FETCHING)
                    continue
                generation_id = self.app.consumer_generation_id

                def stopped(generation_id: Any = generation_id, epoch: int = epoch) -> bool:
                    return (
                        not self.flow_active
                        or not self.app.flow_control.is_active()
                        or self.app.consumer_generation_id != generation_id
                        or self._seeks_since(epoch)
                    )

                dropped: dict[Any, int] = {}
                groups: dict[tuple[int, int], list[tuple[TP, list[Any]]]] = {}
                for tp, tp_records in records.items():
                    if stopped() or (active is not None and tp not in active and tp not in self._buffered_partitions):
                        dropped.setdefault(tp, tp_records[0].offset)
                        continue
                    r_offset = get_read_offset(tp)  # the last offset handed over (see perform_seek)
                    if r_offset is not None and tp_records[0].offset <= r_offset:
                        tp_records = [r for r in tp_records if r.offset > r_offset]
                        if not tp_records:
                            continue
                    first = tp_records[0].offset
                    if r_offset is not None and first > r_offset + 1 and acks_enabled_for(tp.topic):
                        if not await self._gap_confirmed(tp, r_offset + 1, first):
                            continue  # read again from the start of its gap
                        await self._add_gap(tp, r_offset + 1, first - 1)
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    batching = batched.get(tp.topic)
                    if batching is not None:
                        groups.setdefault((batching[0], tp.partition), []).append((tp, tp_records))
                        continue
                    for record in tp_records:  # a changelog (or another topic): one record at a time
                        if stopped():
                            dropped.setdefault(tp, record.offset)
                            break
                        offset = record.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is not None and offset > r_offset + 1 and acks_enabled_for(tp.topic):
                            if not await self._gap_confirmed(tp, r_offset + 1, offset):
                                break
                            await self._add_gap(tp, r_offset + 1, offset - 1)
                        if not await self._hand_over(callback, to_message(tp, record)) or stopped():
                            await self._read_again(tp, offset, "not handed over (a rebalance or a stop)")
                            break
                        set_read_offset(tp, offset)
                for (group, _), parts in groups.items():
                    tps = {tp.topic: tp for tp, _ in parts}
                    stamp = max((recs[-1].timestamp or 0) for _, recs in parts) / 1000.0
                    _, max_records, max_in_flight = batched[parts[0][0].topic]
                    for batch in record_batches(parts, max_records):
                        if not stopped():
                            await self._wait_for_room(group, len(batch), max_in_flight, stopped)
                        if stopped():
                            for topic, (first, _) in batch.spans().items():
                                dropped.setdefault(tps[topic], first)
                            continue
                        message = BatchMessage(batch, tps, stamp, generation_id)
                        if not await self._hand_over(callback, message) or stopped():
                            # cancelled, or queued for a generation that ended meanwhile (the stream skips it
                            # and its ack is refused): every partition of the group is read again from its
                            # first record not handed over (the later batches of this fetch are not handed over)
                            for tp, recs in parts:
                                last = get_read_offset(tp)
                                first = last + 1 if last is not None else recs[0].offset
                                await self._read_again(tp, first, "not handed over (a rebalance or a stop)")
                            break
                        for tp, (_, last) in message.spans.items():
                            set_read_offset(tp, last)
                        if not message.acked:
                            with ack_lock:
                                self._handed().add(message)
                for tp, first in dropped.items():
                    await self._read_again(tp, first, "fetched while not active or while seeking")
                unset_flag(CONSUMER_FETCHING)

    _acks_seen: asyncio.Event | None = None
    _handed_batches: weakref.WeakSet[BatchMessage] | None = None

    def _ack_event(self) -> asyncio.Event:
        if self._acks_seen is None:
            self._acks_seen = asyncio.Event()
        return self._acks_seen

    def _handed(self) -> weakref.WeakSet[BatchMessage]:
        """Batches the drain loop handed over and no stream acknowledged yet. Faust's ``_unacked_messages`` holds
        a message only once a stream took it from its queue, not while it waits there."""
        if self._handed_batches is None:
            self._handed_batches = weakref.WeakSet()
        return self._handed_batches

    def in_flight(self, group: int) -> int:
        """Records of the batched group ``group`` handed over to the agents (queued in their streams or being
        processed) and not yet acknowledged, in the current consumer generation (a message of an ended one is
        skipped by its stream, never processed)."""
        batched = batched_topics(self.app)
        generation = self.app.consumer_generation_id
        with ack_lock:
            held = list(self._handed())
        return sum(
            len(m.batch)
            for m in held
            if not m.acked and m.generation_id == generation and batched.get(m.topic, (None,))[0] == group
        )

    async def _wait_for_room(self, group: int, size: int, max_in_flight: int, stopped: Callable[[], bool]) -> None:
        """Wait until a batch of ``size`` records of ``group`` fits in ``max_in_flight`` records handed over and
        not acknowledged (or nothing is in flight, or the flow stopped: the caller then reads the batch again).

        Without it the drain loop handed over every batch as fast as aiokafka fetched them: the streams'
        queue holds 4,096 *events* (``stream_buffer_maxsize``), here 4,096 batches of up to 2,000 records, so
        a worker catching up on a backlog held most of the backlog in memory at once (307,694 records queued
        10 s into a two-day replay of 200 stores; issue 16), and its memory grew with the backlog's length.
        """
        seen = self._ack_event()
        while not stopped():
            in_flight = self.in_flight(group)
            if not in_flight or in_flight + size <= max_in_flight:
                return
            seen.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(seen.wait(), timeout=0.5)

    async def getmany(self, timeout: float) -> AsyncGenerator[tuple[Any, Any], None]:
        """faust.transport.consumer.Consumer.getmany (faust-streaming 0.15), without losing records.

        Faust drops the fetched records of a partition that is not active when they are handed over
        (paused for recovery, revoked, flow stopped), but the fetcher's position has moved past them: they
        were never read again (a restarted worker sat with records after its committed offset, issue 12).
        Here each partition whose records were dropped is sought back to the first of them.
        """
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        dropped: dict[Any, int] = {}
        if self.flow_active:
            records_it = self.scheduler.iterate(records)
            for tp, record in records_it:
                if not self.flow_active or self.app.consumer_generation_id != generation_id:
                    dropped.setdefault(tp, record.offset)
                    for tp_left, record_left in records_it:
                        dropped.setdefault(tp_left, record_left.offset)
                    break
                if active_partitions is None or tp in active_partitions or tp in self._buffered_partitions:
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    yield tp, self._to_message(tp, record)
                else:
                    dropped.setdefault(tp, record.offset)
            for tp, first in dropped.items():
                await self._read_again(tp, first, "fetched while not active")
        else:
            self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
            try:
                await self.perform_seek()
            except Exception as ex:
                self.log.warning(f"exception performing seek when flow not active {ex}")

    async def _read_again(self, tp: Any, first: int, why: str) -> None:
        """Seek ``tp`` back to ``first`` so its records are fetched and handed over again; never forward: a
        rebalance meanwhile may have sought it back further (to the committed offset)."""
        await self._seek_idle().wait()  # the read offset a seek in progress leaves is the one to go back from
        if tp not in self.assignment():
            return
        last = self._read_offset.get(tp)
        start = last + 1 if last is not None else (self._committed_offset.get(tp) or 0)
        target = min(first, start)
        self.log.info("%s: %d.. %s; reading again from %d", tp, first, why, target)
        await self.seek(tp, target)

    def _stale(self, message: Any) -> bool:
        """Whether ``message`` belongs to a consumer generation that ended, or arrives while a rebalance
        stopped the flow: Faust's stream skips such a message without processing it."""
        app = self.app
        return (
            message.generation_id != app.consumer_generation_id
            or not self.flow_active
            or not app.flow_control.is_active()
        )

    def ack(self, message: Any) -> bool:
        """Faust's ``Consumer.ack``, refusing a message of an ended generation or one acknowledged while a
        rebalance stopped the flow.

        Faust's stream *skips* such a message (it is never given to the agent) and then acknowledges it all
        the same, so its offset was marked processed. The partition is read again from its committed offset
        after the rebalance, and the skipped copy's mark let the next commit pass the copy read again before
        it was processed: a stop at that moment lost it (issue 12). A refused message is always read again:
        every rebalance ends with a seek to the committed offsets, and a hand-off that straddled one is read
        again by the drain loop.
        """
        if self._acks_seen is not None:
            self._acks_seen.set()  # room for the drain loop's next batch (_wait_for_room)
        if self._stale(message) and self.app.topics.acks_enabled_for(message.topic):
            with ack_lock:
                self._unacked_messages.discard(message)
                self._handed().discard(message)
            return False
        spans: dict[TP, tuple[int, int]] | None = getattr(message, "spans", None)
        if spans is None:
            return bool(super().ack(message))
        with ack_lock:  # a BatchMessage: every offset of each of its ranges
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
            self._handed().discard(message)
            try:
                marked = 0
                for tp, (first, last) in spans.items():
                    if not self.app.topics.acks_enabled_for(tp.topic):
                        continue
                    acked_index = self._acked_index[tp]
                    offsets = [o for o in acked_range(first, last, self._committed_offset[tp]) if o not in acked_index]
                    acked_index.update(offsets)
                    self._acked[tp].extend(offsets)
                    marked += len(offsets)
                self._n_acked += marked
                return marked > 0
            finally:
                notify(self._waiting_for_ack)

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        """Faust's ``Consumer._add_gap`` (faust-streaming 0.15.3): offsets ``offset_from``..``offset_to`` are
        absent from the log and count as processed.

        Faust's keeps only the gap's offsets above the committed one (``committed + 1``, as if the committed
        offset were the last one processed; Kafka's is the next one to process): a gap that began at the
        committed offset kept that offset unprocessed for good, and the partition's commits stopped there.
        """
        committed = self._committed_offset[tp]
        if committed is not None:
            offset_from = max(offset_from, committed)
        if offset_from <= offset_to:
            gaps = self._gap[tp]
            gaps.addi(offset_from, offset_to + 1)
            await asyncio.sleep(0)
            gaps.merge_overlaps()

    def _new_offset(self, tp: Any) -> int | None:
        """Faust's ``Consumer._new_offset`` (faust-streaming 0.15.3): the offset to commit for ``tp``, from
        its acknowledged offsets and gaps; None when there is nothing new to commit.

        Faust's tolerates one missing offset right after the committed one (``min(acked) - committed > 1``,
        as if the committed offset were the last one processed; Kafka's is the next one to process): with
        the committed offset at 100 and 101 acknowledged but not 100, it committed 102, and record 100 was
        never processed. Here the first acknowledged offset must be the committed one.
        """
        acked = self._acked[tp]
        if not acked:
            return None
        max_offset = max(acked)
        gap_for_tp = self._gap[tp]
        if gap_for_tp:
            candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
            if candidates:
                stuff_to_add: list[int] = []
                for entry in candidates:
                    stuff_to_add.extend(range(entry.begin, entry.end))
                new_max_offset = max(stuff_to_add[-1], max_offset + 1)
                acked.extend(stuff_to_add)
                gap_for_tp.chop(0, new_max_offset)
        acked.sort()
        committed = self._committed_offset[tp]
        if committed and acked[0] > committed:
            return None  # the committed offset's record is not acknowledged yet
        batch = next(consecutive_numbers(acked))
        acked[: len(batch)] = []
        self._acked_index[tp].difference_update(batch)
        return int(batch[-1]) + 1

    _gaps_seen: dict[Any, tuple[int, int]]

    async def _gap_confirmed(self, tp: Any, first_missing: int, offset: int) -> bool:
        """Whether offsets ``first_missing``..``offset - 1`` of ``tp`` are really absent from the log.

        Faust marks such a gap as processed, for offsets that compaction removed or that transaction
        markers hold. But the fetcher also returns records from ahead of a seek (read ahead before a
        restart's seek to the committed offsets): their gap is records never handed over, and marking it
        processed committed them unread (issue 12: thousands of records lost after a busy worker's stop).
        So the first time a gap shows, the partition is read again from its start; a gap seen again at the
        same place is real.
        """
        seen = self.__dict__.setdefault("_gaps_seen", {})
        if seen.get(tp) == (first_missing, offset):
            del seen[tp]
            return True
        seen[tp] = (first_missing, offset)
        self.log.info(
            "%s: offsets %d..%d not handed over; reading again from %d", tp, first_missing, offset - 1, first_missing
        )
        await self.seek(tp, first_missing)
        return False

    async def perform_seek(self) -> None:
        """Faust's, with the read offset meaning the same after a seek as after a record: the last offset
        handed over (Faust stores the *next* one after a seek, so a first record one past it went unnoticed)."""
        async with self._seeking():
            await super().perform_seek()
            for tp, offset in list(self._read_offset.items()):
                self._read_offset[tp] = offset - 1 if offset else None

    # Seeks from outside the drain loop (Faust's recovery, the watchdog's rewind) and the drain loop.
    # Faust's perform_seek asks the broker for each partition's committed offset and seeks it in turn, and only
    # then sets the read offsets: the drain loop, running meanwhile (the flow is active at the end of a
    # recovery), fetched a partition already sought back and dropped its records as read (the old read
    # offset was ahead), or handed them over and then had its read offset reset behind aiokafka's position.
    # Either way those records were never fetched again: a partition with nothing new to read stalled with its
    # read offset one below its committed offset and aiokafka's position at its end (the stall of
    # test_restart_busy, issue 16). So the drain loop reads again whatever it fetched or handed over while
    # such a seek ran (:meth:`_seeks_since`), once the seek is done.
    _seek_epoch = 0
    _seeks_running = 0
    _seeks_done: asyncio.Event | None = None

    def _seek_idle(self) -> asyncio.Event:
        if self._seeks_done is None:
            self._seeks_done = asyncio.Event()
            self._seeks_done.set()
        return self._seeks_done

    @contextlib.asynccontextmanager
    async def _seeking(self) -> AsyncGenerator[None, None]:
        idle = self._seek_idle()
        self._seeks_running += 1
        idle.clear()
        try:
            yield
        finally:
            self._seeks_running -= 1
            self._seek_epoch += 1
            if not self._seeks_running:
                idle.set()

    def _seeks_since(self, epoch: int) -> bool:
        """Whether a seek from outside the drain loop ran (or runs) since ``epoch`` was taken."""
        return self._seeks_running > 0 or self._seek_epoch != epoch

    async def seek(self, partition: Any, offset: int) -> None:
        await super().seek(partition, offset)
        self._read_offset[ensure_TP(partition)] = offset - 1 if offset else None

    async def _seek(self, partition: Any, offset: int) -> None:
        """aiokafka's ``seek``, run in the consumer's own thread.

        Faust calls it from the agents' thread while aiokafka processes fetch responses in its own event loop:
        a fetch response handled at the same moment moved the position on past the seek (to the partition's
        end), so the records from the seek on were never fetched again while the read offset said they would
        be: the partition's commits stopped for good (a stall seen in test_restart_busy: read offset 336,
        committed 341, aiokafka's position at the end, 682). If the thread does not answer (stopping), the seek
        is made as Faust made it.
        """
        thread = self._thread
        try:
            await asyncio.wait_for(thread.call_thread(_in_thread(thread.seek), partition, offset), timeout=10.0)
        except TimeoutError:
            thread.seek(partition, offset)

    async def seek_to_committed(self) -> Any:
        """Seek every assigned partition to its committed offset; an input partition without one (or at 0)
        to its beginning.

        aiokafka seeks only to committed offsets above 0 and leaves other partitions where the fetcher is.
        Records the fetcher read ahead while the flow was stopped (startup, recovery, a rebalance) are
        dropped by Faust, which then seeks back to the committed offsets: without a commit, nothing moved
        the position back, and those records were skipped until the next restart (a fresh worker sat idle
        with nothing committed; issue 12's stalls).
        """
        committed = await super().seek_to_committed()
        changelogs = self.app.tables.changelog_topics
        fresh = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
        if fresh:
            await self._thread.call_thread(self._thread._ensure_consumer().seek_to_beginning, *fresh)
        return committed

    async def rewind(self, tp: Any) -> None:
        """Read ``tp`` again from its committed offset: the watchdog's safety net for a partition whose commits
        stopped although records wait (streams/agents.py).

        The fixes above close every way of losing a hand-off that was found, but test_restart_busy still showed
        (rarely, after several restarts) a partition whose records after the committed offset were handed over
        and never acknowledged, or a read offset behind the committed one with aiokafka's position at the end:
        nothing would ever read them again. Nothing is done while the agents still hold a message of ``tp``
        (a slow batch, not a lost one). Records read twice are absorbed by the dedupe ids of the hour state.
        """
        held = (m for m in list(self._unacked_messages) if m.tp == tp or tp in getattr(m, "spans", ()))
        if tp not in self.assignment() or any(held):
            return
        committed = self._committed_offset.get(tp) or 0
        self.log.warning("%s: stalled; reading it again from its committed offset %d", tp, committed)
        async with self._seeking():
            await self.seek(tp, committed)

    def uncommitted(self, topics: Collection[str]) -> dict[Any, tuple[int, int]]:
        """Per assigned partition of ``topics`` whose high watermark is known: (committed offset, records
        after it)."""
        out: dict[Any, tuple[int, int]] = {}
        for tp in self.assignment():
            high = self.highwater(tp) if tp.topic in topics else None
            if high is not None:
                committed = int(self._committed_offset.get(tp) or 0)
                out[tp] = (committed, max(int(high) - committed, 0))
        return out

    async def input_lag(self, topics: Collection[str]) -> dict[Any, int]:
        """Records not yet handed to the streams, per assigned partition of ``topics``.

        High watermark minus the next offset to hand over (the one after the last handed-over record, or the
        fetch position before any); partitions whose high watermark is not known yet are left out.
        """
        lags: dict[Any, int] = {}
        for tp in self.assignment():
            if tp.topic not in topics:
                continue
            high = self.highwater(tp)
            if high is None:
                continue
            read = self._read_offset.get(tp)
            following = read + 1 if read is not None else await self.position(tp)
            if following is not None:
                lags[tp] = max(int(high) - int(following), 0)
        return lags


class Stream(faust.Stream):  # type: ignore[misc]
    async def take_events(self, max_: int, within: Seconds) -> AsyncGenerator[Sequence[Any], None]:
        """Batches of up to ``max_`` records, or what arrived within ``within`` seconds (as Faust's, which counts
        events: here a :class:`BatchMessage`'s event counts its records).

        Unlike Faust's, a batch is acknowledged only when the agent comes back for the next one: never when
        the agent stopped, was cancelled or raised while it held the batch (the module docstring's rule).
        """
        events: list[Any] = []
        taken = 0
        buffer_full = asyncio.Event()
        buffer_consumed = asyncio.Event()
        timeout = want_seconds(within) if within else None
        stream_enable_acks: bool = self.enable_acks
        buffer_consuming: asyncio.Future[Any] | None = None
        channel_it = aiter(self.channel)

        async def add_to_buffer(value: Any) -> Any:
            try:
                nonlocal buffer_consuming, taken
                if buffer_consuming is not None:
                    try:
                        await buffer_consuming
                    finally:
                        buffer_consuming = None
                event = self.current_event
                if event is None:
                    raise RuntimeError("Take buffer found current_event is None")
                events.append(event)
                batch = getattr(event.message, "batch", None)
                taken += 1 if batch is None else len(batch)
                if taken >= max_:
                    buffer_full.set()
                    buffer_consumed.clear()
                    await self.wait(buffer_consumed)  # type: ignore[arg-type]
            except asyncio.CancelledError:  # pragma: no cover
                raise
            except Exception as exc:
                self.log.exception("Error adding to take buffer: %r", exc)
                await self.crash(exc)
            return value

        self.enable_acks = False  # acknowledged here, after the agent is done with them
        self.add_processor(add_to_buffer)
        self._enable_passive(cast(Any, channel_it))
        try:
            while not self.should_stop:
                await self.wait_for_stopped(buffer_full, timeout=timeout)  # type: ignore[arg-type]
                if not events:
                    continue
                buffer_consuming = self.loop.create_future()
                batch = list(events)
                events.clear()
                taken = 0
                finished = False
                try:
                    yield batch
                    finished = True  # the agent asked for the next batch: this one is processed
                finally:
                    if finished:
                        for event in batch:
                            await self.ack(event)
                    notify(buffer_consuming)
                    buffer_full.clear()
                    buffer_consumed.set()
        finally:
            self.enable_acks = stream_enable_acks
            self._processors.remove(add_to_buffer)


class _Buffer(ProducerBuffer):  # type: ignore[misc]
    """Faust's producer buffer, counting the message it is publishing (no longer queued, not yet sent).

    At shutdown the Kafka producer stops before this buffer is drained. Faust's buffer then crashed the whole
    worker (exit 1 on a plain SIGTERM) trying to send into the stopped producer, or raised while stopping.
    Records left unsent at that point are safe to leave: the consumer commits only after a flush that sent
    every record queued before it (the commit rule above), so their inputs are read again by the next worker."""

    in_flight = 0
    left_unsent = 0
    queued_total = 0
    """Records ever put in the buffer."""
    finished_total = 0
    """Records taken from the buffer (in order) and handed to the Kafka producer, or left unsent at a stop."""

    def put(self, fut: Any) -> None:
        self.queued_total += 1
        super().put(fut)

    def _stopping(self) -> bool:
        producer = getattr(self.app, "producer", None)
        return bool(self.should_stop or (producer is not None and producer.should_stop))

    async def _send_pending(self, fut: Any) -> None:
        self.in_flight += 1
        try:
            await super()._send_pending(fut)
        except NotReady:
            if not self._stopping():
                raise
            self.left_unsent += 1  # the producer stopped under it: its input was never committed
        finally:
            self.in_flight -= 1
            self.finished_total += 1

    async def on_stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # Faust's: "Cannot flush: Producer not Running"
            await self.flush()
        left = self.size + self.left_unsent
        if left:
            self.log.warning(
                "stopped with %d records not sent; their inputs were not committed and are read again on restart",
                left,
            )


class Producer(faust_aiokafka.Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        buffer = _Buffer(loop=self.loop, beacon=self.beacon)
        buffer.app = self.app
        self.buffer = buffer  # before on_start, which starts it

    async def flush(self) -> None:
        """Every record queued before this call (table changelog writes included) sent and acknowledged; the
        consumer calls this before each commit, after it took the offsets to commit, so every acknowledged
        batch's writes are among them. Raises when the producer stopped with records of those not sent.

        Records queued meanwhile are not waited for: under a backlog the agents queue changelog writes without
        pause, and waiting until the buffer was empty held the commit for tens of seconds (7,681 queued), the
        watchdog took the partitions for stalled and read them again (issue 16, a three-day replay at load 5).
        The buffer sends in the order records were queued (one task), so a count marks them."""
        buffer = cast(_Buffer, self.buffer)
        mark = buffer.queued_total
        while buffer.finished_total < mark:
            if buffer.state != "running":
                raise RuntimeError(f"producer stopped with {mark - buffer.finished_total} records not sent")
            buffer.message_sent.clear()
            try:
                await asyncio.wait_for(buffer.message_sent.wait(), timeout=0.1)
            except TimeoutError:
                continue
        if buffer.left_unsent:
            raise RuntimeError(f"producer stopped with {buffer.left_unsent} records not sent")
        if self._producer is not None:
            await self._producer.flush()
        for transaction_producer in self._transaction_producers.values():
            await transaction_producer.flush()


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer


TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")
