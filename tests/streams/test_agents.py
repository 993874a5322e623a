"""The Faust agents with ``test_context()`` and explicit event times.

No broker here: the registry is confluent-kafka's in-process ``mock://`` client and sends are captured by
the app's send hook; the real-broker path is in test_integration.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.serde import TopicSerde
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from streams.app import StreamsApp, create_app
from streams.processor import Send
from tests.support.events import demo, frame, ms, ticket
from tillflow.settings import Settings


@pytest.fixture
def streams_app(tmp_path: Path) -> tuple[StreamsApp, list[Send]]:
    sent: list[Send] = []

    async def capture(app: Any, sends: list[Send]) -> None:
        sent.extend(sends)

    settings = Settings(
        kafka_bootstrap="127.0.0.1:9", registry_url="http://127.0.0.1:9", topic_partitions=2, state_dir=tmp_path
    )
    sa = create_app(settings, demo(), app_id=f"t-{uuid.uuid4().hex[:8]}", store="memory://", send=capture)
    mock = SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})
    for serde in sa.processor.serdes.values():
        serde.registry = mock
    sa.app.finalize()
    sa.app.flow_control.resume()
    return sa, sent


def test_the_app_keeps_its_data_under_the_state_dir(streams_app: tuple[StreamsApp, list[Send]], tmp_path: Path) -> None:
    app = streams_app[0].app
    assert Path(app.conf.datadir).parent == tmp_path / "streams"
    assert Path(app.conf.datadir).is_dir()


async def _put(agent: Any, topic: str, value: bytes, key: bytes | None, partition: int) -> None:
    # test_context names every message after the agent's channel; give it the input topic it stands for.
    original = agent.to_message

    def to_message(*args: Any, **kwargs: Any) -> Any:
        message = original(*args, **kwargs)
        message.topic = topic
        return message

    agent.to_message = to_message
    await agent.put(value, key=key, partition=partition, wait=False)


async def _settle(sent: list[Send], predicate: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate(sent):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not reached; sent {[(s.topic, s.headers) for s in sent]}")


def _decoded(sa: StreamsApp, sent: list[Send], topic: str) -> list[dict[str, Any]]:
    serde = sa.processor.serdes[CONVERSION_HOURLY if topic == sa.topics.names.conversion else ALERTS]
    return [serde.decode(s.value) for s in sent if s.topic == topic]


def test_hours_agent_emits_final_records_and_dead_letters(streams_app: tuple[StreamsApp, list[Send]]) -> None:
    asyncio.run(_hours_agent(*streams_app))


async def _hours_agent(sa: StreamsApp, sent: list[Send]) -> None:
    registry = sa.processor.serdes[POS_TICKETS].registry
    tickets, counts = TopicSerde(registry, POS_TICKETS), TopicSerde(registry, CAMERA_COUNTS)
    names = sa.topics.names
    async with sa.agents["hours"].test_context() as agent:
        t = ticket("wg-denim", "2026-03-29T10:05:00+02:00", 1500, ticket_id="T1")
        await _put(agent, names.tickets, tickets.encode(t), b"wg-denim", 1)
        await _put(agent, names.tickets, tickets.encode(t), b"wg-denim", 1)  # duplicate
        f = frame("cam-wg-denim", "wg-denim", "2026-03-29T10:06:00+02:00", 1, entries=3)
        await _put(agent, names.counts, counts.encode(f), b"wg-denim", 1)
        await _put(agent, names.counts, b"\x00garbage", b"wg-denim", 1)
        later = frame("cam-wg-denim", "wg-denim", "2026-03-29T11:20:00+02:00", 2)
        await _put(agent, names.counts, counts.encode(later), b"wg-denim", 1)
        t2 = ticket("wg-denim", "2026-03-29T11:20:00+02:00", 100)
        await _put(agent, names.tickets, tickets.encode(t2), b"wg-denim", 1)
        await _settle(sent, lambda s: any(r["is_final"] for r in _decoded(sa, s, names.conversion)))
        final = next(r for r in _decoded(sa, sent, names.conversion) if r["is_final"])
        assert (final["visitors"], final["transactions"], final["net_revenue"]) == (3, 1, 1500)
        assert final["local_hour"] == "2026-03-29T10:00:00+02:00"
        (dlq,) = [s for s in sent if s.topic == f"{names.counts}.dlq"]
        assert dlq.value == b"\x00garbage" and dlq.headers["tillflow.dlq.stage"] == "decode"
        assert dlq.headers["tillflow.dlq.partition"] == "1" and dlq.headers["tillflow.dlq.component"] == "streams"
        # State is in the tables, under the partition's key, once the outputs were sent (streams.tables.Staged).
        await _settle(sent, lambda _sent: "p1" in sa.tables.partitions)
        assert sa.tables.partitions["p1"]["newest"] == ms("2026-03-29T11:20:00+02:00")
        # End of a replay: a close_all tick closes the 11:00 hour and flushes the peer stage.
        tick = json.dumps({"now": 0, "close_all": True}).encode()
        await _put(agent, names.ticks, tick, None, 1)
        await _settle(sent, lambda s: sum(1 for x in s if x.topic == names.peers) >= 3)
        hours = {r["local_hour"] for r in _decoded(sa, sent, names.conversion) if r["is_final"]}
        assert hours == {"2026-03-29T10:00:00+02:00", "2026-03-29T11:00:00+02:00"}


def test_a_batch_event_is_counted_whole_acknowledged_as_a_range_and_counted_once_when_read_again(
    tmp_path: Path,
) -> None:
    """The batched transport (streams_batched_transport) hands the agent one event per fetched batch of one
    partition. The agent counts all its records, and its offsets are marked processed as ranges only after its
    outputs were sent. A worker that crashes after the send and before the commit reads the batch again from
    the committed offset: the hour's counts must not grow (the dedupe ids in the hour state)."""
    asyncio.run(_batch_event(tmp_path))


async def _batch_event(tmp_path: Path) -> None:
    from faust.types import TP

    from streams.processor import RecordBatch
    from streams.transport import BatchMessage

    sent: list[Send] = []

    async def capture(app: Any, sends: list[Send]) -> None:
        sent.extend(sends)

    settings = Settings(
        kafka_bootstrap="127.0.0.1:9",
        registry_url="http://127.0.0.1:9",
        topic_partitions=2,
        state_dir=tmp_path,
        streams_batched_transport=True,
    )
    sa = create_app(settings, demo(), app_id=f"t-{uuid.uuid4().hex[:8]}", store="memory://", send=capture)
    mock = SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})
    for serde in sa.processor.serdes.values():
        serde.registry = mock
    sa.app.finalize()
    sa.app.flow_control.resume()
    names = sa.topics.names
    consumer = sa.app.consumer
    for topic in (names.tickets, names.counts):
        sa.app.topics._acking_topics.add(topic)
        consumer._committed_offset[TP(topic, 1)] = 40
    tickets, counts = TopicSerde(mock, POS_TICKETS), TopicSerde(mock, CAMERA_COUNTS)
    values = [
        tickets.encode(ticket("wg-denim", f"2026-03-29T10:{m:02d}:00+02:00", 100, ticket_id=f"T{m}")) for m in (5, 6)
    ]
    values += [counts.encode(frame("cam-wg-denim", "wg-denim", "2026-03-29T10:07:00+02:00", 1, entries=4))]
    values += [counts.encode(frame("cam-wg-denim", "wg-denim", "2026-03-29T11:30:00+02:00", 2))]
    values += [tickets.encode(ticket("wg-denim", "2026-03-29T11:30:00+02:00", 100, ticket_id="T9"))]
    topics = [names.tickets, names.tickets, names.counts, names.counts, names.tickets]
    batch = RecordBatch(1, topics, [40, 41, 40, 41, 42], [b"wg-denim"] * 5, list(values))
    tps = {t: TP(t, 1) for t in (names.tickets, names.counts)}
    async with sa.agents["hours"].test_context() as agent:
        for _attempt in range(2):  # the second: read again after a crash between the send and the commit
            message = BatchMessage(batch, tps, 0.0, sa.app.consumer_generation_id)
            agent.to_message = lambda *args, message=message, **kwargs: message
            await agent.put(b"", key=None, partition=1, wait=False)
            await _settle(sent, lambda _sent, message=message: message.acked)
            assert consumer._filter_committable_offsets(list(tps.values())) == {
                tps[names.tickets]: 43,
                tps[names.counts]: 42,
            }
            consumer._committed_offset.update({tps[names.tickets]: 40, tps[names.counts]: 40})  # not committed
            consumer._acked_index.clear()
            ten = [r for r in _decoded(sa, sent, names.conversion) if r["local_hour"] == "2026-03-29T10:00:00+02:00"]
            finals = [(r["visitors"], r["transactions"]) for r in ten if r["is_final"]]
            assert finals == [(4, 2)]  # read again: counted once, no correction
            assert max(r["visitors"] for r in ten) == 4 and max(r["transactions"] for r in ten) == 2
