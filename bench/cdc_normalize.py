"""Change events per second through the CDC normalizer, against decoding the same events in the same run.

Input: Debezium JSON change events (JsonConverter, no schemas) of tickets with 3 lines and 1 payment, as
the raw topics carry them (bytes). Measured, each as the median of several rounds:

- baseline ``json.loads``: only decoding each event;
- ``normalize``: decoding + :class:`TicketAssembler` (assembly, mapping, PosTicket validation);
- ``normalize+avro``: the same, plus encoding each PosTicket in Avro as the sender does.

Then through a local broker (noida-db + the registry, started for the run): the raw events produced to the
raw topics, consumed once by a plain consumer (baseline), then by ``tillflow normalize``'s loop until every
ticket is acknowledged on pos.tickets and the offsets committed.

Run: ``python -m bench cdc_normalize`` (``--tickets N``, ``--rounds R``, ``--no-broker``).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path
from typing import Any

import fastavro

from producers.cdc.normalize import Emit, TicketAssembler
from producers.cdc.source import load_source
from schemas.serde import parsed_schema

SOURCE = Path(__file__).resolve().parent.parent / "deploy" / "connectors" / "pos-paris-postgres.yaml"


def make_events(tickets: int) -> list[tuple[str, bytes]]:
    """(role, JSON bytes) in commit order: per ticket one transaction of header, 3 lines, 1 payment."""
    events: list[tuple[str, bytes]] = []
    lsn, ts = 10_000, 1_795_000_000_000
    line_id = 0

    def envelope(after: dict[str, Any], tx: str) -> bytes:
        nonlocal lsn, ts
        lsn += 8
        ts += 1
        return json.dumps({
            "before": None, "after": after, "op": "c", "ts_ms": ts,
            "source": {"version": "3.6.3.Final", "connector": "postgresql", "name": "cdc.pos", "ts_ms": ts,
                       "snapshot": "false", "db": "pos", "schema": "public", "table": "t", "txId": lsn, "lsn": lsn},
            "transaction": {"id": tx, "total_order": 1, "data_collection_order": 1},
        }).encode()  # fmt: skip

    for tid in range(1, tickets + 1):
        tx = f"{tid}:{lsn}"
        events.append(("tickets", envelope({"id": tid, "till_no": 1 + tid % 4, "status": "closed",
            "closed_at": ts, "total_gross": "23.85", "total_net": "19.88", "total_tax": "3.97",
            "total_discount": "0.00"}, tx)))  # fmt: skip
        for sku, qty, price in (("TEA", "1.000", "3.2000"), ("CAKE", "2.000", "2.9500"), ("MILK", "3.000", "4.9167")):
            line_id += 1
            events.append(("lines", envelope({"id": line_id, "ticket_id": tid, "sku": sku, "label": sku.title(),
                "qty": qty, "unit_price": price, "discount": "0.00", "line_total": "7.95",
                "category": "grocery"}, tx)))  # fmt: skip
        events.append(("payments", envelope({"id": tid, "ticket_id": tid, "tender": "card", "amount": "23.85"}, tx)))
    return events


def decode_only(events: list[tuple[str, bytes]]) -> int:
    n = 0
    for _, data in events:
        json.loads(data)
        n += 1
    return n


def normalize(events: list[tuple[str, bytes]], encode: bool) -> int:
    asm = TicketAssembler(load_source(SOURCE), settle_s=1.0)
    schema = parsed_schema("pos_ticket")
    published = 0
    for i, (role, data) in enumerate(events):
        asm.apply(role, json.loads(data), now=i * 1e-6)
        if i % 500 == 499:
            for out in asm.tick(now=i * 1e-6 + 2.0):
                if isinstance(out, Emit):
                    published += 1
                    if encode:
                        fastavro.schemaless_writer(io.BytesIO(), schema, out.ticket.to_avro())
    for out in asm.tick(now=1e9):
        if isinstance(out, Emit):
            published += 1
            if encode:
                fastavro.schemaless_writer(io.BytesIO(), schema, out.ticket.to_avro())
    return published


def _rate(fn: Any, events: list[tuple[str, bytes]], rounds: int) -> tuple[float, Any]:
    rates, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn(events)
        rates.append(len(events) / (time.perf_counter() - start))
    return statistics.median(rates), result


def through_broker(events: list[tuple[str, bytes]], tickets: int) -> None:
    """Raw topics -> normalizer loop -> pos.tickets on a local broker, against plain consumption."""
    import tempfile

    from confluent_kafka import Consumer, Producer

    from producers.cdc.service import Normalizer
    from tillflow.devstack import down, up
    from tillflow.kafka import consumer_config, endpoints, producer_config
    from tillflow.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bench-cdc-") as state:
        settings = Settings(state_dir=Path(state), topic_partitions=3, cdc_settle_s=0.5)
        up(settings, timeout=60)
        try:
            source = load_source(SOURCE).model_copy(update={"converter": "json"})
            topics = source.raw_topics()
            bootstrap = endpoints(settings).bootstrap
            producer = Producer(producer_config(settings, bootstrap))
            for role, data in events:
                tid = json.loads(data)["after"]["id" if role == "tickets" else "ticket_id"]
                producer.produce(topics[role], value=data, key=json.dumps({"id": tid}).encode())
                producer.poll(0)
            producer.flush(60)

            consumer = Consumer(consumer_config(settings, "bench-baseline", bootstrap))
            consumer.subscribe(list(topics.values()))
            start, seen = time.perf_counter(), 0
            while seen < len(events):
                for msg in consumer.consume(500, 1.0):
                    if not msg.error():
                        json.loads(msg.value() or b"null")
                        seen += 1
            base = seen / (time.perf_counter() - start)
            consumer.close()

            normalizer = Normalizer(settings, source, group_id="bench-normalize")
            start = time.perf_counter()
            while normalizer.published < tickets:
                normalizer.step()
            elapsed = time.perf_counter() - start
            normalizer.close()
        finally:
            down(settings)
    rate = len(events) / elapsed
    print(f"{'broker: consume only':<24}{base:>12,.0f} events/s   1.00x")
    print(
        f"{'broker: normalize loop':<24}{rate:>12,.0f} events/s   {rate / base:.2f}x of baseline  "
        f"({tickets / elapsed:,.0f} tickets/s, incl. the 0.5 s settle wait)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.cdc_normalize")
    parser.add_argument("--tickets", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-broker", action="store_true", help="Skip the run through a local broker.")
    args = parser.parse_args(argv or [])
    events = make_events(args.tickets)
    print(f"{len(events)} change events ({args.tickets} tickets x 5 events), median of {args.rounds} rounds")
    base, _ = _rate(decode_only, events, args.rounds)
    norm, published = _rate(lambda ev: normalize(ev, encode=False), events, args.rounds)
    assert published == args.tickets, f"published {published} tickets, expected {args.tickets}"
    avro, _ = _rate(lambda ev: normalize(ev, encode=True), events, args.rounds)
    print(f"{'baseline json.loads':<24}{base:>12,.0f} events/s   1.00x")
    print(f"{'normalize':<24}{norm:>12,.0f} events/s   {norm / base:.2f}x of baseline  ({norm / 5:,.0f} tickets/s)")
    print(
        f"{'normalize+avro':<24}{avro:>12,.0f} events/s   {avro / base:.2f}x of baseline  ({avro / 5:,.0f} tickets/s)"
    )
    if not args.no_broker:
        through_broker(events, args.tickets)


if __name__ == "__main__":
    main()
