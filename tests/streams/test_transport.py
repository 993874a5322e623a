"""streams/transport.py: batches acknowledged as ranges, and the inline hand-off.

The worker tests (test_agents, test_integration, test_restart, the demo) run every record through the
transport; these pin its parts directly. Range acks, on the app's real consumer (no broker needed for the
offset bookkeeping): what may be committed while a batch is still being processed (a rebalance then commits
exactly that), out-of-order acknowledgements, offsets missing inside a batch; a message or batch that Faust's
stream skips during a rebalance is never marked processed, and the committed offset's own record must be
acknowledged before anything is committed. The trampoline: a blocked
hand-off completes once its future does, and a cancellation (what ``wait_first`` does when a rebalance
suspends the flow) reaches the callback.
"""

from __future__ import annotations

import asyncio
import uuid
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.app import create_app
from streams.processor import RecordBatch
from streams.transport import FAUST_VERSION, BatchMessage, Consumer, _HandOver, interleave, record_batches
from tests.streams.factory import demo
from tillflow.settings import Settings


def test_the_transport_follows_the_installed_faust() -> None:
    assert version("faust-streaming") == FAUST_VERSION


@pytest.fixture
def consumer(tmp_path: Path) -> Any:
    settings = Settings(
        kafka_bootstrap="127.0.0.1:9", registry_url="http://127.0.0.1:9", topic_partitions=2, state_dir=tmp_path
    )
    sa = create_app(settings, demo(), app_id=f"t-{uuid.uuid4().hex[:8]}", store="memory://")
    sa.app.finalize()
    assert isinstance(sa.app.consumer, Consumer)
    sa.app.topics._acking_topics.update({sa.topics.names.tickets, sa.topics.names.counts})  # as the agents' start does
    sa.app.consumer_generation_id = 1
    sa.app.flow_control.resume()  # as after a rebalance's recovery
    return SimpleNamespace(
        app=sa.app, consumer=sa.app.consumer, names=sa.topics.names, tp=TP(sa.topics.names.tickets, 0)
    )


def _batch(c: Any, records: list[tuple[str, int]], generation: int = 1) -> BatchMessage:
    topics = [c.names.tickets if t == "t" else c.names.counts for t, _ in records]
    batch = RecordBatch(0, topics, [o for _, o in records], [None] * len(records), [b""] * len(records))
    message = BatchMessage(
        batch, {c.names.tickets: TP(c.names.tickets, 0), c.names.counts: TP(c.names.counts, 0)}, None, generation
    )
    c.consumer.track_message(message)
    return message


def _committable(c: Any) -> dict[str, int]:
    tps = [TP(c.names.tickets, 0), TP(c.names.counts, 0)]
    return {tp.topic: off for tp, off in c.consumer._filter_committable_offsets(tps).items()}


def test_a_batch_in_progress_holds_back_the_commit_of_its_whole_range(consumer: Any) -> None:
    c = consumer
    c.consumer._committed_offset.update({TP(c.names.tickets, 0): 100, TP(c.names.counts, 0): 40})
    done = _batch(c, [("t", 100), ("c", 40), ("t", 101), ("c", 41)])
    busy = _batch(c, [("t", 102), ("c", 42), ("t", 103), ("c", 43), ("c", 44)])
    assert done.offset == 41 and done.spans == {TP(c.names.tickets, 0): (100, 101), TP(c.names.counts, 0): (40, 41)}
    assert c.consumer.ack(done)
    # A rebalance now (the second batch half processed) commits the first batch and nothing of the second.
    assert _committable(c) == {"pos.tickets": 102, "camera.counts": 42}
    c.consumer._committed_offset.update({TP(c.names.tickets, 0): 102, TP(c.names.counts, 0): 42})
    assert set(c.consumer._unacked_messages) == {busy}
    assert _committable(c) == {}
    assert c.consumer.ack(busy) and not c.consumer.ack(busy)  # a second ack of the same batch is a no-op
    assert _committable(c) == {"pos.tickets": 104, "camera.counts": 45}
    assert not c.consumer._unacked_messages


def test_a_later_batch_acknowledged_first_commits_nothing_until_the_earlier_one_is(consumer: Any) -> None:
    c = consumer
    c.consumer._committed_offset.update({TP(c.names.tickets, 0): 10, TP(c.names.counts, 0): 10})
    first, second = _batch(c, [("t", 10), ("t", 11)]), _batch(c, [("t", 12), ("t", 13)])
    assert c.consumer.ack(second)
    assert _committable(c) == {}
    assert c.consumer.ack(first)
    assert _committable(c) == {"pos.tickets": 14}


def test_offsets_missing_inside_a_batch_do_not_stop_the_commits(consumer: Any) -> None:
    c = consumer  # offsets 21-24 are not in the topic any more (compaction, transaction markers)
    c.consumer._committed_offset.update({TP(c.names.tickets, 0): 20})
    assert c.consumer.ack(_batch(c, [("t", 20), ("t", 25), ("t", 26)]))
    assert _committable(c) == {"pos.tickets": 27}


def test_a_batch_of_an_ended_generation_is_not_marked_processed(consumer: Any) -> None:
    c = consumer
    c.consumer._committed_offset.update({TP(c.names.tickets, 0): 10})
    assert c.consumer.ack(_batch(c, [("t", 10), ("t", 11)]))
    assert not c.consumer.ack(_batch(c, [("t", 12), ("t", 13)], generation=0))  # skipped by the stream
    assert _committable(c) == {"pos.tickets": 12}


def _message(c: Any, offset: int, generation: int = 1) -> ConsumerMessage:
    tp = c.tp
    message = ConsumerMessage(tp.topic, 0, offset, 0.0, 0, None, None, b"", None, 0, 0, tp, generation_id=generation)
    message.incref()  # one stream got it (the conductor's hand-off)
    return message


def _ack(c: Any, message: ConsumerMessage) -> bool:
    c.consumer.track_message(message)
    return bool(message.ack(c.consumer))  # what a stream does after processing (or skipping) it


def _committable_tickets(c: Any) -> int | None:
    return c.consumer._filter_committable_offsets([c.tp]).get(c.tp)


def test_a_message_of_an_ended_generation_is_not_marked_processed(consumer: Any) -> None:
    c = consumer
    c.consumer._committed_offset[c.tp] = 100
    # 100-101 processed in generation 1; 102-103 were queued in generation 0 and Faust's stream skipped them
    # (never processed) after the rebalance; they are read again and processed later.
    assert _ack(c, _message(c, 100)) and _ack(c, _message(c, 101))
    assert not _ack(c, _message(c, 102, generation=0)) and not _ack(c, _message(c, 103, generation=0))
    assert not c.consumer._unacked_messages
    assert _committable_tickets(c) == 102  # not 104: a stop now must not lose 102 and 103
    c.consumer._committed_offset[c.tp] = 102
    assert _ack(c, _message(c, 102)) and _ack(c, _message(c, 103))  # read again, processed
    assert _committable_tickets(c) == 104


def test_a_message_acknowledged_while_a_rebalance_stopped_the_flow_is_not_marked_processed(consumer: Any) -> None:
    c = consumer
    c.consumer._committed_offset[c.tp] = 10
    c.app.flow_control.suspend()  # a rebalance began: Faust's stream skips what it takes from its queue
    assert not _ack(c, _message(c, 10))
    c.app.flow_control.resume()
    assert _committable_tickets(c) is None
    assert _ack(c, _message(c, 10))  # read again after the rebalance
    assert _committable_tickets(c) == 11


def test_nothing_is_committed_while_the_committed_offsets_own_record_is_not_acknowledged(consumer: Any) -> None:
    c = consumer
    c.consumer._committed_offset[c.tp] = 100
    assert _ack(c, _message(c, 101)) and _ack(c, _message(c, 102))
    assert _committable_tickets(c) is None  # Faust's committed 103 here: record 100 was never processed
    assert _ack(c, _message(c, 100))
    assert _committable_tickets(c) == 103


def test_co_partitioned_records_are_interleaved_and_cut_into_batches() -> None:
    assert interleave([[1, 2, 3], ["a"], [10, 20]]) == ([0, 1, 2, 0, 2, 0], [1, "a", 10, 2, 20, 3])
    assert interleave([[], [7, 8]]) == ([1, 1], [7, 8])

    def rec(offset: int) -> Any:
        return SimpleNamespace(offset=offset, key=b"k", value=bytes([offset]))

    parts = [(TP("t", 3), [rec(5), rec(6), rec(7)]), (TP("c", 3), [rec(50)])]
    first, second = record_batches(parts, max_records=3)
    assert (first.partition, first.topics, first.offsets) == (3, ["t", "c", "t"], [5, 50, 6])
    assert (second.topics, second.offsets, second.values) == (["t"], [7], [b"\x07"])
    assert first.spans() == {"t": (5, 6), "c": (50, 50)}


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
