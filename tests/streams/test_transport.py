"""streams/transport.py: what may be committed, and the inline hand-off.

The worker tests (test_agents, test_integration, test_restart, test_restart_busy, the demo) run every record
through the transport; these pin its parts directly. The commit bookkeeping, on the app's real consumer (no
broker needed): a message that Faust's stream skips during a rebalance is never marked processed, and the
committed offset's own record must be acknowledged before anything is committed. The trampoline: a blocked
hand-off completes once its future does, and a cancellation (what ``wait_first`` does when a rebalance
suspends the flow) reaches the callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka.consumer.fetcher import FetchResult
from faust.exceptions import NotReady
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.app import create_app
from streams.processor import RecordBatch
from streams.transport import (
    BatchMessage,
    Consumer,
    ConsumerThread,
    _HandOver,
    batch_topics,
    batched_topics,
    record_batches,
)
from tests.support.events import demo
from tillflow.settings import Settings


@pytest.fixture
def consumer(tmp_path: Path) -> Any:
    settings = Settings(
        kafka_bootstrap="127.0.0.1:9", registry_url="http://127.0.0.1:9", topic_partitions=2, state_dir=tmp_path
    )
    sa = create_app(settings, demo(), app_id=f"t-{uuid.uuid4().hex[:8]}", store="memory://")
    sa.app.finalize()
    assert isinstance(sa.app.consumer, Consumer)
    sa.app.topics._acking_topics.add(sa.topics.names.tickets)  # as the agents' start does
    sa.app.consumer_generation_id = 3
    sa.app.flow_control.resume()  # as after a rebalance's recovery
    return SimpleNamespace(app=sa.app, consumer=sa.app.consumer, tp=TP(sa.topics.names.tickets, 0))


def _message(c: Any, offset: int, generation: int = 3) -> ConsumerMessage:
    tp = c.tp
    message = ConsumerMessage(tp.topic, 0, offset, 0.0, 0, None, None, b"", None, 0, 0, tp, generation_id=generation)
    message.incref()  # one stream got it (the conductor's hand-off)
    return message


def _ack(c: Any, message: ConsumerMessage) -> bool:
    c.consumer.track_message(message)
    return bool(message.ack(c.consumer))  # what a stream does after processing (or skipping) it


def _committable(c: Any) -> int | None:
    return c.consumer._filter_committable_offsets([c.tp]).get(c.tp)


def test_a_message_of_an_ended_generation_is_not_marked_processed(consumer: Any) -> None:
    c = consumer
    c.consumer._committed_offset[c.tp] = 100
    # 100-101 processed in generation 3; 102-103 were queued in generation 2 and Faust's stream skipped them
    # (never processed) after the rebalance; they are read again and processed later.
    assert _ack(c, _message(c, 100)) and _ack(c, _message(c, 101))
    assert not _ack(c, _message(c, 102, generation=2)) and not _ack(c, _message(c, 103, generation=2))
    assert not c.consumer._unacked_messages
    assert _committable(c) == 102  # not 104: a stop now must not lose 102 and 103
    c.consumer._committed_offset[c.tp] = 102
    assert _ack(c, _message(c, 102)) and _ack(c, _message(c, 103))  # read again, processed
    assert _committable(c) == 104


def test_a_message_acknowledged_while_a_rebalance_stopped_the_flow_is_not_marked_processed(consumer: Any) -> None:
    c = consumer
    c.consumer._committed_offset[c.tp] = 10
    c.app.flow_control.suspend()  # a rebalance began: Faust's stream skips what it takes from its queue
    assert not _ack(c, _message(c, 10))
    c.app.flow_control.resume()
    assert _committable(c) is None
    assert _ack(c, _message(c, 10))  # read again after the rebalance
    assert _committable(c) == 11


def test_nothing_is_committed_while_the_committed_offsets_own_record_is_not_acknowledged(consumer: Any) -> None:
    c = consumer
    c.consumer._committed_offset[c.tp] = 100
    assert _ack(c, _message(c, 101)) and _ack(c, _message(c, 102))
    assert _committable(c) is None  # Faust's committed 103 here: record 100 was never processed
    assert _ack(c, _message(c, 100))
    assert _committable(c) == 103


async def _callback(gate: asyncio.Future[int], trail: list[str]) -> int:
    trail.append("start")
    try:
        value = await gate
    except asyncio.CancelledError:
        trail.append("cancelled")
        raise
    trail.append("delivered")
    return value + 1


def test_a_suspended_callback_is_resumed_where_it_stopped() -> None:
    async def run() -> tuple[bool, list[str]]:
        gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        trail: list[str] = []
        coro = _callback(gate, trail)
        first = coro.send(None)  # runs inline up to the await, as the drain loop does
        assert first is gate and trail == ["start"]
        hand_over = _HandOver(coro, first)
        task = asyncio.ensure_future(hand_over.run())
        await asyncio.sleep(0)
        assert not task.done() and not hand_over.done
        gate.set_result(41)
        await task
        return hand_over.done, trail

    assert asyncio.run(run()) == (True, ["start", "delivered"])


def test_cancelling_a_blocked_hand_off_reaches_the_callback() -> None:
    async def run() -> list[str]:
        gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        trail: list[str] = []
        coro = _callback(gate, trail)
        hand_over = _HandOver(coro, coro.send(None))
        task = asyncio.ensure_future(hand_over.run())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not hand_over.done  # the drain loop reads a hand-off that did not finish again
        return trail

    assert asyncio.run(run()) == ["start", "cancelled"]


def test_a_callback_that_does_not_suspend_finishes_inline() -> None:
    async def quick() -> int:
        return 7

    coro = quick()
    with pytest.raises(StopIteration) as stop:
        coro.send(None)
    assert stop.value.value == 7


def test_a_record_the_stopping_producer_cannot_send_is_left_for_the_restart_not_a_crash(consumer: Any) -> None:
    """At SIGTERM the Kafka producer stops before its buffer drains. Faust's buffer then raised NotReady and
    crashed the worker (exit 1, seen in the chaos test); the record's input was never committed, so it is
    left to be read again. A producer that is not stopping still raises."""
    producer = consumer.app.producer
    buffer = producer.buffer

    async def run() -> tuple[int, int]:
        async def publish_message(fut: Any, wait: bool = False) -> None:
            consumer.app.producer._ensure_producer()  # what Producer.send does first: NotReady when not started

        fut = SimpleNamespace(message=SimpleNamespace(channel=SimpleNamespace(publish_message=publish_message)))
        with pytest.raises(NotReady):  # never started, not stopping: a real fault
            await buffer._send_pending(fut)
        producer._stopped.set()  # what Service.stop() does first
        await buffer._send_pending(fut)
        return buffer.left_unsent, buffer.in_flight

    assert asyncio.run(run()) == (1, 0)


def test_the_commits_flush_waits_for_the_records_queued_before_it_not_for_later_ones(
    consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer flushes the producer after taking the offsets to commit, so the changelog writes of every
    acknowledged batch were queued before the flush began. Under a backlog the agents queue writes without
    pause: a flush that waited for an empty buffer held the commit for tens of seconds and the watchdog took
    the partitions for stalled (issue 16). Three records queued, the flush begins, five more come: the flush
    ends once the three are sent, with the later ones still queued or in flight."""
    producer = consumer.app.producer
    buffer = producer.buffer
    monkeypatch.setattr(type(buffer), "state", "running")

    async def run() -> tuple[bool, int, int]:
        later = asyncio.Event()  # never set: the records queued after the flush began stay unsent

        def record(gate: asyncio.Event | None) -> Any:
            async def publish_message(fut: Any, wait: bool = False) -> None:
                if gate is not None:
                    await gate.wait()

            return SimpleNamespace(message=SimpleNamespace(channel=SimpleNamespace(publish_message=publish_message)))

        async def handle_pending() -> None:  # the buffer's own task (ProducerBuffer._handle_pending)
            while True:
                fut = await buffer.pending.get()
                await buffer._send_pending(fut)
                buffer.message_sent.set()

        for _ in range(3):
            buffer.put(record(None))
        flush = asyncio.ensure_future(producer.flush())
        await asyncio.sleep(0)
        for _ in range(5):
            buffer.put(record(later))
        sender = asyncio.ensure_future(handle_pending())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(flush), timeout=2.0)
        done = flush.done() and flush.exception() is None
        flush.cancel()
        sender.cancel()
        return done, buffer.size, buffer.in_flight

    assert asyncio.run(run()) == (True, 4, 1)


# The batched transport (streams_batched_transport): one message per fetched batch of one partition, its
# offsets acknowledged as ranges. The fixture's app is not batched; the messages are built as the drain loop does.


def _batch(c: Any, spans: dict[str, tuple[int, int]], generation: int = 3) -> BatchMessage:
    topics: list[str] = []
    offsets: list[int] = []
    for topic, (first, last) in spans.items():
        topics += [topic] * (last - first + 1)
        offsets += list(range(first, last + 1))
    batch = RecordBatch(0, topics, offsets, [None] * len(offsets), [b""] * len(offsets))
    message = BatchMessage(batch, {t: TP(t, 0) for t in spans}, 0.0, generation)
    message.incref()
    return message


def _committable_of(c: Any, tp: TP) -> int | None:
    return c.consumer._filter_committable_offsets([tp]).get(tp)


def test_a_batch_is_acknowledged_as_the_ranges_of_its_topics(consumer: Any) -> None:
    c = consumer
    counts = TP(c.app.conf.id + "-counts-not-acking", 0)  # a topic without acks (no agent) is left alone
    c.consumer._committed_offset[c.tp] = 100
    assert _ack(c, _batch(c, {c.tp.topic: (100, 149), counts.topic: (7, 9)}))
    assert _committable(c) == 150
    assert _committable_of(c, counts) is None
    assert c.consumer._n_acked == 50


def test_a_batch_half_processed_when_a_rebalance_comes_is_read_again_not_committed(consumer: Any) -> None:
    """One fetch, two batches: the agent finished the first, then a rebalance began (a new generation) while
    it held the second. Faust's stream skips a message of an ended generation and acknowledges it all the
    same; its range must not be marked processed, or the next commit passes records never processed."""
    c = consumer
    c.consumer._committed_offset[c.tp] = 100
    first, second = _batch(c, {c.tp.topic: (100, 149)}), _batch(c, {c.tp.topic: (150, 199)})
    assert _ack(c, first)
    c.app.consumer_generation_id = 4  # the rebalance
    assert not _ack(c, second)
    assert not c.consumer._unacked_messages  # nothing left waiting: the stop that follows is not held up
    assert _committable(c) == 150
    c.consumer._committed_offset[c.tp] = 150
    assert _ack(c, _batch(c, {c.tp.topic: (150, 199)}, generation=4))  # read again after the rebalance
    assert _committable(c) == 200


def test_a_batch_read_again_from_below_the_committed_offset_commits_from_it(consumer: Any) -> None:
    """A batch read again after a restart's seek may begin below the offset committed meanwhile: only its
    offsets from the committed one on are marked (the ones below were committed already)."""
    c = consumer
    c.consumer._committed_offset[c.tp] = 120
    assert _ack(c, _batch(c, {c.tp.topic: (100, 139)}))
    assert c.consumer._acked[c.tp] == list(range(120, 140))
    assert _committable(c) == 140


def test_a_gap_that_begins_at_the_committed_offset_is_committed_past(consumer: Any) -> None:
    """Offsets 100-101 are absent from the log (compaction, transaction markers) and 100 is the committed
    offset, the next to process. Faust's ``_add_gap`` kept only the gap's offsets above it (committed + 1), so
    100 was never marked and the partition's commits stopped there for good."""
    c = consumer

    async def gap() -> None:
        await c.consumer._add_gap(c.tp, 100, 101)

    c.consumer._committed_offset[c.tp] = 100
    asyncio.run(gap())
    assert _ack(c, _batch(c, {c.tp.topic: (102, 110)}))
    assert _committable(c) == 111


def test_batches_interleave_co_partitioned_topics_and_keep_their_spans() -> None:
    tickets, counts = TP("t", 1), TP("c", 1)
    rec = [SimpleNamespace(offset=o, key=None, value=b"") for o in range(10, 15)]
    frames = [SimpleNamespace(offset=o, key=None, value=b"") for o in range(3, 5)]
    batches = record_batches([(tickets, rec), (counts, frames)], max_records=4)
    assert [b.topics for b in batches] == [["t", "c", "t", "c"], ["t", "t", "t"]]
    assert [b.spans() for b in batches] == [{"t": (10, 11), "c": (3, 4)}, {"t": (12, 14)}]
    assert all(b.partition == 1 for b in batches)


def test_the_transport_follows_the_installed_faust() -> None:
    from importlib.metadata import version

    from streams.transport import FAUST_VERSION

    assert version("faust-streaming") == FAUST_VERSION  # re-read the copied consumer internals before upgrading


def test_a_fetch_that_overlaps_a_seek_is_read_again(consumer: Any) -> None:
    """Faust's perform_seek seeks each partition in turn and sets the read offsets only at its end; what the
    drain loop fetched meanwhile must be read again once it is done (the stall of issue 16)."""
    c = consumer.consumer

    async def run() -> list[bool]:
        epoch = c._seek_epoch
        seen = [c._seeks_since(epoch)]
        async with c._seeking():
            seen.append(c._seeks_since(epoch))  # a seek in progress
            assert not c._seek_idle().is_set()
        seen.append(c._seeks_since(epoch))  # done since the fetch began
        seen.append(c._seeks_since(c._seek_epoch))  # a fetch begun after it
        assert c._seek_idle().is_set()
        return seen

    assert asyncio.run(run()) == [False, True, True, False]


def test_the_drain_loop_hands_over_at_most_the_bound_of_records_not_yet_acknowledged(consumer: Any) -> None:
    """A worker catching up on a backlog: aiokafka fetches far faster than the agents process. The drain loop
    must wait for the agents' acknowledgements instead of queueing every fetched batch (Faust's stream queue
    counts events, here batches of up to 2,000 records: a replay held most of its backlog in memory; issue 16).
    One fetch of 2,000 records, batches of 100, at most 300 in flight: three batches go, then the loop waits;
    each acknowledged batch lets one more through, and acknowledging everything hands over the whole fetch."""
    c = consumer
    batch_topics(c.app, [c.tp.topic], max_records=100, max_in_flight=300)
    group = batched_topics(c.app)[c.tp.topic][0]
    records = [SimpleNamespace(offset=o, key=None, value=b"", timestamp=0) for o in range(2000)]
    fetches = [({c.tp: records}, {c.tp})]
    handed: list[BatchMessage] = []

    async def fetch(timeout: float) -> tuple[Any, Any]:
        if fetches:
            return fetches.pop()
        await asyncio.sleep(0.01)
        return {}, {c.tp}

    async def conductor(message: BatchMessage) -> None:  # into the agent's queue (Faust tracks it once taken)
        message.incref()
        handed.append(message)

    c.consumer._wait_next_records = fetch
    c.consumer.highwater = lambda tp: None
    c.consumer.callback = conductor
    fetcher = SimpleNamespace(_stopped=asyncio.Event())

    async def run() -> list[int]:
        drain = asyncio.ensure_future(c.consumer._drain_batches(fetcher))
        seen = []
        await asyncio.sleep(0.2)
        seen.append(sum(len(m.batch) for m in handed))
        assert c.consumer.in_flight(group) == seen[-1]
        assert c.consumer.ack(handed[0])  # the agent finished its first batch
        await asyncio.sleep(0.2)
        seen.append(sum(len(m.batch) for m in handed))
        while len(handed) < 20:  # the agents keep up from here on
            for m in list(handed):
                c.consumer.ack(m)
            await asyncio.sleep(0.01)
        seen.append(sum(len(m.batch) for m in handed))
        assert c.consumer.ack(handed[-1])
        fetcher._stopped.set()
        await asyncio.wait_for(drain, timeout=5)
        return seen

    assert asyncio.run(run()) == [300, 400, 2000]
    assert c.consumer._read_offset[c.tp] == 1999
    assert _committable(c) == 2000  # committed offset None: everything acknowledged is committable


class _Fetched(FetchResult):  # type: ignore[misc]
    """aiokafka's fetch buffer of one partition: records decoded only when a poll takes them."""

    def __init__(self, offsets: range) -> None:
        self.left = list(offsets)

    def getall(self, max_records: int | None = None) -> list[int]:
        n = len(self.left) if max_records is None else max_records
        taken, self.left = self.left[:n], self.left[n:]
        return taken

    def has_more(self) -> bool:
        return bool(self.left)


class _Fetcher:
    """aiokafka's ``Fetcher.fetched_records`` (0.14): partitions drained in turn, ``max_records`` for the poll."""

    _closed = False

    def __init__(self, buffered: dict[TP, Any]) -> None:
        self._records = buffered
        self._subscriptions = SimpleNamespace(fetch_context=contextlib.nullcontext)

    async def fetched_records(self, partitions: Any, timeout: float = 0, max_records: int | None = None) -> Any:
        drained: dict[TP, list[int]] = {}
        for tp in list(self._records):
            if partitions and tp not in partitions:
                continue
            fetched = self._records[tp]
            if not isinstance(fetched, FetchResult):
                if drained:
                    return drained
                del self._records[tp]
                raise fetched
            taken = fetched.getall(max_records)
            if not fetched.has_more():
                del self._records[tp]
            if taken:
                drained[tp] = taken
            if max_records is not None:
                max_records -= len(taken)
                if max_records == 0:
                    break
        return drained


def test_a_poll_decodes_at_most_the_bound_of_records_of_each_partition(consumer: Any) -> None:
    """A worker catching up on a backlog: aiokafka had fetched 5,000 tickets and 5,000 counts of partition 0.
    Faust's poll decoded all 10,000 at once (on the local broker a backlog's first poll held the whole replay;
    issue 16); aiokafka's own ``max_records`` would drain the tickets before any count. Each poll takes at most
    the bound (here 300) of each partition, side by side; a partition whose fetch failed is left for the next
    poll to raise, as aiokafka does."""
    c = consumer
    batch_topics(c.app, [c.tp.topic, "counts"], max_records=100, max_in_flight=300)
    counts, failed = TP("counts", 0), TP("counts", 1)
    fetcher = _Fetcher({c.tp: _Fetched(range(5000)), failed: KeyError("fetch failed"), counts: _Fetched(range(5000))})
    aiokafka_consumer = SimpleNamespace(_closed=False, _fetcher=fetcher)
    thread = c.consumer._thread
    assert isinstance(thread, ConsumerThread)

    async def poll() -> dict[TP, list[int]]:
        return cast(dict[TP, list[int]], await thread._fetch_records(aiokafka_consumer, {c.tp, counts, failed}, 1.0))

    first = asyncio.run(poll())
    assert {tp: (r[0], len(r)) for tp, r in first.items()} == {c.tp: (0, 300), counts: (0, 300)}
    second = asyncio.run(poll())
    assert {tp: (r[0], len(r)) for tp, r in second.items()} == {c.tp: (300, 300), counts: (300, 300)}
    assert failed in fetcher._records  # not swallowed
