"""Chaos on the local stack: the worker, the ClickHouse sink and the broker killed and stopped during a replay.

A stack of its own (the test kills its broker). One day of the demo estate is produced up front and left to
reach the broker's disk (noida-db rewrites its state about once a second, never fsynced: a kill -9 loses what
it acknowledged since; docs/operations.md). Then, while a worker (`tillflow worker`) and the sink (`tillflow
sink clickhouse`, embedded chDB) work through it:

1. the worker is stopped (SIGTERM; it must exit cleanly within 10 s) and started again, then, busy with the
   first half of a second day, killed (kill -9) and started again; each new worker must make progress within
   60 s;
2. the sink is started, killed (kill -9) once it committed a first batch, and started again: with static
   membership (the local stack's default, `<group>@<host>`) it must commit again within 60 s — without it
   the broker never evicts the dead member and the new sink gets nothing;
3. the second half of the second day is produced and, while the worker takes it, the broker is stopped
   (`CHAOS_BROKER_SIGNAL`, default SIGTERM: see below) and `tillflow dev up` brings it back on the same port:
   the running worker and sink carry on by themselves;
4. the worker closes every hour and the sink lands everything;
5. the broker is killed (kill -9) and, with it gone, the worker and the sink get SIGTERM: both must exit within
   10 s (the stop deadline, tillflow/shutdown.py).

Then ClickHouse must equal the batch recompute cell by cell (`conversion_hourly FINAL`), hold every distinct
input ticket, and the input topics must still hold every record they acknowledged.

Step 3 stops the broker gracefully: that is what the local broker survives. It is not durable against a kill
-9 (docs/operations.md): it comes back as it was at its last state rewrite, up to a second earlier — with
`CHAOS_BROKER_SIGNAL=KILL` (and clients restarted after it) one run in four ended with four store-hours that
never got a final record. A real Kafka keeps every acknowledged write, which the worker's at-least-once
commits rely on. The kill -9 of step 5 comes after everything landed, so it only tests the stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from streams.batch import compare, recompute
from streams.replay import (
    ReplayError,
    _committed,
    _ends,
    produce_files,
    run_topics,
    start_worker,
    wait_processed,
)
from streams.topics import TopicNames
from tests.conftest import DEMO_CATALOGUE
from tests.streams.estate import estate_day, write_files
from tests.support.events import demo
from tillflow.devstack import _alive, down, read_stack, up
from tillflow.kafka import consumer_config
from tillflow.settings import Settings

PARTITIONS = 3
SINK_TOPICS = (POS_TICKETS, CAMERA_COUNTS, CONVERSION_HOURLY, ALERTS)
STOP_LIMIT_S = 10.0
BROKER_SIGNAL = getattr(signal, f"SIG{os.environ.get('CHAOS_BROKER_SIGNAL', 'TERM')}")
"""How the broker is stopped in step 3: SIGTERM (what the local broker survives); KILL shows what it does not."""
RESUME_LIMIT_S = 60.0

READ_CLICKHOUSE = """
import json, sys
from tillflow.clickhouse import connect
from tillflow.settings import load_settings
client = connect(load_settings(), create=False)
rows = client.query(
    "SELECT store_id, zone_id, toUnixTimestamp(hour_start) * 1000 AS hour_start, local_hour, currency, visitors, "
    "exits, transactions, net_revenue, gross_revenue, discount_amount, units, refunds, refund_amount, voids, "
    "employee_sales, cash_amount, conversion, avg_ticket, units_per_transaction, revenue_per_visitor, "
    "revenue_per_m2, void_rate, discount_rate, cash_share, quality_flags, complete_share, is_final, revision "
    "FROM conversion_hourly FINAL"
).named_results()
tickets = client.query("SELECT count() FROM tickets FINAL").result_rows[0][0]
print(json.dumps({"conversion": list(rows), "tickets": tickets}, default=str))
"""


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Settings]:
    """A broker and registry of this test's own (it kills the broker), with the standard topic names."""
    settings = Settings(state_dir=tmp_path / "stack", topic_partitions=PARTITIONS, catalogue=DEMO_CATALOGUE)
    up(settings, timeout=60)
    try:
        yield settings
    finally:
        down(settings)


def _env(settings: Settings) -> dict[str, str]:
    """The environment of a `tillflow` child on the local stack (no TILLFLOW_KAFKA_BOOTSTRAP: local defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLFLOW_")}
    env.update(
        TILLFLOW_CONFIG=os.environ.get("TILLFLOW_CONFIG", ""),
        TILLFLOW_STATE_DIR=str(settings.state_dir.resolve()),
        TILLFLOW_TOPIC_PARTITIONS=str(PARTITIONS),
        TILLFLOW_CATALOGUE=str(DEMO_CATALOGUE),
        TILLFLOW_SINK_BATCH_SECONDS="0.5",
    )
    return env


def start_sink(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tillflow", "sink", "clickhouse"]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=_env(settings), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def sigterm(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM the process group; seconds until it exited (killed after 30 s)."""
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return time.monotonic() - started


def kill9(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def committed(consumer: Consumer, topics: tuple[str, ...]) -> int:
    return sum(sum(_committed(consumer, t, PARTITIONS)) for t in topics)


def ends(consumer: Consumer, topics: tuple[str, ...]) -> int:
    return sum(sum(_ends(consumer, t, PARTITIONS)) for t in topics)


def stop_broker(settings: Settings, how: int) -> None:
    """Signal the local broker and wait until it is gone (a graceful stop writes its state first)."""
    broker = read_stack(settings)["kafka"]["pid"]  # type: ignore[index]
    os.kill(broker, how)
    while _alive(broker):
        time.sleep(0.05)


def grew(group: Consumer, topics: tuple[str, ...], before: int, total: int) -> Any:
    """A check: the group committed past ``before`` (or ``before`` already was everything)."""
    return lambda: before >= total or committed(group, topics) > before


class WorkerStalled(AssertionError):
    """The worker stopped making progress and its watchdog logged `stalled:` (the open restart stall of issue 12,
    fixed separately in streams/transport.py): an expected failure of this test until then, unlike any loss."""


def check_stall(logs: Path, what: str) -> None:
    """Raise :class:`WorkerStalled` when the worker's log holds the watchdog's `stalled:` line."""
    log = tail(logs, "worker", 10**7)
    if "stalled:" in log:
        at = log.index("stalled:")
        raise WorkerStalled(f"the worker stalled while waiting for {what}: {log[at : at + 1500]}")


def wait_for(what: str, check: Any, limit: float, procs: dict[str, subprocess.Popen[bytes]], logs: Path) -> float:
    """Poll ``check`` until true; seconds it took. Fails after ``limit`` s or when one of ``procs`` died."""
    started = time.monotonic()
    while not check():
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} died ({proc.returncode}) waiting for {what}: {tail(logs, name)}"
        watched = list(procs) or ["worker", "sink"]
        if "worker" in procs and time.monotonic() - started >= limit:
            check_stall(logs, what)
        assert time.monotonic() - started < limit, f"no {what} within {limit:g} s: " + " / ".join(
            f"{name}: {tail(logs, name)}" for name in watched
        )
        time.sleep(0.2)
    return time.monotonic() - started


def tail(logs: Path, name: str, chars: int = 2500) -> str:
    path = logs / f"{name}.log"
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@pytest.mark.xfail(
    reason="issue 12's rare restart stall (its cause, a race of Faust's perform_seek with the fetch loop, is fixed "
    "since issue 16, docs/streams.md; kept non-strict until CI has shown no stall): only a stall whose log has the "
    "watchdog's `stalled:` line is expected to fail here; any lost record or differing cell still fails",
    raises=WorkerStalled,
    strict=False,
)
def test_worker_sink_and_broker_killed_during_a_replay_lose_nothing(own_stack: Settings, tmp_path: Path) -> None:
    settings = own_stack
    catalogue = demo()
    days = [estate_day(catalogue, date(2026, 4, 6 + d), seed=12 + d, dup_rate=0.02, late_rate=0) for d in (0, 1)]
    events = days[0] + days[1]
    halves = days[1][: len(days[1]) // 2], days[1][len(days[1]) // 2 :]
    app_id = f"tillflow-chaos-{uuid.uuid4().hex[:8]}"
    names = TopicNames.build(app_id, "")  # the standard topic names: the sink reads those
    run_topics(settings, names)
    rejects = tmp_path / "rejects.jsonl"
    produce_files(settings, names, *write_files(tmp_path / "day1", days[0]), rejects, lambda n: None)
    time.sleep(2.5)  # past the broker's next rewrite of its state: the input is on disk
    logs = tmp_path
    figures: dict[str, float] = {}
    worker_group = Consumer(consumer_config(settings, app_id))
    sink_group = Consumer(consumer_config(settings, settings.sink_group_id))
    inputs = (POS_TICKETS, CAMERA_COUNTS)
    produced = ends(worker_group, inputs)
    port = read_stack(settings)["kafka"]["port"]  # type: ignore[index]
    worker = start_worker(settings, DEMO_CATALOGUE, app_id, "", logs / "worker.log")
    sink = worker  # started below, once the worker was stopped twice: then it has a day to land
    try:
        # 1. the worker: SIGTERM while busy, then kill -9 while busy
        for how in ("SIGTERM", "kill -9"):
            if how == "kill -9":  # the second day's first half arrives: the worker is busy with it
                produce_files(settings, names, *write_files(tmp_path / "day2a", halves[0]), rejects, lambda n: None)
                time.sleep(2.5)
                produced = ends(worker_group, inputs)
            busy = grew(worker_group, inputs, committed(worker_group, inputs), produced)
            wait_for(f"worker progress before {how}", busy, 60, {"worker": worker}, logs)
            if how == "SIGTERM":
                took = sigterm(worker)
                assert took < STOP_LIMIT_S and worker.returncode == 0, (took, tail(logs, "worker"))
                figures["worker SIGTERM while busy: exit (s)"] = took
            else:
                kill9(worker)
            before = committed(worker_group, inputs)
            figures[f"worker {how} with records left"] = produced - before
            worker = start_worker(settings, DEMO_CATALOGUE, app_id, "", logs / "worker.log")
            done = grew(worker_group, inputs, before, produced)
            figures[f"worker resumed after {how} (s)"] = wait_for(
                "worker progress after a restart", done, RESUME_LIMIT_S, {"worker": worker}, logs
            )

        # 2. the sink, killed once it committed a batch, resumes within 60 s
        sink = start_sink(settings, logs / "sink.log")
        wait_for("first sink commit", lambda: committed(sink_group, inputs) > 0, 60, {"sink": sink}, logs)
        kill9(sink)
        before = committed(sink_group, inputs)
        figures["sink killed with records left (of the inputs)"] = produced - before
        sink = start_sink(settings, logs / "sink.log")
        progress = grew(sink_group, inputs, before, produced)
        figures["sink resumed after kill -9 (s)"] = wait_for("sink progress", progress, RESUME_LIMIT_S, {}, logs)

        # 3. the second day's second half arrives; while the worker takes it, the broker is stopped and `dev up`
        # brings it back on its port: worker and sink carry on by themselves
        produce_files(settings, names, *write_files(tmp_path / "day2b", halves[1]), rejects, lambda n: None)
        time.sleep(2.5 if BROKER_SIGNAL == signal.SIGKILL else 0.5)  # a kill -9: once the input is on disk
        produced = ends(worker_group, inputs)
        figures["broker stopped with records left (of the inputs)"] = produced - committed(worker_group, inputs)
        stop_broker(settings, BROKER_SIGNAL)
        time.sleep(2.0)
        up(settings, timeout=60)
        assert read_stack(settings)["kafka"]["port"] == port  # type: ignore[index]
        assert ends(worker_group, inputs) == produced, "the broker lost input records it had written to disk"

        # 4. the worker closes every hour; the sink lands everything
        try:
            wait_processed(settings, names, worker, logs / "worker.log", time.monotonic() + 90, close_all=True)
        except ReplayError:
            check_stall(logs, "the end of the input")
            raise
        landed = lambda: committed(sink_group, SINK_TOPICS) >= ends(sink_group, SINK_TOPICS)  # noqa: E731
        wait_for("the sink to land everything", landed, 60, {"sink": sink}, logs)

        # 5. the broker is killed; the worker and the sink honour SIGTERM with it gone
        stop_broker(settings, signal.SIGKILL)
        time.sleep(1.0)
        for name, proc in (("worker", worker), ("sink", sink)):
            took = sigterm(proc)
            figures[f"{name} SIGTERM with the broker gone: exit (s)"] = took
            assert took < STOP_LIMIT_S, f"{name} took {took:.1f} s: {tail(logs, name)}"
            assert proc.returncode in (0, 3), (proc.returncode, tail(logs, name))  # 3: the stop deadline
    finally:
        for proc in (worker, sink):
            if proc.poll() is None:
                kill9(proc)
        worker_group.close()
        sink_group.close()

    read = subprocess.run([sys.executable, "-c", READ_CLICKHOUSE], env=_env(settings), capture_output=True, timeout=120)
    assert read.returncode == 0, read.stderr.decode()[-3000:]
    landed_rows = json.loads(read.stdout)
    rows = [{**r, "zone_id": r["zone_id"] or None} for r in landed_rows["conversion"]]
    tickets = [e.record for e in events if e.topic == POS_TICKETS]
    batch = recompute(catalogue, tickets, [e.record for e in events if e.topic != POS_TICKETS])
    problems = compare(rows, batch)
    print("chaos figures:", json.dumps({k: round(v, 1) for k, v in figures.items()}))
    assert problems == [], f"{len(problems)} cells differ: {problems[:10]}"
    assert landed_rows["tickets"] == len({t["ticket_id"] for t in tickets})
