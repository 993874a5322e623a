"""A worker stopped (SIGTERM) or killed (kill -9) at random moments while it is busy loses nothing.

Real local broker. Three days of the demo estate are produced up front; a worker is started, and as soon as
it sends outputs it is stopped at a random moment (seeded) while it still has thousands of records to go:
SIGTERM and kill -9 in turn, several times in a row (a SIGTERM must end the worker cleanly within 10 s; a
killed worker's successor gets its partitions at once through static membership), each new worker resuming
from the offsets and tables the last one committed. A final worker finishes the input and closes every hour.
Its final records must equal the batch recompute cell by cell: an offset committed for a record that was
never processed (or whose table and output writes were not flushed) shows as a store-hour with too few
visitors or tickets, and state kept without its outputs (a kill -9 between the two) as a store-hour missing.

On the transport of 2026-12-07 (SIGTERM only) this failed 3 runs of 3 with about a thousand differing cells
(streams/transport.py lists the causes). With those fixed it still failed about one run in five (store-hours
without a final record, a wrong cell, or a worker that committed nothing within 60 s): Faust's stream
acknowledged messages it skipped during a rebalance (test_transport.py pins that part directly), and a batch's
table state could reach the changelog ahead of its outputs (streams.tables.Staged; test_staged.py). The first
two stops (a SIGTERM and a kill -9) must find the worker with input left.
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from confluent_kafka import Consumer

from schemas.topics import POS_TICKETS
from streams.batch import compare, recompute
from streams.replay import (
    _committed,
    _ends,
    latest_finals,
    produce_files,
    read_outputs,
    run_topics,
    start_worker,
    stop_worker,
    wait_processed,
)
from streams.topics import TopicNames
from tests.streams.estate import estate_day, write_files
from tests.streams.factory import DEMO, demo
from tillflow.kafka import consumer_config
from tillflow.settings import Settings

STOPS = int(__import__("os").environ.get("BUSY_STOPS", "4"))


def _outputs(consumer: Consumer, names: TopicNames, partitions: int) -> int:
    return sum(_ends(consumer, names.conversion, partitions))


def _progress(consumer: Consumer, names: TopicNames, partitions: int) -> int:
    return sum(_committed(consumer, names.tickets, partitions)) + sum(_committed(consumer, names.counts, partitions))


def test_a_busy_worker_stopped_at_random_moments_loses_nothing(stack: Settings, tmp_path: Path) -> None:
    catalogue = demo()
    rng = random.Random(int(time.time()))
    seed = rng.randrange(1_000_000)
    rng = random.Random(seed)
    events = []
    for day in range(3):
        events += estate_day(
            catalogue, date(2026, 4, 6) + timedelta(days=day), seed=seed + day, dup_rate=0.02, late_rate=0
        )
    app_id = f"tillflow-busy-{uuid.uuid4().hex[:8]}"
    prefix = f"busy.{app_id}."
    names = TopicNames.build(app_id, prefix)
    run_topics(stack, names)
    produce_files(stack, names, *write_files(tmp_path / "in", events), tmp_path / "rejects.jsonl", lambda n: None)
    partitions = stack.topic_partitions
    consumer = Consumer(consumer_config(stack, app_id))  # reads the worker group's committed offsets
    total = sum(_ends(consumer, names.tickets, partitions)) + sum(_ends(consumer, names.counts, partitions))
    log = tmp_path / "worker.log"
    stopped_at: list[tuple[int, int]] = []  # (committed before the stop, committed after it)
    try:
        for stop in range(STOPS):
            kill = stop % 2 == 1  # SIGTERM, then kill -9, in turn
            before = _progress(consumer, names, partitions)
            if before >= total:
                break  # the input is done: a further stop would not find the worker busy
            outputs = _outputs(consumer, names, partitions)
            worker = start_worker(stack, DEMO, app_id, prefix, log)
            deadline = time.monotonic() + 60
            try:
                # busy: it sends outputs (a batched worker can finish the input before its first commit)
                while _outputs(consumer, names, partitions) <= outputs and time.monotonic() < deadline:
                    assert worker.poll() is None, log.read_text()[-3000:]
                    time.sleep(0.05)
                assert time.monotonic() < deadline, f"no output within 60 s of a start after {stopped_at}"
                time.sleep(rng.uniform(0.0, 0.6))  # a random moment while the worker is busy
                if kill:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()
                stopping = time.monotonic()
            finally:
                stop_worker(worker)
            took = time.monotonic() - stopping
            after = _progress(consumer, names, partitions)
            stopped_at.append((before, after))
            if not kill:
                assert worker.returncode == 0, log.read_text()[-3000:]
                assert took < 10, f"SIGTERM took {took:.1f} s"
        busy = [after < total for _, after in stopped_at]
        assert busy[:2] == [True, True], f"a SIGTERM and a kill -9 must find the worker busy: {stopped_at}, {total}"
        worker = start_worker(stack, DEMO, app_id, prefix, log)
        try:
            wait_processed(stack, names, worker, log, time.monotonic() + 120, close_all=True)
        finally:
            stop_worker(worker)
        dead = sum(sum(_ends(consumer, f"{t}.dlq", partitions)) for t in (names.tickets, names.counts))
    finally:
        consumer.close()

    conversions, _alerts = read_outputs(stack, names)
    batch = recompute(
        catalogue,
        [e.record for e in events if e.topic == POS_TICKETS],
        [e.record for e in events if e.topic != POS_TICKETS],
    )
    problems = compare(latest_finals(conversions), batch)
    stops = f"committed before/after each stop {stopped_at} of {total}"
    assert problems == [], f"seed {seed}, {dead} dead letters, {stops}: {problems[:10]}"
