"""Benchmark: one simulated day of a 200-store estate through produce -> worker -> sink, at full speed.

Run: ``python -m bench.e2e [--stores 200] [--fps 0.01] [--days 1]``. Starts the local stack in a temporary
directory; the estate is the demo catalogue's stores cloned to ``--stores`` (same time zones, hours and
cameras; malls of at most six tenants). The producers' simulator makes the day (``--fps`` frames per second
per camera), then each stage runs alone, timed, in a fresh process or consumer group:

1. produce: every simulated record, Avro, to the input topics (RecordSender, as the producers do);
2. worker: one `tillflow worker` process until it committed every input record (events/s from its own
   count of events processed, startup excluded), then the end-of-input ticks close every hour;
3. sink: the ClickHouse sink (chDB) over the inputs and the worker's outputs until idle.

Then ClickHouse is checked against the batch recompute (streams/batch.py) of the same records: distinct
tickets and frames, final store-hours, and the day's visitors and transactions must all match. The worker's
resident memory is sampled as it goes (first, max, end); with ``--days 7`` that shows whether it stays flat
over a week.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.streams_throughput import _events_counted, _free_port
from schemas.models import CameraCount, PosTicket
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from tillflow.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "deploy" / "catalogue" / "demo-estate.yaml"


def estate(stores: int, path: Path) -> Path:
    """The demo catalogue's stores cloned to ``stores`` stores (ids suffixed), written to ``path``."""
    demo = yaml.safe_load(DEMO.read_text())
    base, cams = demo["stores"], demo["cameras"]
    out_stores, out_cams = [], []
    for k in range(stores):
        store = dict(base[k % len(base)])
        suffix = f"-{k:03d}"
        old = store["id"]
        store["id"] = old + suffix
        store["name"] = f"{store['name']} #{k}"
        if store.get("mall_id"):
            store["mall_id"] = f"{store['mall_id']}-{k // len(base)}"
        out_stores.append(store)
        for cam in cams:
            if cam["store_id"] == old:
                out_cams.append({**cam, "id": cam["id"] + suffix, "store_id": store["id"]})
    path.write_text(yaml.safe_dump({"stores": out_stores, "cameras": out_cams}, sort_keys=False))
    return path


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e")
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--fps", type=float, default=0.01)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args(argv or [])

    from confluent_kafka import Consumer

    from producers.simulator import SimulationConfig, simulate
    from schemas.catalogue import load_catalogue
    from sinks.clickhouse.migrate import load_stores, migrate
    from sinks.clickhouse.service import build_sink
    from streams.batch import recompute
    from streams.replay import _committed, run_topics, start_worker, stop_worker, wait_processed
    from streams.topics import TopicNames
    from tillflow.clickhouse import connect
    from tillflow.devstack import down, up
    from tillflow.kafka import consumer_config
    from tillflow.sender import RecordSender

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        catalogue_path = estate(args.stores, tmpdir / "estate.yaml")
        catalogue = load_catalogue(catalogue_path)
        settings = Settings(
            state_dir=tmpdir / "stack",
            catalogue=catalogue_path,
            topic_partitions=args.partitions,
            clickhouse_database=f"e2e_{uuid.uuid4().hex[:6]}",
        )
        up(settings, timeout=60)
        try:
            app_id = f"e2e-{uuid.uuid4().hex[:6]}"
            prefix = f"e2e.{app_id}."
            names = TopicNames.build(app_id, prefix)
            run_topics(settings, names)

            started = time.perf_counter()
            # Recent days: camera_frames keeps 35 days (TTL), older frames would be dropped on insert.
            start = (datetime.now(UTC) - timedelta(days=args.days + 1)).date()
            config = SimulationConfig(seed=1, start=start, days=args.days, fps=args.fps)
            events = list(simulate(catalogue, config))
            simulated = time.perf_counter() - started
            tickets = [e.record for e in events if isinstance(e.record, PosTicket)]
            frames = [e.record for e in events if isinstance(e.record, CameraCount)]

            started = time.perf_counter()
            with RecordSender(settings) as sender:
                serdes = {t: sender.serde(t) for t in (POS_TICKETS, CAMERA_COUNTS)}
                for e in events:
                    target = names.tickets if e.topic == POS_TICKETS else names.counts
                    sender.send_raw(target, e.record.store_id.encode(), serdes[e.topic].encode(e.record))
            produce_s = time.perf_counter() - started

            log = tmpdir / "worker.log"
            port = _free_port()
            os.environ["TILLFLOW_METRICS_PORT"] = str(port)  # the worker's own event count (start_worker's env)
            try:
                worker = start_worker(settings, catalogue_path, app_id, prefix, log)
            finally:
                del os.environ["TILLFLOW_METRICS_PORT"]
            watch = Consumer(consumer_config(settings, app_id))
            samples: list[tuple[float, float, float]] = []
            try:
                deadline = time.monotonic() + 3600
                total = len(events)
                while time.monotonic() < deadline and worker.poll() is None:
                    done = sum(_committed(watch, names.tickets, args.partitions))
                    done += sum(_committed(watch, names.counts, args.partitions))
                    samples.append((time.perf_counter(), _events_counted(port), rss_mb(worker.pid)))
                    if done >= total:
                        break
                    time.sleep(0.2)
                # The worker's own count: from the last sample before it counted anything to the first that
                # saw every event (startup and the commit interval excluded).
                first = next((samples[i - 1] for i, s in enumerate(samples) if s[1] > 0 and i > 0), samples[0])
                last = next((s for s in samples if s[1] >= total), samples[-1])
                worker_eps = (last[1] - first[1]) / max(last[0] - first[0], 1e-9)
                wait_processed(settings, names, worker, log, time.monotonic() + 600, close_all=True)
                rss_end = rss_mb(worker.pid)
            finally:
                watch.close()
                stop_worker(worker)

            client = connect(settings, create=True)
            migrate(client)
            load_stores(client, catalogue)
            topics = {
                names.tickets: POS_TICKETS,
                names.counts: CAMERA_COUNTS,
                names.conversion: CONVERSION_HOURLY,
                names.alerts: ALERTS,
            }
            sink = build_sink(settings.model_copy(update={"sink_group_id": f"{app_id}-sink"}), client, topics)
            sink.consumer.subscribe(list(topics))
            sink_start = last_data = None
            idle_since = time.monotonic()
            while time.monotonic() - idle_since < 5.0:
                if sink.poll_once(0.5):
                    sink_start = sink_start or time.perf_counter()
                    idle_since = time.monotonic()
                    last_data = time.perf_counter()
            sink.flush()
            sink_s = (last_data or 0.0) - (sink_start or 0.0)
            sink.close()
            sink.consumer.close()

            def scalar(sql: str) -> Any:
                return client.query(sql).result_rows[0][0]

            batch = recompute(catalogue, [t.to_json() for t in tickets], [f.to_json() for f in frames])
            stores_batch = {cell: c for cell, c in batch.items() if cell[1] is None}
            checks = {
                "tickets": (
                    scalar("SELECT count() FROM tickets FINAL"),
                    len({(t.store_id, t.ticket_id) for t in tickets}),
                ),
                "frames": (
                    scalar("SELECT count() FROM camera_frames FINAL"),
                    len({(f.camera_id, f.frame_seq) for f in frames}),
                ),
                "store-hours": (
                    scalar("SELECT count() FROM conversion_hourly FINAL WHERE zone_id = '' AND is_final"),
                    len(stores_batch),
                ),
                "visitors": (
                    scalar("SELECT sum(visitors) FROM conversion_hourly FINAL WHERE zone_id = '' AND is_final"),
                    int(sum(c["visitors"] for c in stores_batch.values())),
                ),
                "transactions": (
                    scalar("SELECT sum(transactions) FROM conversion_hourly FINAL WHERE zone_id = '' AND is_final"),
                    int(sum(c["transactions"] for c in stores_batch.values())),
                ),
            }
        finally:
            down(settings)

    total = len(events)
    print(f"{args.stores} stores, {args.days} day(s) at fps {args.fps}: {len(tickets):,} tickets + {len(frames):,} "
          f"frames = {total:,} events ({args.partitions} partitions); simulated in {simulated:.1f}s")  # fmt: skip
    print(f"  produce  {total / produce_s:>10,.0f} events/s")
    print(f"  worker   {worker_eps:>10,.0f} events/s  (1 process, its own count of events processed)")
    print(f"  sink     {sink.stats.consumed / max(sink_s, 1e-9):>10,.0f} records/s  ({sink.stats.consumed:,} records: "
          f"inputs + {sink.stats.consumed - total:,} outputs)")  # fmt: skip
    rss = [s[2] for s in samples if s[1] > 0]
    if rss:
        print(f"  worker RSS MB: first {rss[0]:.0f}, median {sorted(rss)[len(rss) // 2]:.0f}, max {max(rss):.0f}, "
              f"end {rss_end:.0f}")  # fmt: skip
    ok = True
    for name, (got, want) in checks.items():
        ok &= got == want
        print(f"  ClickHouse {name:<13} {got:>10,}  batch recompute {want:>10,}  {'ok' if got == want else 'MISMATCH'}")
    print(json.dumps({"events": total, "produce_eps": total / produce_s, "worker_eps": worker_eps,
                      "sink_rps": sink.stats.consumed / max(sink_s, 1e-9),
                      "worker_rss_mb": {"first": rss[0], "max": max(rss), "end": rss_end} if rss else None,
                      "checks": checks,
                      "peak_rss_bench_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))  # fmt: skip
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
