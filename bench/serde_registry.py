"""Benchmark: Confluent-framed Avro encode/decode through TopicSerde, and the local registry's latency.

Run: ``python -m bench.serde_registry [--records N] [--repeats R]``. Starts the real local registry on a
free port in a temporary directory. Serde figures are records/s, medians of R runs, with a baseline
measured in the same run: bare ``fastavro.schemaless_writer``/``schemaless_reader`` on the same dicts,
so the ratio shows what the framing, the model conversion and the validation cost. Registry figures are
median and p95 milliseconds per HTTP request (register writes and fsyncs the state file).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import requests
from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.models import Payment, PaymentMethod, PosTicket, TicketKind, TicketLine
from schemas.serde import TopicSerde, parsed_schema
from schemas.topics import POS_TICKETS


def tickets(n: int) -> list[PosTicket]:
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    out = []
    for i in range(n):
        lines = tuple(
            TicketLine(sku=f"SKU-{i % 97}-{j}", quantity=1.0 + j, unit_price=199 + j, net_amount=(199 + j) * (1 + j))
            for j in range(1 + i % 4)
        )
        out.append(
            PosTicket(
                ticket_id=f"T-{i}",
                source="bench",
                store_id=f"S{i % 20}",
                kind=TicketKind.SALE,
                occurred_at=t0 + timedelta(seconds=i),
                currency="EUR",
                gross_amount=sum(line.net_amount for line in lines),
                net_amount=sum(line.net_amount for line in lines),
                tax_amount=0,
                discount_amount=0,
                payments=(Payment(method=PaymentMethod.CARD, amount=sum(line.net_amount for line in lines)),),
                lines=lines,
                ingested_at=t0 + timedelta(seconds=i, milliseconds=40),
            )
        )
    return out


def rate(fn: Callable[[], Any], count: int, repeats: int) -> float:
    """Median records per second of ``fn`` (which handles ``count`` records) over ``repeats`` runs."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(count / (time.perf_counter() - start))
    return statistics.median(runs)


def latency(fn: Callable[[int], Any], count: int) -> tuple[float, float]:
    """Median and p95 milliseconds of ``fn(i)`` for i in range(count)."""
    times = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)

    from tillflow.registry.process import RegistryProcess

    with tempfile.TemporaryDirectory() as tmp:
        server = RegistryProcess(Path(tmp) / "registry").start()
        try:
            client = SchemaRegistryClient({"url": server.url})
            serde = TopicSerde(client, POS_TICKETS)
            records = tickets(args.records)
            dicts = [r.to_avro() for r in records]
            schema = parsed_schema(PosTicket.avro_name)
            framed = [serde.encode(d) for d in dicts]

            def bare_write() -> None:
                for d in dicts:
                    buf = io.BytesIO()
                    fastavro.schemaless_writer(buf, schema, d)

            def bare_read() -> None:
                for data in framed:
                    fastavro.schemaless_reader(io.BytesIO(data[5:]), schema, schema)

            n, r = args.records, args.repeats
            figures = {
                "baseline fastavro write (rec/s)": rate(bare_write, n, r),
                "serde.encode(dict) (rec/s)": rate(lambda: [serde.encode(d) for d in dicts], n, r),
                "serde.encode(model) (rec/s)": rate(lambda: [serde.encode(m) for m in records], n, r),
                "baseline fastavro read (rec/s)": rate(bare_read, n, r),
                "serde.decode (rec/s)": rate(lambda: [serde.decode(b) for b in framed], n, r),
                "serde.decode_model (rec/s)": rate(lambda: [serde.decode_model(b) for b in framed], n, r),
            }
            for name, value in figures.items():
                print(f"{name:36s} {value:12,.0f}")
            base_w, base_r = figures["baseline fastavro write (rec/s)"], figures["baseline fastavro read (rec/s)"]
            print(f"{'encode(dict) / baseline write':36s} {figures['serde.encode(dict) (rec/s)'] / base_w:12.2f}")
            print(f"{'decode / baseline read':36s} {figures['serde.decode (rec/s)'] / base_r:12.2f}")
            print(f"{'avg framed record (bytes)':36s} {statistics.mean(len(b) for b in framed):12.1f}")

            session = requests.Session()
            headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}

            def register(i: int) -> None:
                body = {
                    "schema": json.dumps({"type": "record", "name": f"R{i}", "fields": [{"name": "a", "type": "int"}]})
                }
                response = session.post(f"{server.url}/subjects/bench-{i}-value/versions", json=body, headers=headers)
                response.raise_for_status()

            def by_id(i: int) -> None:
                session.get(f"{server.url}/schemas/ids/{1 + i % 50}").raise_for_status()

            def get_root(i: int) -> None:
                session.get(f"{server.url}/").raise_for_status()

            for name, fn in (
                ("GET / (HTTP baseline)", get_root),
                ("POST register (fsync)", register),
                ("GET /schemas/ids/{id}", by_id),
            ):
                median, p95 = latency(fn, args.requests)
                print(f"{name:36s} median {median:6.2f} ms   p95 {p95:6.2f} ms")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
