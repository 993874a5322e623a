"""Store operations rules with explicit timestamps: zones and categories, staffing, queues, their alerts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from schemas.catalogue import Catalogue, parse_catalogue
from streams.batch import recompute
from streams.batch_ops import batch_alerts, compare_ops, recompute_ops
from streams.storeops import (
    CONVERSION,
    FRAME,
    SHIFT,
    TICKET,
    OpsConfig,
    OpsEngine,
    ShiftState,
    attribute_lines,
    queue_minute_lengths,
    queue_stats,
    queue_step,
    shift_minutes,
    understaffed,
)
from streams.storeops import new_queue_run as fresh_run
from tests.support.events import frame, ms, ticket

H = "2026-03-30T{}:00+02:00"  # Berlin, CEST


def shop(queue_people: float = 4, queue_minutes: int = 3, floor_roles: list[str] | None = None) -> Catalogue:
    return parse_catalogue(
        {
            "stores": [
                {
                    "id": "s1",
                    "name": "S1",
                    "timezone": "Europe/Berlin",
                    "area_m2": 200,
                    "category": "fashion",
                    "zones": [
                        {"id": "womens", "area_m2": 80, "categories": ["dresses", "tops"]},
                        {"id": "mens", "area_m2": 40, "categories": ["shirts"]},
                    ],
                    "queue_alert": {"people": queue_people, "minutes": queue_minutes},
                    "floor_roles": floor_roles,
                }
            ],
            "cameras": [
                {"id": "door", "store_id": "s1", "zone_id": None, "role": "entrance"},
                {"id": "zw", "store_id": "s1", "zone_id": "womens", "role": "zone"},
                {"id": "q1", "store_id": "s1", "zone_id": None, "role": "queue"},
                {"id": "q2", "store_id": "s1", "zone_id": None, "role": "queue"},
            ],
        }
    )


def lined(store: str, at: str, lines: list[tuple[str | None, int]], kind: str = "SALE", **kw: Any) -> dict[str, Any]:
    sign = -1 if kind == "VOID" else 1
    t = ticket(store, at, sign * sum(n for _, n in lines), kind=kind, **kw)
    t["lines"] = [
        {"sku": f"k{i}", "description": None, "quantity": float(sign), "unit_price": n, "discount_amount": 0,
         "net_amount": sign * n, "category": c}
        for i, (c, n) in enumerate(lines)
    ]  # fmt: skip
    return t


def shift(sid: str, start: str, end: str | None, *, role: str = "sales", version: str = "2026-03-30T00:00+00:00",
          breaks: list[tuple[str, str | None]] = (), deleted: bool = False) -> dict[str, Any]:  # type: ignore[assignment]  # fmt: skip
    return {
        "shift_id": sid, "source": "test", "store_id": "s1", "staff_ref": f"p-{sid}", "role": role,
        "start_at": ms(start), "end_at": ms(end) if end else None,
        "breaks": [{"start_at": ms(a), "end_at": ms(b) if b else None} for a, b in breaks],
        "deleted": deleted, "ingested_at": ms(version),
    }  # fmt: skip


def test_lines_go_to_the_zone_of_their_category_and_unknown_ones_to_unmapped() -> None:
    store = shop().store("s1")
    sign, zones, cats = attribute_lines(
        lined(
            "s1", H.format("10:05"), [("dresses", 3000), ("tops", 1000), ("shirts", 500), ("socks", 200), (None, 100)]
        ),
        store,
    )
    assert sign == 1
    assert zones == {"womens": [4000, 2.0], "mens": [500, 1.0], "unmapped": [300, 2.0]}
    assert set(cats) == {"dresses", "tops", "shirts", "socks", "uncategorised"}
    assert attribute_lines(lined("s1", H.format("10:05"), [("tops", 10)], kind="VOID"), store)[0] == -1
    assert attribute_lines(lined("s1", H.format("10:05"), [("tops", 10)], kind="REFUND"), store)[0] == 0
    online = lined("s1", H.format("10:05"), [("tops", 10)], channel="ONLINE")
    assert attribute_lines(online, store) == (0, {}, {})


def test_a_category_in_two_zones_is_refused() -> None:
    with pytest.raises(ValueError, match="category 'tops' is in zones"):
        parse_catalogue(
            {
                "stores": [
                    {
                        "id": "s",
                        "name": "S",
                        "timezone": "UTC",
                        "area_m2": 1,
                        "category": "x",
                        "zones": [
                            {"id": "a", "area_m2": 1, "categories": ["tops"]},
                            {"id": "b", "area_m2": 1, "categories": ["tops"]},
                        ],
                    }
                ]
            }
        )
    with pytest.raises(ValueError, match="reserved"):
        parse_catalogue(
            {
                "stores": [
                    {
                        "id": "s",
                        "name": "S",
                        "timezone": "UTC",
                        "area_m2": 1,
                        "category": "x",
                        "zones": [{"id": "unmapped", "area_m2": 1}],
                    }
                ]
            }
        )


def test_shift_minutes_overlap_breaks_and_open_shifts() -> None:
    hour, end = ms(H.format("10:00")), ms(H.format("11:00"))
    state: ShiftState = {
        "start": ms("2026-03-30T09:30:00+02:00"),
        "end": ms("2026-03-30T10:45:00+02:00"),
        "role": "sales",
        "breaks": [[ms("2026-03-30T10:10:00+02:00"), ms("2026-03-30T10:25:00+02:00")]],
        "version": 0,
    }
    assert shift_minutes(state, hour, end, 16 * 3_600_000) == 30.0  # 45 on the floor, less a 15-minute break
    open_: ShiftState = {**state, "end": None, "breaks": [[ms("2026-03-30T10:50:00+02:00"), None]]}
    assert shift_minutes(open_, hour, end, 16 * 3_600_000) == 50.0  # open: to the end of the hour, break ongoing
    forgotten: ShiftState = {**open_, "start": ms("2026-03-29T10:00:00+02:00"), "breaks": []}
    assert shift_minutes(forgotten, hour, end, 16 * 3_600_000) == 0.0  # open for a day: a forgotten clock-out


def test_queue_length_is_the_sum_of_camera_means_and_stats_use_nearest_rank() -> None:
    lengths = queue_minute_lengths({"q1": {"0": [6.0, 2], "1": [2.0, 1]}, "q2": {"0": [1.0, 1]}})
    assert lengths == {0: 4.0, 1: 2.0}
    stats = queue_stats([float(v) for v in range(1, 11)], people=7)
    assert (stats.minutes, stats.mean, stats.p90, stats.max, stats.over) == (10, 5.5, 9.0, 10.0, 3)
    assert queue_stats([], 3).mean is None


def test_queue_long_fires_once_after_m_minutes_and_resolves_when_it_clears() -> None:
    store = shop().store("s1")
    run = fresh_run()
    t0 = ms(H.format("12:00"))
    values = [5, 6, 5, 7, 9, 6, 3, 5, 5, None, 8]  # over 4 for minutes 0-5, then clear, then short runs
    emitted = [queue_step(run, t0 + i * 60_000, v, 4, 3, store) for i, v in enumerate(values)]
    records = [(i, r["state"]) for i, r in enumerate(emitted) if r]
    assert records == [(2, "FIRING"), (6, "RESOLVED")]
    firing, resolved = emitted[2], emitted[6]
    assert firing and resolved and firing["alert_id"] == resolved["alert_id"]
    assert firing["fired_at"] == t0 + 3 * 60_000 and firing["hour_start"] == t0
    assert resolved["details"]["minutes"] == "6" and resolved["details"]["peak"] == "9"


def test_understaffed_needs_both_a_high_visitor_load_and_a_conversion_drop() -> None:
    cfg = OpsConfig()
    rng = random.Random(3)
    history = [[rng.gauss(20, 3), rng.gauss(0.25, 0.03)] for _ in range(60)]
    assert understaffed(120, 30, 2.0, history, cfg) is None  # 60 per staff but conversion normal
    assert understaffed(120, 30, 6.0, history, cfg) is None  # 20 per staff, normal
    fired = understaffed(120, 12, 2.0, history, cfg)  # 60 per staff, conversion 10 % instead of 25 %
    assert fired is not None and fired.kind == "UNDERSTAFFED" and fired.severity == "CRITICAL"
    assert understaffed(120, 12, 2.0, history[:5], cfg) is None  # too little history
    # Ordinary hours drawn from the same distribution never fire.
    noisy = 0
    for _ in range(2000):
        staff = max(rng.gauss(5, 1), 1)
        visitors = int(staff * rng.gauss(20, 3))
        tx = sum(rng.random() < 0.25 for _ in range(visitors))
        noisy += understaffed(visitors, tx, staff, history, cfg) is not None
    assert noisy == 0


def conversion_records(
    catalogue: Catalogue, tickets: list[dict[str, Any]], counts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The final conversion.hourly records of the batch recompute, as the stream would read them."""
    out = []
    for (store, zone, start), cell in recompute(catalogue, tickets, counts).items():
        out.append({**cell, "store_id": store, "zone_id": zone, "hour_start": start, "is_final": True, "revision": 0})
    return out


def estate(
    queue_from: int = 12, queue_to: int = 20
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(5)
    tickets, counts, shifts = [], [], []
    seq = {"door": 0, "zw": 0, "q1": 0, "q2": 0}
    for hour in ("10", "11"):
        for minute in range(60):
            at = f"2026-03-30T{hour}:{minute:02d}:10+02:00"
            for cam in seq:
                seq[cam] += 1
            counts.append(frame("door", "s1", at, seq["door"], entries=rng.randrange(4)))
            counts.append(frame("zw", "s1", at, seq["zw"], entries=rng.randrange(2), zone="womens"))
            long_queue = hour == "11" and queue_from <= minute < queue_to
            for cam in ("q1", "q2"):
                f = frame(cam, "s1", at, seq[cam])
                f["people_in_frame"] = (4 if long_queue else 1) + rng.randrange(2)
                counts.append(f)
            if rng.random() < 0.5:
                cats = rng.sample(["dresses", "tops", "shirts", "socks", None], 2)
                tickets.append(
                    lined("s1", at, [(c, rng.randrange(100, 5000)) for c in cats], ticket_id=f"t{hour}{minute}")
                )
    tickets.append(lined("s1", "2026-03-30T11:30:30+02:00", [("tops", 700)], kind="VOID", ticket_id="void1"))
    shifts.append(shift("a", "2026-03-30T09:00:00+02:00", "2026-03-30T17:00:00+02:00",
                        breaks=[("2026-03-30T10:30:00+02:00", "2026-03-30T11:00:00+02:00")]))  # fmt: skip
    shifts.append(shift("b", "2026-03-30T10:15:00+02:00", None))
    shifts.append(shift("c", "2026-03-30T10:00:00+02:00", "2026-03-30T12:00:00+02:00", role="stock"))
    return tickets, counts, shifts


def test_the_engine_equals_the_batch_recompute_and_corrects_on_late_shifts() -> None:
    catalogue = shop(floor_roles=["sales"])
    tickets, counts, shifts = estate()
    engine = OpsEngine(catalogue, OpsConfig(), {}, {})
    events = [(TICKET, t) for t in tickets] + [(FRAME, f) for f in counts]
    events += [(FRAME, counts[6]), (TICKET, tickets[3])]  # duplicates (a queue frame, a ticket)
    events.sort(key=lambda e: int(e[1].get("occurred_at") or e[1]["frame_ts"]))
    events = [(SHIFT, shifts[0]), (SHIFT, shifts[2]), *events]  # shift b arrives late
    out = engine.apply(events, now_ms=0)
    assert out.duplicates == 2 and not out.records  # nothing final yet
    finals = conversion_records(catalogue, tickets, counts)
    out = engine.apply([(CONVERSION, c) for c in finals], now_ms=1)
    records = list(out.records)
    assert {r["revision"] for r in records} == {0}
    late = engine.apply([(SHIFT, shifts[1])], now_ms=2)
    assert {(r["grain"], r["revision"]) for r in late.records} >= {("STORE", 1)}
    records += late.records
    batch = recompute_ops(catalogue, tickets, counts, shifts)
    assert compare_ops(records, batch) == []
    head = batch[("s1", "STORE", "", ms(H.format("10:00")))]
    # a: 60 min less a 30-minute break; b: from 10:15; c is stock, not on the floor
    assert head["staff_minutes"] == 30 + 45 and head["staff_on_floor"] == 1.25
    assert batch[("s1", "ZONE", "unmapped", ms(H.format("10:00")))]["revenue_per_m2"] is None
    assert batch[("s1", "ZONE", "womens", ms(H.format("11:00")))]["visitors"] is not None
    assert batch[("s1", "ZONE", "mens", ms(H.format("11:00")))]["visitors"] is None  # no zone camera
    assert batch[("s1", "STORE", "", ms(H.format("11:00")))]["queue_minutes_over"] >= 8
    # A deleted shift takes its minutes back out.
    gone = engine.apply([(SHIFT, {**shifts[1], "deleted": True, "ingested_at": ms("2026-03-31T00:00+00:00")})], 3)
    store_rows = [r for r in gone.records if r["grain"] == "STORE"]
    assert store_rows and store_rows[0]["staff_minutes"] == 30.0


def test_queue_long_fires_in_the_stream_as_in_the_batch() -> None:
    catalogue = shop()
    tickets, counts, shifts = estate(queue_from=12, queue_to=20)
    engine = OpsEngine(catalogue, OpsConfig(), {}, {})
    alerts = []
    for i in range(0, len(counts), 37):  # batches of frames in time order
        alerts += engine.apply([(FRAME, f) for f in counts[i : i + 37]], now_ms=0).alerts
    kinds = [(a["kind"], a["state"]) for a in alerts]
    assert kinds == [("QUEUE_LONG", "FIRING"), ("QUEUE_LONG", "RESOLVED")]
    expected = [a for a in batch_alerts(catalogue, recompute_ops(catalogue, tickets, counts, shifts), counts)]
    assert [(a["alert_id"], a["state"], a["fired_at"]) for a in alerts] == [
        (a["alert_id"], a["state"], a["fired_at"]) for a in expected if a["kind"] == "QUEUE_LONG"
    ]
    assert alerts[0]["fired_at"] == ms("2026-03-30T11:15:00+02:00")


def test_alerts_fire_exactly_on_the_simulators_injected_incidents() -> None:
    """The simulator's understaffed and queue-long incidents, recomputed in batch: those alerts and no others."""
    import json
    from datetime import date

    from producers.simulator import SimulationConfig, simulate
    from producers.simulator.incidents import expected_alerts
    from producers.simulator.simulation import injected
    from tests.support.events import demo

    full = demo()
    catalogue = full.model_copy(
        update={
            "stores": tuple(s for s in full.stores if s.id in ("wg-grocer", "nyc-soho")),
            "cameras": tuple(c for c in full.cameras if c.store_id in ("wg-grocer", "nyc-soho")),
        }
    )
    config = SimulationConfig(
        seed=11, start=date(2026, 11, 18), days=2, fps=0.1, staffing=True,
        incidents=["understaffed:store=wg-grocer,at=2026-11-19T16", "queue-long:store=nyc-soho,at=2026-11-19T13:10"],
    )  # fmt: skip
    raw: dict[str, list[dict[str, Any]]] = {"pos.tickets": [], "camera.counts": [], "staff.shifts": []}
    for ev in simulate(catalogue, config):
        raw[ev.topic].append(json.loads(ev.record.model_dump_json()))
    ops = recompute_ops(catalogue, raw["pos.tickets"], raw["camera.counts"], raw["staff.shifts"])
    fired = {
        (a["kind"], a["store_id"], a["hour_start"])
        for a in batch_alerts(catalogue, ops, raw["camera.counts"])
        if a["state"] == "FIRING"
    }
    truth = expected_alerts(injected(catalogue, config))
    assert fired == {(kind, store, int(hour.timestamp() * 1000)) for kind, store, hour in truth}
    assert {k for k, _, _ in fired} == {"UNDERSTAFFED", "QUEUE_LONG"}
