"""A worker stopped and started again resumes from its committed offsets and its recovered tables.

Real local broker: the first worker processes Sunday and is stopped (SIGTERM); Monday arrives while no
worker runs; a second worker with the same app id recovers the tables from their changelogs and carries
on. Its final records must equal the batch recompute of both days cell by cell: a lost table entry, or an
event lost or counted twice, would show as a wrong cell; and no hour may be closed twice, as it would be
by a worker that lost the tables and re-read its input.

A crash (SIGKILL) is not tested here: noida-db never expires a dead member's session, so a new member
waits for it forever (measured with plain confluent-kafka consumers, docs/streams.md).
"""

from __future__ import annotations

import time
import uuid
from datetime import date
from pathlib import Path

from schemas.topics import POS_TICKETS
from streams.batch import compare, recompute
from streams.replay import (
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
from tests.support.events import DEMO, demo
from tillflow.settings import Settings


def test_a_restarted_worker_resumes(stack: Settings, tmp_path: Path) -> None:
    catalogue = demo()
    sunday = estate_day(catalogue, date(2026, 3, 29), seed=3, dup_rate=0.02, late_rate=0)
    monday = estate_day(catalogue, date(2026, 3, 30), seed=4, dup_rate=0.02, late_rate=0)
    app_id = f"tillflow-restart-{uuid.uuid4().hex[:8]}"
    prefix = f"restart.{app_id}."
    names = TopicNames.build(app_id, prefix)
    run_topics(stack, names)
    rejects, log = tmp_path / "rejects.jsonl", tmp_path / "worker.log"

    def run_worker(close_all: bool) -> int:
        """A worker until it has committed all input (and, with ``close_all``, closed every hour), then SIGTERM."""
        worker = start_worker(stack, DEMO, app_id, prefix, log)
        try:
            wait_processed(stack, names, worker, log, time.monotonic() + 180, close_all=close_all)
        finally:
            stop_worker(worker)
        return worker.returncode

    produce_files(stack, names, *write_files(tmp_path / "sun", sunday), rejects, lambda n: None)
    assert run_worker(close_all=False) == 0, log.read_text()[-3000:]
    produce_files(stack, names, *write_files(tmp_path / "mon", monday), rejects, lambda n: None)
    run_worker(close_all=True)

    conversions, _alerts = read_outputs(stack, names)
    batch = recompute(
        catalogue,
        [e.record for e in sunday + monday if e.topic == POS_TICKETS],
        [e.record for e in sunday + monday if e.topic != POS_TICKETS],
    )
    assert compare(latest_finals(conversions), batch) == []
    finals = [(r["store_id"], r["zone_id"], r["hour_start"]) for r in conversions if r["is_final"]]
    assert len(set(finals)) == len(finals)  # no hour closed twice
