"""Measurement: what the local broker (noida-db) keeps of what it acknowledged when it is killed.

Run: ``python -m bench.broker_durability [--seconds S] [--repeats R]``. For each way of stopping the broker
(``kill -9`` while records are in flight, ``kill -9`` a given time after the last acknowledgement, and a
graceful SIGTERM), R runs each: a broker on a fresh data directory, an idempotent acks=all producer sending
numbered records as fast as they are acknowledged for S seconds, the stop, a restart on the same data
directory and port, and a read of everything. Prints acknowledged records and how many of them are gone
(median and worst of the runs). The baseline is the graceful stop, which must lose nothing.

noida-db 0.2.3 keeps its whole Kafka state in memory and rewrites it to ``<data dir>/kafka.json`` (written to
``kafka.tmp``, then renamed; never fsynced) about once a second while it changes: a kill -9 loses what was
acknowledged since the last rewrite, and an operating-system crash can lose more. It has no setting for that.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tillflow.devstack import broker_binary, free_port, kafka_healthy


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    args = [str(broker_binary()), "start", "--data-dir", str(data_dir), "--host", "127.0.0.1"]
    cmd = [*args, "--only", "kafka", "--kafka-port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not kafka_healthy(f"127.0.0.1:{port}", timeout=1.0):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the broker did not start")
        time.sleep(0.1)
    return proc


def run(stop: str, seconds: float, wait: float, root: Path) -> tuple[int, int]:
    """(acknowledged, acknowledged and gone after the restart) for one run."""
    port = free_port()
    data = Path(tempfile.mkdtemp(dir=root))
    broker = _start(data, port)
    bootstrap = f"127.0.0.1:{port}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("probe", 3, 1)])["probe"].result()
    acked: set[int] = set()
    lock = threading.Lock()

    def delivered(err: object, msg: object) -> None:
        if err is None:
            with lock:
                acked.add(int(msg.value()))  # type: ignore[attr-defined]

    conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    producer = Producer({**conf, "message.timeout.ms": 3000, "log_level": 0})
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        try:
            producer.produce("probe", str(sent).encode(), key=str(sent % 97).encode(), on_delivery=delivered)
            sent += 1
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    if wait:
        producer.flush(10)
        time.sleep(wait)
    broker.send_signal(9 if stop == "kill" else 15)
    broker.wait()
    producer.flush(4)
    broker = _start(data, port)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe-reader", "enable.partition.eof": True})
    consumer.assign([TopicPartition("probe", p, 0) for p in range(3)])
    seen: set[int] = set()
    ends, deadline = 0, time.monotonic() + 60
    while ends < 3 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            ends += 1
        else:
            seen.add(int(msg.value() or b"-1"))
    consumer.close()
    broker.terminate()
    broker.wait()
    return len(acked), len(acked - seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of producing before the stop")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = [
        ("kill", 0.0, "kill -9 while producing"),
        ("kill", 0.3, "kill -9 0.3 s after the last ack"),
        ("kill", 2.0, "kill -9 2 s after the last ack"),
        ("term", 0.0, "SIGTERM while producing (baseline)"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'stop':36} {'acknowledged (median)':>22} {'lost: median':>13} {'worst':>7} {'worst %':>8}")
        for stop, wait, label in cases:
            results = [run(stop, args.seconds, wait, Path(tmp)) for _ in range(args.repeats)]
            lost = [gone for _, gone in results]
            worst = max(results, key=lambda r: r[1])
            share = 100 * worst[1] / max(1, worst[0])
            acks = statistics.median(a for a, _ in results)
            print(f"{label:36} {acks:>22,.0f} {statistics.median(lost):>13,.0f} {max(lost):>7,} {share:>7.1f}%")


if __name__ == "__main__":
    main()
