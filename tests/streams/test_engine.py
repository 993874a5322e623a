"""The engine with explicit event times: closing, lateness, corrections, dedupe, throttling, rejects."""

from typing import Any

from streams.engine import FRAME, TICKET, Engine, Output, StreamConfig
from streams.hours import HOUR_MS
from tests.streams.factory import demo, frame, ms, ticket

WALL = 10**13  # wall clock far after the event times


def engine(**cfg: Any) -> Engine:
    return Engine(demo(), StreamConfig(**cfg), {}, {}, {})


def finals(out: Output) -> list[dict]:
    return [r for r in out.conversions if r["is_final"]]


def test_hour_closes_when_watermark_passes_end_plus_lateness() -> None:
    e = engine()
    out = e.apply(
        0,
        [
            (TICKET, ticket("wg-denim", "2026-03-29T10:05:00+02:00", 1500)),
            (FRAME, frame("cam-wg-denim", "wg-denim", "2026-03-29T10:06:00+02:00", 1, entries=4)),
        ],
        WALL,
    )
    assert [r["is_final"] for r in out.conversions] == [False]
    late_edge = "2026-03-29T11:09:59.999+02:00"
    out = e.apply(
        0,
        [(FRAME, frame("cam-wg-denim", "wg-denim", late_edge, 2)), (TICKET, ticket("wg-denim", late_edge, 1))],
        WALL + 5000,
    )
    assert finals(out) == []
    # Counts alone do not move the watermark while tickets lag (less than the allowed skew of an hour).
    out = e.apply(0, [(FRAME, frame("cam-wg-denim", "wg-denim", "2026-03-29T11:30:00+02:00", 3))], WALL + 10_000)
    assert finals(out) == []
    out = e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T11:10:00+02:00", 1))], WALL + 10_000)
    (final,) = finals(out)
    assert final["local_hour"] == "2026-03-29T10:00:00+02:00"
    assert (final["visitors"], final["transactions"], final["net_revenue"], final["revision"]) == (4, 1, 1500, 0)
    assert final["conversion"] == 0.25


def test_a_silent_input_holds_hours_open_for_the_allowed_skew_only() -> None:
    e = engine()
    e.apply(
        0,
        [
            (TICKET, ticket("wg-denim", "2026-03-29T10:05:00+02:00")),
            (FRAME, frame("cam-wg-denim", "wg-denim", "2026-03-29T10:05:00+02:00", 1)),
        ],
        WALL,
    )
    frames = [
        (FRAME, frame("cam-wg-denim", "wg-denim", f"2026-03-29T{h}:{m:02d}:00+02:00", i))
        for i, (h, m) in enumerate(((11, 30), (12, 9), (12, 10)), start=2)
    ]
    out = e.apply(0, frames[:2], WALL)
    assert finals(out) == []  # 12:09 - 1 h skew - 10 min lateness < 11:00
    (final,) = finals(e.apply(0, frames[2:], WALL))
    assert final["local_hour"] == "2026-03-29T10:00:00+02:00"
    # A replay waits for both inputs, however far apart.
    strict = engine(stream_skew_ms=None)
    assert finals(strict.apply(0, frames, WALL)) == []


def test_lateness_is_configurable() -> None:
    e = engine(lateness_ms=0)
    e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T10:05:00+02:00"))], WALL)
    out = e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T11:00:00+02:00"))], WALL + 5000)
    assert len(finals(out)) == 1


def test_late_event_for_closed_hour_is_a_correction() -> None:
    e = engine()
    e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T10:05:00+02:00", 1000))], WALL)
    closing = e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T11:30:00+02:00"))], WALL + 5000)
    (first,) = finals(closing)
    assert first["revision"] == 0
    assert (closing.closed, closing.corrected, closing.late) == (1, 0, 0)
    out = e.apply(
        0,
        [
            (TICKET, ticket("wg-denim", "2026-03-29T10:59:00+02:00", 500)),
            (TICKET, ticket("wg-denim", "2026-03-29T10:58:00+02:00", 250)),
        ],
        WALL + 6000,
    )
    (corr,) = finals(out)
    assert (corr["revision"], corr["net_revenue"], corr["transactions"]) == (1, 1750, 3)
    assert (out.closed, out.corrected, out.late) == (0, 1, 2)
    (corr2,) = finals(e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T10:01:00+02:00", 1))], WALL + 7000))
    assert corr2["revision"] == 2


def test_late_event_for_an_hour_never_seen_is_emitted_final() -> None:
    e = engine()
    e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T15:00:00+02:00"))], WALL)
    out = e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T12:00:00+02:00", 700))], WALL + 1)
    (r,) = out.conversions
    assert (r["is_final"], r["revision"], r["net_revenue"]) == (True, 0, 700)
    assert (out.closed, out.corrected, out.late) == (1, 0, 1)


def test_duplicates_are_counted_once_across_batches() -> None:
    e = engine()
    t = ticket("wg-denim", "2026-03-29T10:05:00+02:00", 1000, ticket_id="T-1")
    f = frame("cam-wg-denim", "wg-denim", "2026-03-29T10:05:00+02:00", 42, entries=2)
    out = e.apply(0, [(TICKET, t), (FRAME, f), (TICKET, dict(t))], WALL)
    assert out.duplicates == 1
    out = e.apply(0, [(TICKET, dict(t)), (FRAME, dict(f))], WALL + 10_000)
    assert out.duplicates == 2
    (final,) = finals(e.tick(0, WALL + 20_000, close_all=True))
    assert (final["transactions"], final["visitors"]) == (1, 2)


def test_live_updates_are_throttled_and_flushed_by_the_timer() -> None:
    e = engine(live_throttle_ms=2000)
    t0 = "2026-03-29T10:05:00+02:00"
    assert len(e.apply(0, [(TICKET, ticket("wg-denim", t0))], WALL).conversions) == 1
    assert e.apply(0, [(TICKET, ticket("wg-denim", t0))], WALL + 500).conversions == []
    assert e.apply(0, [(TICKET, ticket("wg-denim", t0))], WALL + 1000).conversions == []
    assert e.tick(0, WALL + 1500).conversions == []
    (live,) = e.tick(0, WALL + 2100).conversions
    assert (live["is_final"], live["transactions"]) == (False, 3)
    assert e.tick(0, WALL + 5000).conversions == []


def test_quiet_partition_closes_by_timer() -> None:
    e = engine(idle_close_ms=30_000)
    event_time = ms("2026-03-29T20:30:00+02:00")
    e.apply(0, [(TICKET, ticket("wg-denim", event_time))], event_time + 1000)
    # Wall clock: 20:45 local, partition idle for 14 minutes but 21:00 + lateness not reached.
    assert finals(e.tick(0, event_time + 15 * 60_000)) == []
    (final,) = finals(e.tick(0, event_time + 41 * 60_000))
    assert final["local_hour"] == "2026-03-29T20:00:00+02:00"


def test_idle_rules_ignore_partitions_without_events_and_close_simulated_future_hours() -> None:
    e = engine(idle_close_ms=5_000)
    e.tick(0, WALL)  # never had events: nothing is forced
    (live,) = e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T10:05:00+02:00"))], WALL).conversions
    assert not live["is_final"]
    # A time-compressed day: event time (21:10) ahead of the wall clock (10:20); quiet for 5 s.
    sim = engine(idle_close_ms=5_000)
    wall = ms("2026-03-29T10:20:00+02:00")
    sim.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T21:10:00+02:00"))], wall)
    assert finals(sim.tick(0, wall + 1_000)) == []
    (final,) = finals(sim.tick(0, wall + 6_000))
    assert final["local_hour"] == "2026-03-29T21:00:00+02:00"


def test_rejects_unknown_store_and_events_older_than_retention() -> None:
    e = engine(hour_retention_ms=HOUR_MS, closed_retention_ms=2 * HOUR_MS)
    out = e.apply(
        0,
        [
            (TICKET, ticket("nowhere", "2026-03-29T10:00:00+02:00")),
            (TICKET, ticket("wg-denim", "2026-03-29T20:00:00+02:00")),
        ],
        WALL,
    )
    assert out.rejects == [(0, "store 'nowhere' is not in the catalogue")]
    out = e.apply(0, [(TICKET, ticket("wg-denim", "2026-03-29T10:00:00+02:00"))], WALL)
    assert len(out.rejects) == 1 and "older than" in out.rejects[0][1]
    assert not any(k.endswith(str(ms("2026-03-29T10:00:00+02:00"))) for k in e.hours)


def test_dst_day_and_half_hour_zone() -> None:
    e = engine()
    events = [
        (TICKET, ticket("wg-cafe", "2026-03-29T01:30:00+01:00", 100)),
        (TICKET, ticket("wg-cafe", "2026-03-29T03:30:00+02:00", 200)),  # one real hour later
        (TICKET, ticket("mum-bandra", "2026-03-29T10:29:00+05:30", 300, currency="INR")),
        (TICKET, ticket("mum-bandra", "2026-03-29T10:31:00+05:30", 400, currency="INR")),
    ]
    out = e.apply(0, events, WALL)  # the Kolkata events push the partition watermark past the Berlin hours
    out.extend(e.tick(0, WALL, close_all=True))
    got = {(r["store_id"], r["local_hour"]): r["net_revenue"] for r in finals(out)}
    assert got == {
        ("wg-cafe", "2026-03-29T01:00:00+01:00"): 100,
        ("wg-cafe", "2026-03-29T03:00:00+02:00"): 200,
        ("mum-bandra", "2026-03-29T10:00:00+05:30"): 700,
    }
    bandra = next(r for r in finals(out) if r["store_id"] == "mum-bandra")
    assert bandra["hour_start"] == ms("2026-03-29T04:30:00+00:00") and bandra["currency"] == "INR"


def test_zone_cameras_make_zone_hours() -> None:
    e = engine()
    t = "2026-03-29T10:05:00+02:00"
    e.apply(
        0,
        [
            (FRAME, frame("cam-wg-fashion-main", "wg-fashion", t, 1, entries=5)),
            (FRAME, frame("cam-wg-fashion-side", "wg-fashion", t, 1, entries=2)),
            (FRAME, frame("cam-wg-fashion-women", "wg-fashion", t, 1, entries=3, zone="womens")),
        ],
        WALL,
    )
    out = {r["zone_id"]: r for r in finals(e.tick(0, WALL, close_all=True))}
    assert out[None]["visitors"] == 7
    assert out["womens"]["visitors"] == 3 and out["womens"]["revenue_per_m2"] == 0.0
    assert "ZONE_TRAFFIC_ONLY" in out["womens"]["quality_flags"]


def test_an_open_hour_missing_from_its_partitions_open_hours_still_closes() -> None:
    # A worker killed while its changelog records were being written kept the hour's entry but not its
    # partition's (they are not written atomically): the batch read again is all duplicates.
    e = engine()
    t = ticket("wg-denim", "2026-03-29T10:05:00+02:00", 1000, ticket_id="T-1")
    f = frame("cam-wg-denim", "wg-denim", "2026-03-29T10:06:00+02:00", 1, entries=3)
    e.apply(0, [(TICKET, t), (FRAME, f)], WALL)
    for part in e.parts.values():
        part["open"].clear()  # the partition entry as an older changelog record left it
    out = e.apply(0, [(TICKET, dict(t)), (FRAME, dict(f))], WALL + 10_000)
    assert out.duplicates == 2
    (final,) = finals(e.tick(0, WALL + 20_000, close_all=True))
    assert (final["local_hour"], final["transactions"], final["visitors"]) == ("2026-03-29T10:00:00+02:00", 1, 3)
