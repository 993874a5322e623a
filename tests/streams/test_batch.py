"""The stream's final records equal an independent batch recompute from the raw events, cell by cell."""

from __future__ import annotations

import zlib
from datetime import date

from schemas.models import CameraCount, PosTicket
from schemas.topics import POS_TICKETS
from streams.batch import compare, recompute
from streams.engine import FRAME, TICKET, Engine, StreamConfig
from tests.streams.estate import estate_day
from tests.support.events import demo

PARTITIONS = 3


def test_engine_matches_batch_recompute_on_a_dst_day_with_late_and_duplicate_events() -> None:
    catalogue = demo()
    events = estate_day(catalogue, date(2026, 3, 29), dup_rate=0.02, late_rate=0.02)  # Sunday, Berlin DST day
    events += estate_day(catalogue, date(2026, 3, 30), seed=8)
    events.sort(key=lambda e: e.emit_at.timestamp())
    engine = Engine(catalogue, StreamConfig(), {}, {}, {})
    batches: dict[int, list[tuple[str, dict]]] = {p: [] for p in range(PARTITIONS)}
    finals = []
    wall = 10**13
    for ev in events:
        p = zlib.crc32(ev.record["store_id"].encode()) % PARTITIONS
        model = PosTicket if ev.topic == POS_TICKETS else CameraCount
        batches[p].append((TICKET if ev.topic == POS_TICKETS else FRAME, model.model_validate(ev.record).to_avro()))
        if len(batches[p]) >= 200:
            finals += [r for r in engine.apply(p, batches[p], wall).conversions if r["is_final"]]
            batches[p] = []
    for p in range(PARTITIONS):
        finals += [r for r in engine.apply(p, batches[p], wall).conversions if r["is_final"]]
        finals += [r for r in engine.tick(p, wall, close_all=True).conversions if r["is_final"]]
    tickets = [e.record for e in events if e.topic == POS_TICKETS]
    counts = [e.record for e in events if e.topic != POS_TICKETS]
    batch = recompute(catalogue, tickets, counts)
    assert compare(finals, batch) == []
    assert len(batch) > 120
    assert any(r["revision"] > 0 for r in finals)  # late events made corrections
    berlin = {r["local_hour"] for r in finals if r["store_id"] == "wg-cafe"}
    assert "2026-03-30T09:00:00+02:00" in berlin
    assert any(r["local_hour"].endswith("+05:30") for r in finals)
    assert any(r["local_hour"].endswith("+05:45") for r in finals)


def test_compare_reports_differences() -> None:
    catalogue = demo()
    events = estate_day(catalogue, date(2026, 3, 31), dup_rate=0, late_rate=0)
    tickets = [e.record for e in events if e.topic == POS_TICKETS]
    counts = [e.record for e in events if e.topic != POS_TICKETS]
    batch = recompute(catalogue, tickets, counts)
    _cell, values = next(iter(batch.items()))
    wrong = {**values, "visitors": values["visitors"] + 1, "is_final": True, "revision": 0}
    problems = compare([wrong], batch)
    assert any("visitors" in p for p in problems)
    assert any("only in the batch" in p for p in problems)
