"""`tillflow replay`: the whole pipeline over recorded files, on the local stack or a configured cluster.

The run gets its own topics (``replay.<run>.`` prefix) and app id, so it never mixes with live data:
1. validate and produce the ticket and count files (invalid lines go to ``DIR/rejects.jsonl``);
2. start a worker (``tillflow worker`` in a child process) on those topics; each late delivery, if any, is
   produced once the worker has committed everything before it;
3. wait until its committed offsets reach the end of both inputs, then send an end-of-input tick to every
   partition, which closes all hours and flushes the peer stage; wait until those are committed too;
4. read the outputs: ``DIR/conversion.jsonl`` (the final records, latest revision per store-zone-hour) and
   ``DIR/alerts.jsonl`` (latest state per alert_id), then stop the worker and delete the run's topics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.catalogue import Catalogue
from schemas.models import Alert, CameraCount, HourlyConversion, PosTicket
from schemas.serde import TopicSerde
from schemas.storeops import OpsHourly, StaffShift
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS, STAFF_SHIFTS, STOREOPS_HOURLY
from streams.storeops_stage import OpsTopicNames
from streams.topics import TopicNames
from tillflow.errors import TillflowError
from tillflow.jsonl import Reject, read_numbered
from tillflow.kafka import (
    client_config,
    consumer_config,
    endpoints,
    ensure_topics,
    producer_config,
    registry_from_settings,
)
from tillflow.settings import Settings


class ReplayError(TillflowError, RuntimeError):
    """The replay could not complete (worker died, timeout, broker refused records)."""


@dataclass
class ReplayResult:
    conversions: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    produced: int
    rejected: int
    run_id: str
    ops: list[dict[str, Any]] = field(default_factory=list)
    """storeops.hourly: the latest revision of every store/zone/category-hour."""


def produce_files(
    settings: Settings,
    names: TopicNames,
    tickets: Path | None,
    counts: Path | None,
    rejects: Path,
    progress: Callable[[int], None],
    shifts: Path | None = None,
) -> tuple[int, int]:
    """Validate and produce the files (either may be None); invalid lines are appended to ``rejects``."""
    from tillflow.sender import RecordSender

    sent = rejected = 0
    with RecordSender(settings) as sender, rejects.open("a", encoding="utf-8") as bad:
        for path, topic, model, target in (
            (tickets, POS_TICKETS, PosTicket, names.tickets),
            (counts, CAMERA_COUNTS, CameraCount, names.counts),
            (shifts, STAFF_SHIFTS, StaffShift, OpsTopicNames.of(names).shifts),
        ):
            if path is None:
                continue
            serde = sender.serde(topic)
            for number, _text, record in read_numbered(path, model):
                if isinstance(record, Reject):
                    bad.write(json.dumps({"file": str(path), "line": number, "error": record.reason}) + "\n")
                    rejected += 1
                    continue
                sender.send_raw(target, record.store_id.encode(), serde.encode(record))  # type: ignore[attr-defined]
                sent += 1
                if sent % 5000 == 0:
                    progress(5000)
        progress(sent % 5000)
    return sent, rejected


def _committed(consumer: Consumer, topic: str, partitions: int) -> list[int]:
    tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    return [max(tp.offset, 0) for tp in tps]


def _ends(consumer: Consumer, topic: str, partitions: int) -> list[int]:
    return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)]


def _wait(
    what: str,
    consumer: Consumer,
    topic: str,
    targets: list[int],
    worker: subprocess.Popen[bytes],
    deadline: float,
    log: Path,
) -> None:
    while True:
        done = _committed(consumer, topic, len(targets))
        if all(d >= t for d, t in zip(done, targets, strict=True)):
            return
        if worker.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise ReplayError(f"the worker exited with code {worker.returncode} while {what}; {log}:\n{tail}")
        if time.monotonic() > deadline:
            raise ReplayError(f"timed out while {what}: committed {done}, expected {targets}")
        time.sleep(0.3)


def _read_all(settings: Settings, topic: str, partitions: int, serde: TopicSerde) -> list[dict[str, Any]]:
    consumer = Consumer(consumer_config(settings, f"replay-reader-{uuid.uuid4().hex}"))
    try:
        ends = _ends(consumer, topic, partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: list[dict[str, Any]] = []
        left = {p for p in range(partitions) if ends[p] > 0}
        while left:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise ReplayError(f"reading {topic}: {msg.error()}")
            out.append(serde.decode(msg.value()))
            partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
            if offset + 1 >= ends[partition]:
                left.discard(partition)
        return out
    finally:
        consumer.close()


def run_topics(settings: Settings, names: TopicNames) -> list[str]:
    """Create a run's topics (inputs, outputs, dead letters, ticks, peers), all with the same partitions."""
    partitions = settings.topic_partitions
    admin = AdminClient(client_config(settings))
    wanted = {t: partitions for t in (names.tickets, names.counts, names.conversion, names.alerts)}
    wanted |= {f"{t}.dlq": partitions for t in (names.tickets, names.counts)}
    wanted |= {names.ticks: partitions, names.peers: partitions}
    ops = OpsTopicNames.of(names)
    wanted |= {ops.shifts: partitions, f"{ops.shifts}.dlq": partitions, ops.storeops: partitions}
    ensure_topics(admin, wanted, settings.topic_replication_factor)
    return list(wanted)


def start_worker(
    settings: Settings, catalogue_path: Path, app_id: str, prefix: str, log_path: Path
) -> subprocess.Popen[bytes]:
    """`tillflow worker` in a child process (own session) on a run's topics, configured for a replay."""
    ep = endpoints(settings)
    env = dict(os.environ)
    env.update(
        TILLFLOW_STREAMS_IDLE_CLOSE_S="1000000000",  # only the end-of-input tick closes hours in a replay
        TILLFLOW_STREAMS_STREAM_SKEW_S="0",  # the two inputs are read at different speeds: wait for both
        TILLFLOW_KAFKA_BOOTSTRAP=ep.bootstrap,
        TILLFLOW_REGISTRY_URL=ep.registry_url,
        TILLFLOW_TOPIC_PARTITIONS=str(settings.topic_partitions),
        TILLFLOW_STATE_DIR=str(settings.state_dir.resolve()),
        # One worker per run: static membership lets a worker restarted after a crash take its partitions
        # back at once (noida-db never evicts a dead member; issue 12 measured a 158 s wait and more).
        TILLFLOW_STREAMS_INSTANCE_ID=settings.streams_instance_id or f"{app_id}-worker",
    )
    cmd = [sys.executable, "-m", "tillflow", "worker", "--stores", str(catalogue_path), "--app-id", app_id]
    cmd += ["--topic-prefix", prefix]
    with log_path.open("ab") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_processed(
    settings: Settings,
    names: TopicNames,
    worker: subprocess.Popen[bytes],
    log_path: Path,
    deadline: float,
    *,
    close_all: bool,
) -> None:
    """Wait until the worker committed everything in both inputs; with ``close_all``, close every hour too."""
    partitions = settings.topic_partitions
    consumer = Consumer(consumer_config(settings, names.app_id))
    try:
        ops = OpsTopicNames.of(names)
        for topic in (names.tickets, names.counts, ops.shifts):
            ends = _ends(consumer, topic, partitions)
            _wait(f"processing {topic}", consumer, topic, ends, worker, deadline, log_path)
        if close_all:
            offsets = _send_end_ticks(settings, names.ticks, partitions)
            _wait("closing every hour", consumer, names.ticks, [o + 1 for o in offsets], worker, deadline, log_path)
            ends = _ends(consumer, names.peers, partitions)
            _wait("confirming peers", consumer, names.peers, ends, worker, deadline, log_path)
        ends = _ends(consumer, names.conversion, partitions)
        _wait("store operations", consumer, names.conversion, ends, worker, deadline, log_path)
    finally:
        consumer.close()


def read_outputs(settings: Settings, names: TopicNames) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every record of a run's conversion and alerts topics, decoded."""
    registry = registry_from_settings(settings)
    partitions = settings.topic_partitions
    conversions = _read_all(settings, names.conversion, partitions, TopicSerde(registry, CONVERSION_HOURLY))
    alerts = _read_all(settings, names.alerts, partitions, TopicSerde(registry, ALERTS))
    return conversions, alerts


def read_ops(settings: Settings, names: TopicNames) -> list[dict[str, Any]]:
    """Every record of a run's storeops.hourly topic, decoded."""
    registry = registry_from_settings(settings)
    topic = OpsTopicNames.of(names).storeops
    return _read_all(settings, topic, settings.topic_partitions, TopicSerde(registry, STOREOPS_HOURLY))


def replay(
    settings: Settings,
    catalogue_path: Path,
    catalogue: Catalogue,
    tickets: Path,
    counts: Path,
    out_dir: Path,
    *,
    timeout: float = 900.0,
    progress: Callable[[int], None] = lambda n: None,
    late: Sequence[tuple[Path | None, Path | None]] = (),
    shifts: Path | None = None,
) -> ReplayResult:
    """Run the pipeline over the files and write the outputs; see the module docstring.

    ``late`` holds (tickets, counts) deliveries that arrive after everything before them was processed,
    as a store's export that comes in a day late: their hours are closed by then, so they are corrections.
    """
    run_id = uuid.uuid4().hex[:10]
    app_id = f"tillflow-replay-{run_id}"
    prefix = f"replay.{run_id}."
    names = TopicNames.build(app_id, prefix)
    out_dir.mkdir(parents=True, exist_ok=True)
    rejects = out_dir / "rejects.jsonl"
    rejects.unlink(missing_ok=True)
    topics = run_topics(settings, names)
    produced, rejected = produce_files(settings, names, tickets, counts, rejects, progress, shifts)
    log_path = out_dir / "worker.log"
    worker = start_worker(settings, catalogue_path, app_id, prefix, log_path)
    deadline = time.monotonic() + timeout
    try:
        for late_tickets, late_counts in late:
            wait_processed(settings, names, worker, log_path, deadline, close_all=False)
            sent, bad = produce_files(settings, names, late_tickets, late_counts, rejects, progress)
            produced, rejected = produced + sent, rejected + bad
        wait_processed(settings, names, worker, log_path, deadline, close_all=True)
    finally:
        stop_worker(worker)
    conversions, alerts = read_outputs(settings, names)
    ops = latest_ops(read_ops(settings, names))
    write_jsonl(out_dir / "storeops.jsonl", [OpsHourly.model_validate(r).to_json() for r in ops])
    finals = latest_finals(conversions)
    latest_alerts = {a["alert_id"]: a for a in alerts}
    write_jsonl(out_dir / "conversion.jsonl", [HourlyConversion.model_validate(r).to_json() for r in finals])
    ordered = sorted(latest_alerts.values(), key=lambda a: (a["hour_start"], a["store_id"], a["kind"]))
    write_jsonl(out_dir / "alerts.jsonl", [Alert.model_validate(a).to_json() for a in ordered])
    tables = ("hours", "stores", "partitions", "history", "retained", "peer_groups", "ops_hours", "ops_stores")
    AdminClient(client_config(settings)).delete_topics(
        [*topics, *(f"{app_id}-{t}-changelog" for t in tables)], operation_timeout=10
    )
    return ReplayResult(finals, ordered, produced, rejected, run_id, ops)


def latest_finals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest final revision of every store-zone-hour, ordered by store, zone and hour."""
    latest: dict[tuple[str, str, int], dict[str, Any]] = {}
    for rec in records:
        if not rec["is_final"]:
            continue
        start = rec["hour_start"]
        start_ms = start if isinstance(start, int) else int(start.timestamp() * 1000)
        key = (rec["store_id"], rec["zone_id"] or "", start_ms)
        if key not in latest or rec["revision"] >= latest[key]["revision"]:
            latest[key] = rec
    return [latest[k] for k in sorted(latest)]


def latest_ops(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest revision of every (store, grain, dimension, hour) of storeops.hourly."""
    latest: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for rec in records:
        start = rec["hour_start"]
        start_ms = start if isinstance(start, int) else int(start.timestamp() * 1000)
        key = (rec["store_id"], str(rec["grain"]), rec["dimension"], start_ms)
        if key not in latest or rec["revision"] >= latest[key]["revision"]:
            latest[key] = rec
    return [latest[k] for k in sorted(latest)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")


def _send_end_ticks(settings: Settings, topic: str, partitions: int) -> list[int]:
    producer = Producer(producer_config(settings))
    offsets = [-1] * partitions

    def delivered(err: Any, msg: Any) -> None:
        if err is None:
            offsets[msg.partition()] = msg.offset()

    value = json.dumps({"now": int(time.time() * 1000), "close_all": True}).encode()
    for p in range(partitions):
        producer.produce(topic, value=value, partition=p, on_delivery=delivered)
    producer.flush(30)
    if min(offsets) < 0:
        raise ReplayError(f"the broker did not acknowledge the end-of-input ticks on {topic}")
    return offsets


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
