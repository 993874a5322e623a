"""The ClickHouse sink on the real broker: chDB in-process, and clickhouse-connect's HTTP client against the
HTTP stand-in (see tests/sinks/clickhouse_http.py) with a server outage in the middle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from sinks.clickhouse.service import build_sink, prepare
from tests.sinks.kafka_helpers import committed, end_offsets, make_topics, produce, read_all
from tests.support.records import T0, alert, frame, hourly, ticket
from tillflow.settings import Settings


def actual(mapping: dict[str, str], logical: str) -> str:
    return next(name for name, log in mapping.items() if log == logical)


def scalar(client: Any, sql: str) -> Any:
    return client.query(sql).result_rows[0][0]


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def sink_settings(stack: Settings, ch_settings: Settings, group: str, **extra: Any) -> Settings:
    return stack.model_copy(
        update={
            "clickhouse_database": ch_settings.clickhouse_database,
            "sink_group_id": group,
            "sink_batch_rows": 40,
            "sink_batch_seconds": 0.3,
            "sink_retry_initial_seconds": 0.1,
            "sink_retry_max_seconds": 0.5,
            **extra,
        }
    )


def test_sink_writes_dead_letters_and_replays_idempotently(
    stack: Settings, ch_settings: Settings, ch: Any, unique: str
) -> None:
    topics = make_topics(stack, unique)
    tickets_topic = actual(topics, POS_TICKETS)
    tickets = [ticket(i, at=T0 + timedelta(minutes=i)) for i in range(100)]
    tickets.append(ticket(5, at=T0 + timedelta(minutes=5)))  # the same ticket re-polled
    too_old = ticket(900, at=T0.replace(year=1999), ingested_at=T0)  # refused by the table's constraint
    unknown = ticket(901, store="nowhere")  # no such store in the catalogue
    produce(stack, tickets_topic, POS_TICKETS, [*tickets, too_old, unknown, b"\x00\x00\x00\x00\x01garbage"])
    frames = [frame(i) for i in range(150)] + [frame(i) for i in range(140, 150)]  # 10 frames sent twice
    produce(stack, actual(topics, CAMERA_COUNTS), CAMERA_COUNTS, frames)
    hours = [
        hourly(final=False),
        hourly(),
        hourly(revision=1, visitors=120, pos_complete_share=0.75, all_complete_share=0.5),
        hourly(store="wg-denim"),
    ]
    produce(stack, actual(topics, CONVERSION_HOURLY), CONVERSION_HOURLY, hours)
    produce(stack, actual(topics, ALERTS), ALERTS, [alert(1), alert(1, state="RESOLVED"), alert(2)])

    settings = sink_settings(stack, ch_settings, f"sink-{unique}")
    sink = build_sink(settings, ch, topics)
    stats = sink.run(list(topics), idle_exit=3.0)

    assert stats.consumed == 104 + 160 + 4 + 3
    assert stats.dead_lettered == 3
    assert scalar(ch, "SELECT count() FROM tickets FINAL") == 100
    assert scalar(ch, "SELECT count() FROM ticket_lines FINAL") == 200
    assert scalar(ch, "SELECT sum(net_amount) FROM tickets FINAL") == 100 * 5000
    assert scalar(ch, "SELECT sum(entries) FROM camera_counts_minute") == 150
    assert scalar(ch, "SELECT count() FROM camera_frames FINAL") == 150
    row = ch.query(
        "SELECT visitors, revision, is_final, pos_complete_share, all_complete_share FROM conversion_hourly FINAL "
        "WHERE store_id = 'wg-fashion'"
    ).result_rows
    assert row == [(120, 1, True, 0.75, 0.5)]  # the POS availability shares (migration 0015)
    assert scalar(ch, "SELECT count() FROM alerts FINAL") == 3
    for name in topics:
        assert committed(stack, settings.sink_group_id, name) == end_offsets(stack, name)

    letters = read_all(stack, f"{tickets_topic}.dlq", expect=3)
    by_stage = {h["tillflow.dlq.stage"]: h for _, h in letters}
    assert set(by_stage) == {"decode", "map", "clickhouse"}
    assert "VIOLATED_CONSTRAINT" in by_stage["clickhouse"]["tillflow.dlq.reason"]
    assert "occurred_after_2000" in by_stage["clickhouse"]["tillflow.dlq.reason"]
    assert "'nowhere' is not in the catalogue" in by_stage["map"]["tillflow.dlq.reason"]
    assert by_stage["decode"]["tillflow.dlq.topic"] == tickets_topic
    assert [v for v, h in letters if h["tillflow.dlq.stage"] == "decode"] == [b"\x00\x00\x00\x00\x01garbage"]

    # Replaying every topic from the start (a new group) leaves the same rows, even after merges.
    replay = build_sink(sink_settings(stack, ch_settings, f"replay-{unique}"), ch, topics)
    replay.run(list(topics), idle_exit=3.0)
    for table in ("tickets", "ticket_lines", "camera_frames", "conversion_hourly", "alerts"):
        ch.command(f"OPTIMIZE TABLE {table} FINAL")
    assert scalar(ch, "SELECT count() FROM tickets") == 100
    assert scalar(ch, "SELECT count() FROM ticket_lines") == 200
    assert scalar(ch, "SELECT count() FROM camera_frames") == 150
    assert scalar(ch, "SELECT sum(entries) FROM camera_counts_minute") == 150
    assert scalar(ch, "SELECT count() FROM conversion_hourly") == 2
    assert scalar(ch, "SELECT count() FROM alerts") == 3


@pytest.fixture
def http_clickhouse(chdb_dir: Any) -> Any:
    from tests.sinks.clickhouse_http import ClickHouseHTTPStandIn

    standin = ClickHouseHTTPStandIn(chdb_dir / "clickhouse", user="tillflow", password="s3cret")  # the ch engine
    standin.start()
    yield standin
    standin.close()


def test_sink_over_http_survives_an_outage(
    stack: Settings, ch_settings: Settings, ch: Any, http_clickhouse: Any, unique: str
) -> None:
    from tillflow.clickhouse import connect

    topics = make_topics(stack, unique, [POS_TICKETS])
    name = actual(topics, POS_TICKETS)
    url = http_clickhouse.url.replace("http://", "http://tillflow:s3cret@") + f"/{ch_settings.clickhouse_database}"
    settings = sink_settings(stack, ch_settings, f"http-{unique}", clickhouse_url=url)
    client = connect(settings, create=True)
    prepare(settings, client)  # migrations already applied by the ch fixture: nothing to do, stores refreshed
    sink = build_sink(settings, client, topics)
    runner = threading.Thread(target=sink.run, args=(list(topics),), daemon=True)
    runner.start()
    try:
        produce(stack, name, POS_TICKETS, [ticket(i, net=1000) for i in range(50)])
        wait_for(lambda: scalar(ch, "SELECT count() FROM tickets FINAL") == 50, what="first 50 tickets")
        wait_for(lambda: committed(stack, settings.sink_group_id, name) == 50, what="first commit")

        http_clickhouse.stop()  # the server goes away
        retries_before = sink.stats.retries
        # Ticket 7 is re-polled twice with other amounts but the same ingested_at (the table's version): with
        # equal versions ReplacingMergeTree keeps the row inserted last, so 7777 wins only if the batch holding
        # 1111 (written first, after retries) is not overtaken by the later batch holding 7777.
        produce(stack, name, POS_TICKETS, [ticket(7, net=1111), *(ticket(i, net=1000) for i in range(50, 100)),
                                           ticket(7, net=7777)])  # fmt: skip
        wait_for(lambda: sink.stats.retries >= retries_before + 3, what="retries while the server is down")
        assert committed(stack, settings.sink_group_id, name) == 50  # nothing committed while it is down
        assert scalar(ch, "SELECT count() FROM tickets FINAL") == 50

        http_clickhouse.start()  # back on the same port
        wait_for(lambda: scalar(ch, "SELECT count() FROM tickets FINAL") == 100, what="all tickets after outage")
        wait_for(lambda: committed(stack, settings.sink_group_id, name) == 102, what="commit after outage")
    finally:
        sink.stop_event.set()
        runner.join(timeout=30)
    assert scalar(ch, "SELECT net_amount FROM tickets FINAL WHERE ticket_id = 'T7'") == 7777
    inserts = [r for r in http_clickhouse.requests if r["head"].startswith("INSERT INTO")]
    assert inserts and all(r["encoding"] == "lz4" for r in inserts)
    assert http_clickhouse.lz4_frames_seen >= len(inserts)
    assert sink.stats.dead_lettered == 0
    assert sink.stats.batches >= 3  # 52 records after the outage at 40 a batch: 1111 and 7777 in different batches


def test_batches_are_cut_by_size(stack: Settings, ch_settings: Settings, ch: Any, unique: str) -> None:
    """With a batch age far beyond the test, only the size closes a batch: 30 records at 10 make 3 batches."""
    topics = make_topics(stack, unique, [POS_TICKETS])
    produce(stack, actual(topics, POS_TICKETS), POS_TICKETS, [ticket(i) for i in range(30)])
    settings = sink_settings(stack, ch_settings, f"size-{unique}", sink_batch_rows=10, sink_batch_seconds=600.0)
    stats = build_sink(settings, ch, topics).run(list(topics), idle_exit=1.0)
    assert (stats.batches, stats.written) == (3, 30)
    assert scalar(ch, "SELECT count() FROM tickets FINAL") == 30


def test_two_sinks_share_partitions_through_a_rebalance(
    stack: Settings, ch_settings: Settings, ch: Any, unique: str
) -> None:
    topics = make_topics(stack, unique, [POS_TICKETS])
    name = actual(topics, POS_TICKETS)
    settings = sink_settings(stack, ch_settings, f"pair-{unique}", sink_batch_seconds=1.0)
    stores = ["wg-fashion", "wg-denim", "wg-shoes", "wg-volt", "wg-grocer", "wg-cafe", "nyc-soho", "mum-bandra"]
    first = build_sink(settings, ch, topics)
    runner_a = threading.Thread(target=first.run, args=(list(topics),), daemon=True)
    runner_a.start()
    second = None
    try:
        produce(stack, name, POS_TICKETS, [ticket(i, store=stores[i % 8]) for i in range(200)])
        wait_for(lambda: scalar(ch, "SELECT count() FROM tickets FINAL") == 200, what="first sink")
        # a second instance joins: the first loses partitions (flushing what it holds), the second takes them;
        # on one host it needs an instance id of its own (the local stack's default is `<group>@<host>`)
        second = build_sink(settings.model_copy(update={"kafka_group_instance_id": f"second-{unique}"}), ch, topics)
        runner_b = threading.Thread(target=second.run, args=(list(topics),), daemon=True)
        runner_b.start()
        wait_for(lambda: bool(second.assigned), what="the second sink's partitions")
        produce(stack, name, POS_TICKETS, [ticket(i, store=stores[i % 8]) for i in range(200, 400)])
        wait_for(lambda: scalar(ch, "SELECT count() FROM tickets FINAL") == 400, what="all tickets")
        wait_for(lambda: committed(stack, settings.sink_group_id, name) == 400, what="all offsets committed")
    finally:
        first.stop_event.set()
        if second is not None:
            second.stop_event.set()
        runner_a.join(timeout=30)
    assert second is not None and second.stats.consumed > 0
    assert first.stats.consumed + second.stats.consumed >= 400
    assert first.stats.dead_lettered == second.stats.dead_lettered == 0


class GatedClient:
    """The real client, with each insert's table and thread recorded and the first insert held until ``release``
    is set: a slow ClickHouse, seen from the sink."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.release = threading.Event()
        self.inserts: list[tuple[str, str]] = []

    def insert(self, table: str, data: Any, **kw: Any) -> Any:
        self.inserts.append((table, threading.current_thread().name))
        if len(self.inserts) == 1:
            assert self.release.wait(30), "the test never released the first insert"
        return self.client.insert(table, data, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_the_next_batch_is_read_while_one_is_written_and_commits_stay_in_order(
    stack: Settings, ch_settings: Settings, ch: Any, unique: str
) -> None:
    topics = make_topics(stack, unique, [POS_TICKETS])
    name = actual(topics, POS_TICKETS)
    produce(stack, name, POS_TICKETS, [ticket(i) for i in range(30)])
    settings = sink_settings(stack, ch_settings, f"overlap-{unique}", sink_batch_rows=10, sink_batch_seconds=600.0)
    gated = GatedClient(ch)
    sink = build_sink(settings, gated, topics)
    runner = threading.Thread(target=sink.run, args=(list(topics),), kwargs={"idle_exit": 2.0}, daemon=True)
    runner.start()
    try:
        # The first batch's insert is held: the loop reads and maps the second batch meanwhile, but starts no
        # second insert and commits nothing until the first is written.
        wait_for(lambda: sink.stats.consumed >= 20, what="the next batch read during the insert")
        time.sleep(0.5)
        assert len(gated.inserts) == 1 and gated.inserts[0][1].startswith("clickhouse-insert")
        assert committed(stack, settings.sink_group_id, name) == 0
        assert sink.stats.written == 0
    finally:
        gated.release.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
    assert (sink.stats.batches, sink.stats.written) == (3, 30)
    assert committed(stack, settings.sink_group_id, name) == 30
    assert [table for table, _ in gated.inserts].count("tickets") == 3
    assert scalar(ch, "SELECT count() FROM tickets FINAL") == 30


def test_without_overlap_each_batch_is_committed_before_the_next_is_read(
    stack: Settings, ch_settings: Settings, ch: Any, unique: str
) -> None:
    topics = make_topics(stack, unique, [POS_TICKETS])
    produce(stack, actual(topics, POS_TICKETS), POS_TICKETS, [ticket(i) for i in range(20)])
    settings = sink_settings(stack, ch_settings, f"serial-{unique}", sink_batch_rows=10, sink_batch_seconds=600.0)
    gated = GatedClient(ch)
    gated.release.set()
    sink = build_sink(settings, gated, topics)
    sink.overlap = False
    stats = sink.run(list(topics), idle_exit=1.0)
    assert (stats.batches, stats.written) == (2, 20)
    assert gated.inserts and all(thread == threading.current_thread().name for _, thread in gated.inserts)
