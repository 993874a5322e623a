"""Late data always counts: a store's tickets of one day delivered two weeks late (a collector that was
offline, an export re-sent after an outage) are applied to their compact closed hours and corrected, and
the final records equal the batch recompute; beyond the closed-hour retention they are dead-lettered with
the way to recompute them."""

from __future__ import annotations

import zlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from schemas.catalogue import Catalogue
from schemas.models import CameraCount, PosTicket
from schemas.topics import POS_TICKETS
from streams.batch import compare, recompute
from streams.engine import FRAME, TICKET, Engine, Output, StreamConfig
from streams.hours import HOUR_MS
from tests.streams.estate import Ev, estate_day, write_files
from tests.support.events import DEMO, demo

PARTITIONS = 2
WALL = 10**13


def _small() -> Catalogue:
    full = demo()
    keep = {"wg-denim", "mum-bandra"}
    return Catalogue(
        stores=tuple(s for s in full.stores if s.id in keep),
        cameras=tuple(c for c in full.cameras if c.store_id in keep),
    )


def _run(engine: Engine, events: list[Ev], finals: list[dict[str, Any]], rejects: list[str]) -> Output:
    total = Output()
    batches: dict[int, list[tuple[str, dict[str, Any]]]] = {p: [] for p in range(PARTITIONS)}

    def flush(p: int) -> None:
        out = engine.apply(p, batches[p], WALL)
        finals.extend(r for r in out.conversions if r["is_final"])
        rejects.extend(reason for _, reason in out.rejects)
        total.extend(out)
        batches[p] = []

    for ev in events:
        p = zlib.crc32(ev.record["store_id"].encode()) % PARTITIONS
        model = PosTicket if ev.topic == POS_TICKETS else CameraCount
        batches[p].append((TICKET if ev.topic == POS_TICKETS else FRAME, model.model_validate(ev.record).to_avro()))
        if len(batches[p]) >= 500:
            flush(p)
    for p in range(PARTITIONS):
        flush(p)
    return total


def test_tickets_two_weeks_late_correct_their_hours_like_the_batch_recompute() -> None:
    catalogue = _small()
    first = date(2026, 2, 2)
    days = [estate_day(catalogue, first + timedelta(days=d), seed=d, dup_rate=0.01, late_rate=0.0) for d in range(16)]
    # wg-denim's collector was offline on day 1: its tickets of that day arrive after day 15.
    held = [ev for ev in days[1] if ev.topic == POS_TICKETS and ev.record["store_id"] == "wg-denim"]
    days[1] = [ev for ev in days[1] if ev not in held]
    replayed = held[:5]  # a few of them the collector had already sent before it went offline
    days[1] += replayed
    engine = Engine(catalogue, StreamConfig(), {}, {}, {})
    finals: list[dict[str, Any]] = []
    rejects: list[str] = []
    for day in days:
        _run(engine, day, finals, rejects)
    before = {(r["hour_start"], r["revision"]) for r in finals if r["store_id"] == "wg-denim"}
    late = _run(engine, held, finals, rejects)
    assert rejects == []
    unique = {ev.record["ticket_id"] for ev in held} - {ev.record["ticket_id"] for ev in replayed}
    assert late.late == len(unique) and late.duplicates == len(held) - len(unique)
    corrected = [r for r in late.conversions if r["is_final"] and r["store_id"] == "wg-denim"]
    assert corrected and all(r["revision"] >= 1 for r in corrected)
    assert {r["hour_start"] for r in corrected} <= {h for h, _ in before}
    # The hours were compact (older than the 48 h of full state) when the late tickets came.
    keys = [k for k in engine.hours if k.startswith("wg-denim||")]
    assert any(engine.hours[k].get("compact") for k in keys)
    for p in range(PARTITIONS):
        out = engine.tick(p, WALL, close_all=True)
        finals.extend(r for r in out.conversions if r["is_final"])
    records = [ev.record for day in days for ev in day] + [ev.record for ev in held]
    tickets = [r for r in records if "ticket_id" in r]
    counts = [r for r in records if "ticket_id" not in r]
    assert compare(finals, recompute(catalogue, tickets, counts)) == []


def test_beyond_the_closed_hour_retention_a_record_is_dead_lettered_with_the_backfill_path() -> None:
    catalogue = _small()
    engine = Engine(catalogue, StreamConfig(closed_retention_ms=2 * 24 * HOUR_MS), {}, {}, {})
    finals: list[dict[str, Any]] = []
    rejects: list[str] = []
    days = [estate_day(catalogue, date(2026, 2, 2) + timedelta(days=d), seed=d) for d in range(4)]
    held = [ev for ev in days[0] if ev.topic == POS_TICKETS][:3]
    days[0] = [ev for ev in days[0] if ev not in held]
    for day in days:
        _run(engine, day, finals, rejects)
    _run(engine, held, finals, rejects)
    assert len(rejects) == 3 and all("tillflow backfill" in r for r in rejects)


def test_backfill_recomputes_the_hours_of_the_files_as_final_records_above_the_stream(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from schemas.models import HourlyConversion
    from tillflow.cli import app

    catalogue = demo()
    events = estate_day(catalogue, date(2026, 2, 3), seed=3)
    tickets, counts = write_files(tmp_path, events)
    target = tmp_path / "backfill.jsonl"
    result = CliRunner().invoke(
        app,
        ["backfill", "--stores", str(DEMO), "--tickets", str(tickets), "--counts", str(counts), "--out", str(target)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    records = [HourlyConversion.model_validate_json(line).to_avro() for line in target.read_text().splitlines()]
    assert records and all(r["is_final"] and r["revision"] == 1000 for r in records)
    assert {r["mall_id"] for r in records if r["store_id"] == "wg-denim"} == {"westgate"}
    batch = recompute(catalogue, [ev.record for ev in events if ev.topic == POS_TICKETS],
                      [ev.record for ev in events if ev.topic != POS_TICKETS])  # fmt: skip
    assert compare(records, batch) == []
