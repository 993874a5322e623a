"""The simulator's generated estate: determinism, counts that add up, timing, realistic rates, time zones."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from producers.simulator import SimEvent, SimulationConfig, plans, simulate
from producers.simulator.incidents import local_day_hours, open_interval
from producers.simulator.simulation import camera_series, plan_day, store_effects
from schemas.catalogue import Catalogue
from schemas.models import REVERSING_KINDS, CameraCount, Channel, PaymentMethod, PosTicket, TicketKind

MONDAY = date(2026, 3, 30)


def fingerprint(events: list[SimEvent]) -> list[tuple[str, str, datetime]]:
    return [(ev.topic, ev.record.model_dump_json(), ev.emit_at) for ev in events]


@pytest.fixture(scope="module")
def day_events(small: Catalogue) -> list[SimEvent]:
    return list(simulate(small, SimulationConfig(seed=7, start=MONDAY, days=1, fps=0.25)))


def test_same_seed_same_events_other_seed_differs(small: Catalogue, day_events: list[SimEvent]) -> None:
    again = list(simulate(small, SimulationConfig(seed=7, start=MONDAY, days=1, fps=0.25)))
    assert fingerprint(again) == fingerprint(day_events)  # ticket ids, ingested_at and frame_seq included
    other = list(simulate(small, SimulationConfig(seed=8, start=MONDAY, days=1, fps=0.25)))
    assert fingerprint(other) != fingerprint(day_events)
    tickets = {ev.record.ticket_id for ev in day_events if isinstance(ev.record, PosTicket)}
    other_tickets = {ev.record.ticket_id for ev in other if isinstance(ev.record, PosTicket)}
    assert tickets != other_tickets


def test_events_come_in_emit_order_with_utc_times(day_events: list[SimEvent]) -> None:
    times = [ev.emit_at for ev in day_events]
    assert times == sorted(times)
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in times[:100])
    topics = Counter(ev.topic for ev in day_events)
    assert topics["pos.tickets"] > 500 and topics["camera.counts"] > 25_000


def test_every_frame_of_every_camera_from_before_opening_to_after_closing(
    small: Catalogue, day_events: list[SimEvent]
) -> None:
    frames: dict[str, list[CameraCount]] = defaultdict(list)
    for ev in day_events:
        if isinstance(ev.record, CameraCount):
            frames[ev.record.camera_id].append(ev.record)
    assert set(frames) == {c.id for c in small.cameras}
    store = small.store("ber-fashion")
    opens, closes = open_interval(store, MONDAY)  # type: ignore[misc]
    for cam in ("c-ber-main", "c-ber-side", "c-ber-shoes"):
        seqs = [f.frame_seq for f in frames[cam]]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one per frame, none missing
        assert frames[cam][0].frame_ts <= opens - timedelta(minutes=14)
        assert frames[cam][-1].frame_ts >= closes + timedelta(minutes=29)
        gaps = {(b.frame_ts - a.frame_ts).total_seconds() for a, b in zip(frames[cam], frames[cam][1:], strict=False)}
        assert gaps == {4.0}  # fps 0.25


def test_entries_and_exits_add_up_to_the_visitors_per_store_and_hour(
    small: Catalogue, day_events: list[SimEvent]
) -> None:
    config = SimulationConfig(seed=7, start=MONDAY, days=1, fps=0.25)
    by_hour: dict[tuple[str, datetime], list[int]] = defaultdict(lambda: [0, 0])
    zone: Counter[str] = Counter()
    for ev in day_events:
        rec = ev.record
        if isinstance(rec, CameraCount):
            if rec.zone_id is None:
                cell = by_hour[(rec.store_id, rec.frame_ts.replace(minute=0, second=0, microsecond=0))]
                cell[0] += rec.entries
                cell[1] += rec.exits
            else:
                zone[rec.zone_id] += rec.entries - rec.exits
                assert rec.people_in_frame >= 0
    for plan in plans(small, config):
        store = plan.store.id
        # A crossing is reported by the first frame at or after it (frames every 4 s from the epoch).
        reported_in = (np.ceil(plan.entry_ms / 4000) * 4000).astype(np.int64)
        reported_out = (np.ceil(plan.exit_ms / 4000) * 4000).astype(np.int64)
        expected: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
        for ms in reported_in.tolist():
            expected[datetime.fromtimestamp(ms // 3_600_000 * 3600, tz=UTC)][0] += 1
        for ms in reported_out.tolist():
            expected[datetime.fromtimestamp(ms // 3_600_000 * 3600, tz=UTC)][1] += 1
        got = {h: v for (s, h), v in by_hour.items() if s == store and v != [0, 0]}
        assert got == dict(expected), store
        assert sum(v[0] for v in got.values()) == plan.visitors == sum(v[1] for v in got.values())
        assert plan.visitors > 100
    assert zone == {"shoes": 0}  # everyone who entered the zone left it


def test_doors_split_the_visitors_and_zone_counts_are_consistent(small: Catalogue) -> None:
    config = SimulationConfig(seed=3, start=MONDAY, fps=1.0)
    plan = next(p for p in plans(small, config) if p.store.id == "ber-fashion")
    series = camera_series(small, plan, 1.0)
    main_in, side_in = int(series["c-ber-main"][1].sum()), int(series["c-ber-side"][1].sum())
    assert main_in + side_in == plan.visitors
    assert 0.55 < main_in / plan.visitors < 0.8  # the main door takes about two thirds
    people, entries, exits = series["c-ber-shoes"]
    assert (people == np.cumsum(entries) - np.cumsum(exits)).all()
    assert 0 < entries.sum() < plan.visitors and people[-1] == 0


def test_tickets_are_inside_opening_hours_and_between_their_buyers_entry_and_exit(small: Catalogue) -> None:
    config = SimulationConfig(seed=11, start=MONDAY, days=2)
    linked = 0
    for plan in plans(small, config):
        for t in plan.tickets:
            assert plan.opens_ms <= t.occurred_ms < plan.closes_ms + 1, plan.store.id
            if t.visitor >= 0:
                linked += 1
                assert plan.entry_ms[t.visitor] <= t.occurred_ms <= plan.exit_ms[t.visitor]
    assert linked > 1000


def test_voids_reference_an_earlier_sale_and_refunds_an_earlier_day(small: Catalogue) -> None:
    sales: dict[str, datetime] = {}
    voids = refunds = 0
    for ev in simulate(small, SimulationConfig(seed=5, start=MONDAY, days=3, fps=0.05)):
        rec = ev.record
        if not isinstance(rec, PosTicket):
            continue
        if rec.kind is TicketKind.SALE:
            sales[rec.ticket_id] = rec.occurred_at
        elif rec.kind is TicketKind.VOID:
            voids += 1
            assert rec.original_ticket_id in sales and sales[rec.original_ticket_id] < rec.occurred_at
        elif rec.kind is TicketKind.REFUND:
            refunds += 1
            assert rec.original_ticket_id is not None
            local_day = rec.occurred_at.astimezone(small.store(rec.store_id).tz).strftime("%Y%m%d")
            assert rec.original_ticket_id.split("-")[-2] < local_day
    assert voids > 5 and refunds > 5


def test_amounts_add_up_on_every_ticket(small: Catalogue) -> None:
    for plan in plans(small, SimulationConfig(seed=2, start=MONDAY)):
        for t in plan.tickets:
            f = t.fields
            lines = f["lines"]
            assert f["gross_amount"] == sum(round(ln.quantity * ln.unit_price) for ln in lines)  # type: ignore[attr-defined]
            assert f["discount_amount"] == sum(ln.discount_amount for ln in lines)  # type: ignore[attr-defined]
            assert f["net_amount"] == f["gross_amount"] - f["discount_amount"]  # type: ignore[operator]
            paid = sum(p.amount for p in f["payments"])  # type: ignore[attr-defined]
            assert paid == f["net_amount"]  # prices include tax in EUR, INR and NPR
            sign = -1 if f["kind"] in REVERSING_KINDS else 1  # REFUND and VOID are negative (signed amounts)
            assert 0 < sign * f["tax_amount"] < sign * f["net_amount"]  # type: ignore[operator]
            assert sign * min(ln.quantity for ln in lines) > 0  # type: ignore[attr-defined]


def test_rates_are_realistic_over_a_week_of_the_demo_estate(demo_catalogue: Catalogue) -> None:
    config = SimulationConfig(seed=1, start=date(2026, 3, 30), days=7)
    visitors: Counter[str] = Counter()
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    cash = cards = 0
    lines_per_ticket: dict[str, list[int]] = defaultdict(list)
    discounted = lines = 0
    for plan in plans(demo_catalogue, config):
        cat = plan.store.category
        visitors[cat] += plan.visitors
        for t in plan.tickets:
            f = t.fields
            kind = f["kind"].value  # type: ignore[attr-defined]
            if f["channel"] is Channel.IN_STORE:
                kinds[cat][kind] += 1
            if kind == "SALE" and f["channel"] is Channel.IN_STORE:
                lines_per_ticket[cat].append(len(f["lines"]))  # type: ignore[arg-type]
                for p in f["payments"]:  # type: ignore[attr-defined]
                    cash += p.method is PaymentMethod.CASH
                    cards += p.method is PaymentMethod.CARD
                for ln in f["lines"]:  # type: ignore[attr-defined]
                    lines += 1
                    discounted += ln.discount_amount > 0
    conversion = {cat: kinds[cat]["SALE"] / visitors[cat] for cat in visitors}
    assert 0.15 <= conversion["fashion"] <= 0.25
    assert 0.08 <= conversion["electronics"] <= 0.15
    assert 0.60 <= conversion["grocery"] <= 0.80
    assert 0.70 <= conversion["food"] <= 0.90
    assert 0.12 <= conversion["sports"] <= 0.25
    assert 0.03 <= kinds["fashion"]["REFUND"] / kinds["fashion"]["SALE"] <= 0.12
    all_kinds = sum(kinds.values(), Counter())
    assert 0.003 <= all_kinds["VOID"] / all_kinds["SALE"] <= 0.03
    assert 0.005 <= all_kinds["EMPLOYEE_SALE"] / all_kinds["SALE"] <= 0.04
    assert all_kinds["LAYAWAY"] > 0 and all_kinds["DEFERRED"] > 0
    assert all_kinds["LAYAWAY"] + all_kinds["DEFERRED"] < 0.02 * all_kinds["SALE"]
    assert 0.2 <= cash / (cash + cards) <= 0.6
    assert 0.05 <= discounted / lines <= 0.3
    assert np.mean(lines_per_ticket["grocery"]) > 5 > np.mean(lines_per_ticket["fashion"]) > 1.3


def test_footfall_follows_the_weekday_and_the_hour(demo_catalogue: Catalogue) -> None:
    config = SimulationConfig(seed=4, start=date(2026, 3, 30), days=6)  # Monday to Saturday
    store = demo_catalogue.store("wg-fashion")
    effects = store_effects(demo_catalogue, config)
    per_day: Counter[date] = Counter()
    per_hour: Counter[int] = Counter()
    for day in config.dates:
        plan = plan_day(demo_catalogue, store, day, config, effects[store.id])
        assert plan is not None
        per_day[plan.day] = plan.visitors
        for ms in plan.entry_ms.tolist():
            per_hour[datetime.fromtimestamp(ms / 1000, tz=store.tz).hour] += 1
    assert per_day[date(2026, 4, 4)] > 1.25 * per_day[date(2026, 3, 30)]  # Saturday busier than Monday
    assert per_hour[17] > 1.5 * per_hour[9]  # the evening peak over the first hour
    assert set(per_hour) == set(range(9, 21))  # only within opening hours (09-20, Fri/Sat to 21)


def test_dst_days_have_23_and_25_local_hours(small: Catalogue, demo_catalogue: Catalogue) -> None:
    berlin = small.store("ber-24h")
    assert len(local_day_hours(berlin, date(2026, 3, 29))) == 23
    assert len(local_day_hours(berlin, date(2026, 10, 25))) == 25
    ny = demo_catalogue.store("nyc-soho")
    assert len(local_day_hours(ny, date(2026, 11, 1))) == 25
    # Sunday 11:00 in New York is 15:00 UTC before the change (EDT) and 16:00 UTC on the day (EST).
    assert open_interval(ny, date(2026, 10, 25))[0] == datetime(2026, 10, 25, 15, tzinfo=UTC)  # type: ignore[index]
    assert open_interval(ny, date(2026, 11, 1))[0] == datetime(2026, 11, 1, 16, tzinfo=UTC)  # type: ignore[index]


def test_a_store_open_all_day_is_visited_in_23_local_hours_on_spring_forward(small: Catalogue) -> None:
    config = SimulationConfig(seed=9, start=date(2026, 3, 29))
    plan = next(p for p in plans(small, config) if p.store.id == "ber-24h")
    tz = plan.store.tz
    local_hours = {datetime.fromtimestamp(ms / 1000, tz=tz).replace(minute=0, second=0, microsecond=0)
                   for ms in plan.entry_ms.tolist()}  # fmt: skip
    assert len(local_hours) == 23
    assert all(h.hour != 2 for h in local_hours)  # 02:00-03:00 does not exist that night
    assert plan.closes_ms - plan.opens_ms == 23 * 3_600_000


def test_half_and_quarter_hour_zones_bucket_on_their_local_hours(small: Catalogue) -> None:
    config = SimulationConfig(seed=2, start=MONDAY)
    for plan in plans(small, config):
        if plan.store.id not in ("kol-food", "ktm-sports"):
            continue
        minute = {"kol-food": 30, "ktm-sports": 15}[plan.store.id]
        assert datetime.fromtimestamp(plan.opens_ms / 1000, tz=UTC).minute == minute
        hours = [datetime.fromtimestamp(ms / 1000, tz=plan.store.tz).hour for ms in plan.entry_ms.tolist()]
        assert min(hours) == 9 and max(hours) == 19  # 09:00-20:00 local, not shifted by the odd offset
    kol = small.store("kol-food")
    assert {h.minute for h in local_day_hours(kol, MONDAY)} == {30}


def test_store_days_do_not_depend_on_the_length_of_the_run(small: Catalogue) -> None:
    one = {(p.store.id, p.day): p for p in plans(small, SimulationConfig(seed=3, start=MONDAY, days=1))}
    two = {(p.store.id, p.day): p for p in plans(small, SimulationConfig(seed=3, start=MONDAY, days=2))}
    assert set(one) < set(two)
    for key, plan in one.items():
        assert np.array_equal(plan.entry_ms, two[key].entry_ms)
        assert [t.fields for t in plan.tickets] == [t.fields for t in two[key].tickets]
    frames = [ev.record for ev in simulate(small, SimulationConfig(seed=3, start=MONDAY, days=2, fps=0.05))
              if isinstance(ev.record, CameraCount) and ev.record.camera_id == "c-kol"]  # fmt: skip
    seqs = [f.frame_seq for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # frame_seq keeps increasing across days


def test_lazy_merge_equals_merging_every_store_day_at_once(small: Catalogue) -> None:
    import heapq

    from producers.simulator.simulation import store_day_events, store_effects

    config = SimulationConfig(seed=5, start=MONDAY, days=2, fps=0.02, incidents=["late:fraction=0.05,minutes=30"])
    effects = store_effects(small, config)
    streams = [store_day_events(small, plan, config, effects[plan.store.id]) for plan in plans(small, config)]
    reference = list(heapq.merge(*streams, key=lambda ev: ev.emit_at))
    assert fingerprint(list(simulate(small, config))) == fingerprint(reference)
