"""Benchmark: the streams worker on the real local broker, next to a raw consume-and-decode baseline.

Run: ``python -m bench.streams_throughput [--events N] [--rate R] [--seconds S] [--profile FILE]``. Starts a fresh local
stack (noida-db + the local registry) in a temporary directory.

1. Throughput: N mixed events (camera frames and tickets, Avro, keyed by store, co-partitioned) are
   produced first; then (a) a raw aiokafka loop consumes and decodes them (the baseline: what Kafka and
   fastavro alone cost in Python), (b) the engine alone in-process, (c) a Faust worker whose agent does
   nothing (bench._faust_floor: Faust's own per-record cost, the ceiling of any Faust agent), as released
   and with tillflow's hand-off (streams/transport.py), and (d) one `tillflow worker` process (one core);
   (c) and (d) are rated from their committed offsets.
2. Latency: events at a fixed rate R for S seconds with event time = now; a probe store gets one ticket
   every 20 ms and the time from producing probe k to the first conversion.hourly update counting it is
   the end-to-end latency (p50/p99). Live updates are not throttled here (throttling adds up to
   ``streams_live_throttle_s`` by design).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.catalogue import load_catalogue
from schemas.serde import TopicSerde
from schemas.topics import CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from tillflow.kafka import (
    client_config,
    consumer_config,
    endpoints,
    ensure_topics,
    producer_config,
    registry_from_settings,
)
from tillflow.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "deploy" / "catalogue" / "demo-estate.yaml"
PROBE_STORE = "wg-volt"


class Gen:
    """Mixed events of the demo estate: 6 frames per ticket, unique ids, event times from ``start_ms``."""

    def __init__(self, settings: Settings, start_ms: int, skip: str | None = None) -> None:
        catalogue = load_catalogue(CATALOGUE)
        registry = registry_from_settings(settings)
        self.tickets = TopicSerde(registry, POS_TICKETS)
        self.counts = TopicSerde(registry, CAMERA_COUNTS)
        self.cams = [c for c in catalogue.cameras if c.store_id != skip]
        self.stores = [s for s in catalogue.stores if s.id != skip]
        self.seq = {c.id: 0 for c in catalogue.cameras}
        self.n = 0
        self.t = start_ms
        self.rng = random.Random(1)

    def ticket(self, store_id: str, currency: str, at: int) -> bytes:
        self.n += 1
        net = self.rng.randrange(500, 9000)
        return self.tickets.encode(
            {
                "ticket_id": f"b{self.n}",
                "source": "bench",
                "store_id": store_id,
                "tenant_id": None,
                "terminal_id": None,
                "kind": "SALE",
                "occurred_at": at,
                "currency": currency,
                "gross_amount": net,
                "net_amount": net,
                "tax_amount": 0,
                "discount_amount": 0,
                "payments": [{"method": "CARD", "amount": net}],
                "channel": "IN_STORE",
                "lines": [
                    {
                        "sku": "A",
                        "description": None,
                        "quantity": 1.0,
                        "unit_price": net,
                        "discount_amount": 0,
                        "net_amount": net,
                        "category": None,
                    }
                ],
                "original_ticket_id": None,
                "ingested_at": at,
            }
        )

    def next(self, at: int | None = None) -> tuple[str, bytes, bytes]:
        self.n += 1
        if at is None:
            self.t += 20
            at = self.t
        if self.n % 7 == 0:
            store = self.stores[self.n % len(self.stores)]
            return POS_TICKETS, store.id.encode(), self.ticket(store.id, store.currency, at)
        cam = self.cams[self.n % len(self.cams)]
        self.seq[cam.id] += 1
        value = self.counts.encode(
            {
                "camera_id": cam.id,
                "store_id": cam.store_id,
                "zone_id": cam.zone_id,
                "frame_ts": at,
                "frame_seq": self.seq[cam.id],
                "people_in_frame": 1,
                "entries": self.n % 3 == 0,
                "exits": self.n % 4 == 0,
                "detector": "bench",
            }
        )
        return CAMERA_COUNTS, cam.store_id.encode(), value


def _topics(settings: Settings, prefix: str) -> None:
    admin = AdminClient(client_config(settings))
    p = settings.topic_partitions
    names = [prefix + t for t in (POS_TICKETS, CAMERA_COUNTS, CONVERSION_HOURLY, "alerts")]
    ensure_topics(admin, {n: p for n in names}, 1)


def _worker(
    settings: Settings, app_id: str, prefix: str, log: Path, profile: Path | None = None, **env: str
) -> subprocess.Popen[bytes]:
    ep = endpoints(settings)
    environ = dict(
        os.environ,
        TILLFLOW_KAFKA_BOOTSTRAP=ep.bootstrap,
        TILLFLOW_REGISTRY_URL=ep.registry_url,
        TILLFLOW_TOPIC_PARTITIONS=str(settings.topic_partitions),
        TILLFLOW_STATE_DIR=str(log.parent / "worker-state"),
        **env,
    )
    cmd = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else [])]
    cmd += ["-m", "tillflow", "worker", "--stores", str(CATALOGUE), "--app-id", app_id, "--topic-prefix", prefix]
    return subprocess.Popen(cmd, env=environ, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _faust_floor(
    settings: Settings, app_id: str, prefix: str, log: Path, transport: str, total: int
) -> subprocess.Popen[bytes]:
    """bench._faust_floor: a Faust worker with a no-op agent on the same topics (``stock``, ``tillflow`` or
    ``batched``, the last only with the batched transport of branch throughput); it prints its own rate
    once ``total`` records went through."""
    cmd = [sys.executable, "-m", "bench._faust_floor", endpoints(settings).bootstrap, app_id, prefix]
    cmd += [str(settings.topic_partitions), transport, str(log.parent / f"faust-floor-{app_id}"), str(total)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _floor_rate(settings: Settings, prefix: str, events: int, tmp: Path, transport: str) -> float:
    """Records/s the no-op agent reports (from its first record on); its committed offsets tell when it is done."""
    log = tmp / f"faust-floor-{transport}.log"
    committed = _committed_rate(
        settings, prefix, events, lambda a: _faust_floor(settings, a, prefix, log, transport, events)
    )
    reported = re.findall(r"FLOOR (\d+)", log.read_text(errors="replace"))
    return float(reported[-1]) if reported else committed


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _raw_baseline(settings: Settings, prefix: str, total: int) -> float:
    from aiokafka import AIOKafkaConsumer

    registry = registry_from_settings(settings)
    serdes = {
        prefix + POS_TICKETS: TopicSerde(registry, POS_TICKETS),
        prefix + CAMERA_COUNTS: TopicSerde(registry, CAMERA_COUNTS),
    }

    async def run() -> float:
        consumer = AIOKafkaConsumer(
            *serdes,
            bootstrap_servers=endpoints(settings).bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        try:
            seen = 0
            start = None
            while seen < total:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                if start is None and batch:
                    start = time.perf_counter()
                for tp, records in batch.items():
                    serde = serdes[tp.topic]
                    for record in records:
                        serde.decode(record.value)
                    seen += len(records)
            return seen / (time.perf_counter() - (start or time.perf_counter()))
        finally:
            await consumer.stop()

    return asyncio.run(run())


def _committed_total(consumer: Consumer, topics: list[str], partitions: int) -> int:
    tps = consumer.committed([TopicPartition(t, p) for t in topics for p in range(partitions)], timeout=10)
    return sum(max(tp.offset, 0) for tp in tps)


def throughput(settings: Settings, events: int, tmp: Path, profile: Path | None = None) -> dict[str, float]:
    prefix = f"bench.{uuid.uuid4().hex[:6]}."
    _topics(settings, prefix)
    gen = Gen(settings, start_ms=int(time.time() * 1000) - 3 * 24 * 3_600_000)
    producer = Producer(producer_config(settings))
    produced: list[tuple[str, bytes, bytes]] = []
    for _ in range(events):
        topic, key, value = gen.next()
        produced.append((topic, key, value))
        while True:
            try:
                producer.produce(prefix + topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)
    baseline = statistics.median(_raw_baseline(settings, prefix, events) for _ in range(3))
    engine = statistics.median(_engine_only(settings, produced) for _ in range(3))
    floor = _floor_rate(settings, prefix, events, tmp, "stock")
    handoff = _floor_rate(settings, prefix, events, tmp, "tillflow")
    batched_floor = _floor_rate(settings, prefix, events, tmp, "batched")
    worker = _worker_rate(settings, prefix, events, tmp, profile, batched=False)
    batched = _worker_rate(settings, prefix, events, tmp, profile and profile.with_suffix(".batched"), batched=True)
    rates = {
        "worker_eps": worker,
        "batched_worker_eps": batched,
        "faust_floor_eps": floor,
        "handoff_floor_eps": handoff,
    }
    rates |= {"batched_floor_eps": batched_floor, "raw_eps": baseline, "engine_eps": engine}
    return {"events": float(events), **rates}


def _worker_rate(settings: Settings, prefix: str, events: int, tmp: Path, profile: Path | None, batched: bool) -> float:
    """Events/s of one ``tillflow worker`` process over the produced input, per-record or batched transport."""
    port = _free_port()
    counted: list[tuple[float, float]] = []
    worker = _committed_rate(
        settings,
        prefix,
        events,
        lambda app_id: _worker(
            settings,
            app_id,
            prefix,
            tmp / f"throughput-worker{'-batched' if batched else ''}.log",
            profile,
            TILLFLOW_STREAMS_STREAM_SKEW_S="0",
            TILLFLOW_STREAMS_IDLE_CLOSE_S="1000000",
            TILLFLOW_METRICS_PORT=str(port),
            TILLFLOW_STREAMS_BATCHED_TRANSPORT=str(batched).lower(),
        ),
        lambda: counted.append((time.perf_counter(), _events_counted(port))),
    )
    # The worker's own count of events processed (its /metrics), sampled with the commits: from the last sample
    # before it counted anything to the first that saw every event. Commits come every few seconds, too coarse
    # to time a worker that is done within a few commit intervals.
    begin = next((counted[i - 1] for i, c in enumerate(counted) if c[1] > 0 and i > 0), None)
    end = next((c for c in counted if c[1] >= events), None)
    if begin is not None and end is not None and end[0] > begin[0]:
        worker = (end[1] - begin[1]) / (end[0] - begin[0])
    return worker


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _events_counted(port: int) -> float:
    """``tillflow_streams_events_total`` of a worker, summed over topics (0 while its /metrics is not up)."""
    import urllib.request

    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("tillflow_streams_events_total{")
    )


def _committed_rate(
    settings: Settings,
    prefix: str,
    events: int,
    start: Callable[[str], subprocess.Popen[bytes]],
    sample: Callable[[], object] | None = None,
) -> float:
    """Events/s of a consumer-group process over the inputs, from its committed offsets (startup excluded)."""
    app_id = f"bench-{uuid.uuid4().hex[:6]}"
    proc = start(app_id)
    consumer = Consumer(consumer_config(settings, app_id))
    topics = [prefix + POS_TICKETS, prefix + CAMERA_COUNTS]
    samples: list[tuple[float, int]] = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = _committed_total(consumer, topics, settings.topic_partitions)
            samples.append((time.perf_counter(), done))
            if sample is not None:
                sample()
            if done >= events or proc.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        consumer.close()
        _stop(proc)
    # The first commit already covers some work; count from it (the startup is not processing).
    started = next((s for s in samples if s[1] > 0), samples[-1])
    end = samples[-1]
    return (end[1] - started[1]) / (end[0] - started[0]) if end[0] > started[0] else 0.0


def _engine_only(settings: Settings, produced: list[tuple[str, bytes, bytes]]) -> float:
    """The processor (decode, engine, encode) in-process on the same records, state in dicts: no Kafka, no Faust."""
    from streams.engine import StreamConfig
    from streams.processor import Processor, Raw
    from streams.tables import Tables
    from streams.topics import TopicNames

    registry = registry_from_settings(settings)
    serdes = {t: TopicSerde(registry, t) for t in (POS_TICKETS, CAMERA_COUNTS, CONVERSION_HOURLY, "alerts")}
    names = TopicNames.build("engine-only")
    proc = Processor(load_catalogue(CATALOGUE), StreamConfig(stream_skew_ms=None), names, serdes, Tables.in_memory(), 1)
    raws = [
        Raw(names.tickets if t == POS_TICKETS else names.counts, 0, i, k, v) for i, (t, k, v) in enumerate(produced)
    ]
    start = time.perf_counter()
    now = int(time.time() * 1000)
    for i in range(0, len(raws), 2000):
        proc.process(0, raws[i : i + 2000], now)
    return len(raws) / (time.perf_counter() - start)


def latency(settings: Settings, rate: int, seconds: float, tmp: Path, batched: bool = False) -> dict[str, float]:
    run = uuid.uuid4().hex[:6]
    prefix, app_id = f"bench.{run}.", f"bench-{run}"
    _topics(settings, prefix)
    worker = _worker(
        settings,
        app_id,
        prefix,
        tmp / f"latency-worker{'-batched' if batched else ''}.log",
        TILLFLOW_STREAMS_LIVE_THROTTLE_S="0",
        TILLFLOW_STREAMS_BATCHED_TRANSPORT=str(batched).lower(),
    )
    registry = registry_from_settings(settings)
    conversion = TopicSerde(registry, CONVERSION_HOURLY)
    seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def watch() -> None:
        consumer = Consumer(consumer_config(settings, f"bench-watch-{run}"))
        consumer.subscribe([prefix + CONVERSION_HOURLY])
        while not stop.is_set():
            msg = consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            if msg.key() == PROBE_STORE.encode():
                rec = conversion.decode(msg.value())
                if rec["zone_id"] is None:
                    seen.append((time.perf_counter(), rec["transactions"]))
        consumer.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    gen = Gen(settings, start_ms=0, skip=PROBE_STORE)
    producer = Producer({**producer_config(settings), "linger.ms": 2})
    probes: list[float] = []
    try:
        # Warm up until the worker answers, then measure.
        t_end = time.monotonic() + 120
        while not seen and time.monotonic() < t_end:
            now = int(time.time() * 1000)
            producer.produce(prefix + POS_TICKETS, key=PROBE_STORE.encode(), value=gen.ticket(PROBE_STORE, "EUR", now))
            probes.append(time.perf_counter())
            producer.flush(5)
            time.sleep(0.5)
        warm = len(probes)
        tick = 0.01
        per_tick = max(1, round(rate * tick))
        start = time.perf_counter()
        next_at = start
        sent = 0
        while time.perf_counter() - start < seconds:
            now = int(time.time() * 1000)
            for _ in range(per_tick):
                topic, key, value = gen.next(now)
                producer.produce(prefix + topic, value=value, key=key)
            sent += per_tick
            if int((time.perf_counter() - start) / 0.02) >= len(probes) - warm:
                producer.produce(
                    prefix + POS_TICKETS, key=PROBE_STORE.encode(), value=gen.ticket(PROBE_STORE, "EUR", now)
                )
                probes.append(time.perf_counter())
            producer.poll(0)
            next_at += tick
            time.sleep(max(0.0, next_at - time.perf_counter()))
        achieved = sent / (time.perf_counter() - start)
        producer.flush(30)
        time.sleep(3)
    finally:
        stop.set()
        watcher.join(5)
        _stop(worker)
    lat = []
    for k in range(warm + 1, len(probes) + 1):
        recv = next((t for t, count in seen if count >= k), None)
        if recv is not None:
            lat.append(recv - probes[k - 1])
    lat.sort()
    if not lat:
        return {"rate": achieved, "p50_ms": float("nan"), "p99_ms": float("nan"), "probes": 0.0}
    return {
        "rate": achieved,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "probes": float(len(lat)),
        "missing": float(len(probes) - warm - len(lat)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput part")
    parser.add_argument("--profile", type=Path, help="run the throughput workers under cProfile, stats to this file")
    parser.add_argument(
        "--transports",
        nargs="*",
        choices=("per-record", "batched"),
        default=["per-record", "batched"],
        help="the worker transports whose latency is measured, each in turn (none: skip the latency part)",
    )
    args = parser.parse_args(argv)
    from tillflow.devstack import down, up

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(state_dir=Path(tmp) / "stack", topic_partitions=args.partitions, catalogue=CATALOGUE)
        up(settings, timeout=60)
        try:
            t: dict[str, float] = {}
            if not args.latency_only:
                t = throughput(settings, args.events, Path(tmp), args.profile)
                print(f"throughput: {int(t['events'])} events (tickets + frames, Avro), {args.partitions} partitions")
                print(f"  raw aiokafka consume+decode  {t['raw_eps']:>10,.0f} events/s  (baseline, median of 3)")
                print(
                    f"  engine only, in-process      {t['engine_eps']:>10,.0f} events/s  "
                    "(decode + state + encode, dict state, no Kafka, median of 3)"
                )
                print(
                    f"  Faust no-op agent (1 proc.)  {t['faust_floor_eps']:>10,.0f} events/s  "
                    f"ratio {t['faust_floor_eps'] / t['raw_eps']:.2f}  (Faust's own per-record cost: the ceiling)"
                )
                print(
                    f"  same, tillflow hand-off      {t['handoff_floor_eps']:>10,.0f} events/s  "
                    f"ratio {t['handoff_floor_eps'] / t['faust_floor_eps']:.2f} of stock  (streams/transport.py)"
                )
                print(
                    f"  same, batched hand-off       {t['batched_floor_eps']:>10,.0f} events/s  "
                    f"ratio {t['batched_floor_eps'] / t['raw_eps']:.2f}  (one event per fetched batch of a partition)"
                )
                for key, label in (("worker_eps", "per-record"), ("batched_worker_eps", "batched")):
                    print(
                        f"  tillflow worker, {label:<11} {t[key]:>10,.0f} events/s  "
                        f"ratio {t[key] / t['raw_eps']:.2f} of raw, "
                        f"{t[key] / t['faust_floor_eps']:.1f}x the stock no-op agent  "
                        "(targets >= 20,000/s and >= 0.3 of raw)"
                    )
                for path in (args.profile, args.profile and args.profile.with_suffix(".batched")):
                    if path and path.exists():
                        import pstats

                        print(f"cProfile of the throughput worker ({path}), top by own time:")
                        pstats.Stats(str(path)).sort_stats("tottime").print_stats(15)
            lat: dict[str, dict[str, float]] = {}
            for mode in args.transports:
                lat[mode] = one = latency(settings, args.rate, args.seconds, Path(tmp), batched=mode == "batched")
                print(
                    f"latency, {mode} transport, at {one['rate']:,.0f} events/s for {args.seconds:.0f}s: produce -> "
                    f"conversion update p50 {one['p50_ms']:.0f} ms, p99 {one['p99_ms']:.0f} ms over "
                    f"{int(one['probes'])} probes (missing {int(one.get('missing', 0))}; target p99 < 1000 ms)"
                )
            print(json.dumps({"throughput": t, "latency": lat}))
        finally:
            down(settings)


if __name__ == "__main__":
    main(sys.argv[1:])
