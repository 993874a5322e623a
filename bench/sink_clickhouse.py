"""Benchmark: `tillflow sink clickhouse` throughput on the real local broker into chDB.

Run: ``python -m bench.sink_clickhouse [--tickets N] [--frames M] [--repeats R]``. Starts the local broker and
registry in a temporary directory, produces N tickets (1-4 lines each) and M camera frames, then measures,
each as the median of R runs over the same topics (a new consumer group each run):
- baseline 1: a bare confluent-kafka consume-and-decode loop (TopicSerde.decode) over the same records;
- baseline 2: clickhouse-connect inserts of the already-mapped rows into the same chDB tables;
- the sink: consume, decode, validate, map, insert in batches, commit offsets; each insert runs in the sink's
  writer thread while the next batch is read and mapped;
- the same sink with everything in one thread (``overlap=False``, as before the writer thread).
Records/s and the sink's ratio to each baseline (per run, then the median) are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from bench.serde_registry import tickets
from schemas.catalogue import load_catalogue
from schemas.models import CameraCount
from schemas.serde import TopicSerde
from schemas.topics import CAMERA_COUNTS, POS_TICKETS
from sinks.clickhouse.mapping import COLUMNS, rows_for, timezones_of
from tillflow.kafka import registry_from_settings
from tillflow.settings import Settings

CATALOGUE = Path(__file__).resolve().parent.parent / "deploy" / "catalogue" / "demo-estate.yaml"
STORES = [s.id for s in load_catalogue(CATALOGUE).stores]


def frames(n: int) -> list[CameraCount]:
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    return [
        CameraCount(camera_id=f"cam-{i % 13}", store_id=STORES[i % len(STORES)], frame_seq=i, detector="bench",
                    frame_ts=t0 + timedelta(milliseconds=100 * i), people_in_frame=i % 7, entries=i % 3, exits=i % 2)
        for i in range(n)
    ]  # fmt: skip


def consume_decode(settings: Settings, topics: list[str], total: int) -> float:
    from tillflow.kafka import consumer_config

    registry = registry_from_settings(settings)
    serdes = {t: TopicSerde(registry, t, auto_register=False) for t in topics}
    consumer = Consumer(consumer_config(settings, f"bench-raw-{uuid.uuid4().hex[:6]}"))
    consumer.subscribe(topics)
    n, start = 0, None
    while n < total:
        for msg in consumer.consume(1000, 1.0):
            if msg.error():
                continue
            start = start or time.perf_counter()
            serdes[str(msg.topic())].decode(msg.value())
            n += 1
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return total / elapsed


def insert_rows(client: Any, rows: dict[str, list[tuple[Any, ...]]], records: int, batch: int) -> float:
    start = time.perf_counter()
    for table, table_rows in rows.items():
        for i in range(0, len(table_rows), batch):
            client.insert(table, table_rows[i : i + batch], column_names=COLUMNS[table])
    return records / (time.perf_counter() - start)


def run_sink(settings: Settings, client: Any, total: int, overlap: bool = True) -> float:
    from sinks.clickhouse.service import build_sink

    sink = build_sink(settings.model_copy(update={"sink_group_id": f"bench-sink-{uuid.uuid4().hex[:6]}"}), client)
    sink.overlap = overlap
    sink.consumer.subscribe(list(sink.logical_topics))
    start = None
    while sink.stats.written + sink.stats.dead_lettered < total:
        if sink.poll_once(0.5) and start is None:
            start = time.perf_counter()
    sink.flush()
    sink.close()
    sink.consumer.close()
    return total / (time.perf_counter() - (start or time.perf_counter()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sink_clickhouse")
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--frames", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv or [])  # `python -m bench` calls main() with no arguments: the defaults

    from sinks.clickhouse.migrate import load_stores, migrate
    from tillflow.clickhouse import connect
    from tillflow.devstack import down, up
    from tillflow.sender import RecordSender

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(state_dir=Path(tmp), catalogue=CATALOGUE, topic_partitions=6, sink_batch_rows=5000)
        up(settings, timeout=60)
        try:
            ticket_records, frame_records = tickets(args.tickets), frames(args.frames)
            ticket_records = [
                t.model_copy(update={"store_id": STORES[i % len(STORES)]}) for i, t in enumerate(ticket_records)
            ]
            total = len(ticket_records) + len(frame_records)
            with RecordSender(settings) as sender:
                sender.send_many(POS_TICKETS, ticket_records)
                sender.send_many(CAMERA_COUNTS, frame_records)
            client = connect(settings, create=True)
            migrate(client)
            load_stores(client, load_catalogue(CATALOGUE))
            tz = timezones_of(load_catalogue(CATALOGUE))
            rows: dict[str, list[tuple[Any, ...]]] = {}
            for topic, records in ((POS_TICKETS, ticket_records), (CAMERA_COUNTS, frame_records)):
                for record in records:
                    for table, table_rows in rows_for(topic, record, tz).items():
                        rows.setdefault(table, []).extend(table_rows)
            results: dict[str, list[float]] = {
                "consume+decode": [], "insert mapped rows": [], "sink": [], "sink, one thread": []
            }  # fmt: skip
            for _ in range(args.repeats):
                results["consume+decode"].append(consume_decode(settings, [POS_TICKETS, CAMERA_COUNTS], total))
                results["insert mapped rows"].append(insert_rows(client, rows, total, settings.sink_batch_rows))
                results["sink"].append(run_sink(settings, client, total))
                results["sink, one thread"].append(run_sink(settings, client, total, overlap=False))
            print(f"{len(ticket_records)} tickets ({len(rows['ticket_lines'])} lines) + {len(frame_records)} frames, "
                  f"{args.repeats} runs, batches of {settings.sink_batch_rows}")  # fmt: skip
            med = {k: statistics.median(v) for k, v in results.items()}
            for name, value in med.items():
                runs = ", ".join(f"{v:,.0f}" for v in results[name])
                print(f"  {name:<20} {value:>10,.0f} records/s (median; runs: {runs})")
            # Ratios per run (the three measured back to back), then their median: on a shared machine the load
            # drifts between runs, and a ratio of medians taken from different runs mixes loads.
            for peer in ("consume+decode", "insert mapped rows", "sink, one thread"):
                ratios = [s / p for s, p in zip(results["sink"], results[peer], strict=True)]
                listed = ", ".join(f"{r:.2f}" for r in ratios)
                print(f"  sink / {peer:<20} = {statistics.median(ratios):.2f} (median of runs: {listed})")
            print("  targets: sink >= 40,000 records/s and >= 0.5 of the insert of mapped rows")
        finally:
            down(settings)


if __name__ == "__main__":
    main(sys.argv[1:])
