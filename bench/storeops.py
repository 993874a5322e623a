"""The store-operations stage's cost next to the conversion engine's, on the same events, in the same run.

Two days of the ops-estate (tests/streams/ops_estate.py: entrance, zone and queue cameras every minute, lined
tickets, a rota) go through ``streams.engine.Engine`` (the conversion stage, the baseline) and through
``streams.storeops.OpsEngine`` fed the same tickets and frames plus the shifts and the final conversion
records, in batches of 500 as the agents take them. Reports events per second of each (median of
``--repeat`` runs) and their ratio: what adding the stage costs a worker per event.

    python -m bench.storeops [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date
from typing import Any

from streams.batch import recompute
from streams.engine import FRAME, TICKET, Engine, StreamConfig
from streams.storeops import CONVERSION, SHIFT, OpsConfig, OpsEngine
from streams.storeops import FRAME as OPS_FRAME
from streams.storeops import TICKET as OPS_TICKET


def _events() -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]], Any]:
    from datetime import datetime

    from tests.streams.ops_estate import ops_catalogue, ops_day

    catalogue = ops_catalogue()
    evs = ops_day(catalogue, date(2026, 3, 29), seed=1) + ops_day(catalogue, date(2026, 3, 30), seed=2)
    evs.sort(key=lambda e: e.emit_at.timestamp())

    def ms(v: str) -> int:
        return int(datetime.fromisoformat(v).timestamp() * 1000)

    conv_in, ops_in = [], []
    tickets, counts = [], []
    for e in evs:
        rec = dict(e.record)
        if e.topic == "pos.tickets":
            rec["occurred_at"] = ms(rec["occurred_at"])
            conv_in.append((TICKET, rec))
            ops_in.append((OPS_TICKET, rec))
            tickets.append(e.record)
        elif e.topic == "camera.counts":
            rec["frame_ts"] = ms(rec["frame_ts"])
            conv_in.append((FRAME, rec))
            ops_in.append((OPS_FRAME, rec))
            counts.append(e.record)
        else:
            breaks = [{"start_at": ms(b["start_at"]), "end_at": ms(b["end_at"])} for b in rec["breaks"]]
            end = ms(rec["end_at"]) if rec.get("end_at") else None
            rec.update(start_at=ms(rec["start_at"]), ingested_at=ms(rec["ingested_at"]), end_at=end, breaks=breaks)
            ops_in.append((SHIFT, rec))
    for (store, zone, start), cell in recompute(catalogue, tickets, counts).items():
        ops_in.append((CONVERSION, {**cell, "store_id": store, "zone_id": zone, "hour_start": start,
                                    "is_final": True, "revision": 0}))  # fmt: skip
    return conv_in, ops_in, catalogue


def _run(make: Any, events: list[tuple[str, dict[str, Any]]], batch: int = 500) -> float:
    engine = make()
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        engine(events[i : i + batch])
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storeops")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    conv_in, ops_in, catalogue = _events()

    def conversion() -> Any:
        engine = Engine(catalogue, StreamConfig(), {}, {}, {})
        return lambda batch: engine.apply(0, batch, 0)

    def storeops() -> Any:
        engine = OpsEngine(catalogue, OpsConfig(), {}, {})
        return lambda batch: engine.apply(batch, 0)

    base = [_run(conversion, conv_in) for _ in range(args.repeat)]
    ops = [_run(storeops, ops_in) for _ in range(args.repeat)]
    base_rate = len(conv_in) / statistics.median(base)
    ops_rate = len(ops_in) / statistics.median(ops)
    print(f"events: conversion {len(conv_in):,}, store operations {len(ops_in):,} (+ shifts and final hours)")
    print(f"conversion engine (baseline): {base_rate:,.0f} events/s (median of {args.repeat})")
    print(f"store-operations engine:      {ops_rate:,.0f} events/s")
    print(f"ratio storeops / conversion:  {ops_rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
