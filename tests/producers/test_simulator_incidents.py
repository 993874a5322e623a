"""Incidents: parsing, ground truth, and that each one shows in the generated data (and only where injected)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from producers.simulator import (
    DayPlan,
    Incident,
    IncidentError,
    SimulationConfig,
    expected_alerts,
    injected,
    parse_incident,
    plans,
    simulate,
)
from schemas.catalogue import Catalogue
from schemas.models import CameraCount, PaymentMethod, PosTicket, TicketKind

MONDAY = date(2026, 3, 30)


def plan_of(cat: Catalogue, config: SimulationConfig, store: str, day: date = MONDAY) -> DayPlan:
    return next(p for p in plans(cat, config) if p.store.id == store and p.day == day)


def sales_in(plan: DayPlan, start: datetime, end: datetime) -> list[str]:
    lo, hi = start.timestamp() * 1000, end.timestamp() * 1000
    return [
        str(t.fields["ticket_id"])
        for t in plan.tickets
        if t.fields["kind"] is TicketKind.SALE and t.visitor >= 0 and lo <= t.occurred_ms < hi
    ]


def test_parse_cli_strings() -> None:
    inc = parse_incident("sales-drop:store=wg-volt,at=2026-03-29T14,factor=0.2")
    assert inc == Incident(kind="sales-drop", store="wg-volt", at=datetime(2026, 3, 29, 14), factor=0.2)
    assert parse_incident(inc.spec()) == inc
    assert parse_incident("silent-feed:store=a,at=2026-03-30T12:30,for=90m").param("duration_h") == 1.5
    assert parse_incident("late:fraction=0.1,minutes=30,topic=pos.tickets").topic == "pos.tickets"
    assert parse_incident("duplicate:lag=5").param("fraction") == 0.02


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("meltdown:store=a", "kind: Input should be 'sales-drop'"),
        ("sales-drop:store=a", "sales-drop needs store= and at="),
        ("sales-drop:store=a,at=yesterday", "at='yesterday' is not an ISO local time"),
        ("sales-drop:store=a,at=2026-03-30T14+02:00", "give store-local time without an offset"),
        ("late:fraction=2", "fraction: Input should be less than or equal to 1"),
        ("late:fraction", "'fraction' is not key=value"),
        ("silent-feed:store=a,at=2026-03-30T12,for=soon", "not a duration: 'soon'"),
        ("dead-camera:at=2026-03-30T12", "dead-camera needs camera= or store="),
        ("late:colour=red", "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_incidents_say_which_and_why(text: str, message: str) -> None:
    with pytest.raises(IncidentError) as exc:
        parse_incident(text)
    assert f"incident {text!r}" in str(exc.value) and message in str(exc.value)


def test_unknown_store_or_camera_is_refused_when_resolved(small: Catalogue) -> None:
    with pytest.raises(IncidentError, match="no store 'nowhere' in the catalogue"):
        injected(small, SimulationConfig(start=MONDAY, incidents=["sales-drop:store=nowhere,at=2026-03-30T14"]))
    with pytest.raises(IncidentError, match="no camera 'cam-x'"):
        injected(small, SimulationConfig(start=MONDAY, incidents=["dead-camera:camera=cam-x"]))


def test_ground_truth_names_store_hours_in_utc(small: Catalogue) -> None:
    config = SimulationConfig(
        start=MONDAY,
        days=2,
        incidents=[
            "sales-drop:store=kol-food,at=2026-03-30T14,for=2h",
            "underreporting:store=ber-fashion,at=2026-03-31",
            "dead-camera:camera=c-ktm,at=2026-03-31T18",
            "late:fraction=0.1",
        ],
    )
    truth = injected(small, config)
    drop, under, dead, late = truth
    assert drop.store_id == "kol-food" and drop.expected_alert == "SALES_DROP"
    assert drop.hours == (datetime(2026, 3, 30, 8, 30, tzinfo=UTC), datetime(2026, 3, 30, 9, 30, tzinfo=UTC))
    assert drop.local_hours == ("2026-03-30T14:00:00+05:30", "2026-03-30T15:00:00+05:30")
    assert under.expected_alert == "UNDERREPORTING" and under.end is None
    assert len(under.hours) == 11 and under.hours[0] == datetime(2026, 3, 31, 7, tzinfo=UTC)  # 09:00 CEST
    assert dead.camera_id == "c-ktm" and dead.hours == (
        datetime(2026, 3, 31, 12, 15, tzinfo=UTC),
        datetime(2026, 3, 31, 13, 15, tzinfo=UTC),
    )  # 18:00 and 19:00 in Kathmandu, then closed
    assert late.store_id is None and late.expected_alert is None and late.hours == ()
    alerts = expected_alerts(truth)
    assert ("SALES_DROP", "kol-food", datetime(2026, 3, 30, 9, 30, tzinfo=UTC)) in alerts
    assert ("CAMERA_SILENT", "ktm-sports", datetime(2026, 3, 31, 13, 15, tzinfo=UTC)) in alerts
    assert len(alerts) == 2 + 11 + 2 and {a[0] for a in alerts} == {"SALES_DROP", "UNDERREPORTING", "CAMERA_SILENT"}


def test_sales_drop_cuts_sales_in_that_hour_only_and_leaves_footfall(small: Catalogue) -> None:
    base = plan_of(small, SimulationConfig(seed=3, start=MONDAY), "ber-fashion")
    drop = plan_of(
        small,
        SimulationConfig(seed=3, start=MONDAY, incidents=["sales-drop:store=ber-fashion,at=2026-03-30T17,factor=0.1"]),
        "ber-fashion",
    )
    assert np.array_equal(base.entry_ms, drop.entry_ms) and np.array_equal(base.exit_ms, drop.exit_ms)
    h0, h1 = datetime(2026, 3, 30, 15, tzinfo=UTC), datetime(2026, 3, 30, 16, tzinfo=UTC)  # 17:00 CEST
    before, after = sales_in(base, h0, h1), sales_in(drop, h0, h1)
    assert len(before) >= 10 and len(after) <= 0.35 * len(before)
    assert set(after) <= set(before)
    rest_base = {
        str(t.fields["ticket_id"])
        for t in base.tickets
        if not h0.timestamp() * 1000 <= t.occurred_ms < h1.timestamp() * 1000
    }
    rest_drop = {
        str(t.fields["ticket_id"])
        for t in drop.tickets
        if not h0.timestamp() * 1000 <= t.occurred_ms < h1.timestamp() * 1000
    }
    assert rest_base - rest_drop <= {tid + "V" for tid in before}  # a void may follow its sale into the next hour
    assert rest_drop <= rest_base
    staff = lambda p: [t.fields for t in p.tickets if t.visitor < 0]  # noqa: E731
    assert staff(drop) == staff(base) != []  # employee sales are not the store's sales drop


def test_traffic_drop_removes_visitors_in_that_hour(small: Catalogue) -> None:
    base = plan_of(small, SimulationConfig(seed=3, start=MONDAY), "kol-food")
    incident = "traffic-drop:store=kol-food,at=2026-03-30T13,factor=0.25"
    drop = plan_of(small, SimulationConfig(seed=3, start=MONDAY, incidents=[incident]), "kol-food")
    h0 = datetime(2026, 3, 30, 7, 30, tzinfo=UTC).timestamp() * 1000  # 13:00 IST
    h1 = h0 + 3_600_000
    in_hour = lambda p: int(((p.entry_ms >= h0) & (p.entry_ms < h1)).sum())  # noqa: E731
    assert in_hour(base) > 40 and in_hour(drop) <= 0.4 * in_hour(base)
    assert base.visitors - in_hour(base) == drop.visitors - in_hour(drop)  # other hours unchanged


def test_underreporting_hides_cash_sales_from_the_date_on(small: Catalogue) -> None:
    def cash_sales(p: DayPlan) -> int:
        return len(
            [
                t
                for t in p.tickets
                if t.fields["kind"] is TicketKind.SALE
                and all(pay.method is PaymentMethod.CASH for pay in t.fields["payments"])  # type: ignore[attr-defined]
            ]
        )

    incident = ["underreporting:store=ber-fashion,at=2026-03-31,share=0.6"]
    for day, hidden in ((MONDAY, False), (date(2026, 3, 31), True)):
        base = plan_of(small, SimulationConfig(seed=4, start=MONDAY, days=2), "ber-fashion", day)
        under = plan_of(small, SimulationConfig(seed=4, start=MONDAY, days=2, incidents=incident), "ber-fashion", day)
        assert base.visitors == under.visitors
        if hidden:
            assert cash_sales(under) <= 0.6 * cash_sales(base) and under.dropped_tickets > 5
            ids_base = {t.fields["ticket_id"]: t for t in base.tickets}
            ids_under = {t.fields["ticket_id"] for t in under.tickets}
            assert ids_under <= set(ids_base)
            for missing in set(ids_base) - ids_under:
                fields = ids_base[missing].fields
                assert fields["kind"] in (TicketKind.SALE, TicketKind.VOID), missing
                assert all(pay.method is PaymentMethod.CASH for pay in fields["payments"])  # type: ignore[attr-defined]
        else:
            assert cash_sales(under) == cash_sales(base) and under.dropped_tickets == 0


def test_silent_feed_delivers_no_tickets_while_cameras_count(small: Catalogue) -> None:
    config = SimulationConfig(
        seed=6, start=MONDAY, fps=0.2, incidents=["silent-feed:store=ber-fashion,at=2026-03-30T12,for=2h"]
    )
    t0, t1 = datetime(2026, 3, 30, 10, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC)
    tickets_in = entries_in = tickets_around = 0
    for ev in simulate(small, config):
        rec: Any = ev.record
        if rec.store_id != "ber-fashion":
            continue
        if isinstance(rec, PosTicket):
            tickets_in += t0 <= rec.occurred_at < t1
            tickets_around += t1 <= rec.occurred_at < t1 + timedelta(hours=2)
        elif t0 <= rec.frame_ts < t1:
            entries_in += rec.entries
    assert tickets_in == 0 and tickets_around > 20 and entries_in > 100


def test_dead_camera_sends_no_frames_in_its_window(small: Catalogue) -> None:
    config = SimulationConfig(
        seed=6, start=MONDAY, fps=0.2, incidents=["dead-camera:camera=c-ber-side,at=2026-03-30T15,for=3h"]
    )
    t0, t1 = datetime(2026, 3, 30, 13, tzinfo=UTC), datetime(2026, 3, 30, 16, tzinfo=UTC)
    frames: Counter[tuple[str, bool]] = Counter()
    for ev in simulate(small, config):
        if isinstance(ev.record, CameraCount) and ev.record.store_id == "ber-fashion":
            frames[(ev.record.camera_id, t0 <= ev.record.frame_ts < t1)] += 1
    assert frames[("c-ber-side", True)] == 0 and frames[("c-ber-side", False)] > 1000
    assert frames[("c-ber-main", True)] == 3 * 3600 // 5  # the other door keeps counting


def test_late_events_arrive_minutes_after_their_event_time(small: Catalogue) -> None:
    config = SimulationConfig(seed=2, start=MONDAY, fps=0.2, incidents=["late:store=kol-food,fraction=0.1,minutes=25"])
    late = total = 0
    emitted = []
    for ev in simulate(small, config):
        emitted.append(ev.emit_at)
        rec: Any = ev.record
        event_time = rec.occurred_at if isinstance(rec, PosTicket) else rec.frame_ts
        if rec.store_id != "kol-food":
            assert not ev.late and ev.emit_at - event_time < timedelta(seconds=5)
            continue
        total += 1
        if ev.late:
            late += 1
            assert ev.emit_at - event_time >= timedelta(minutes=25)
            if isinstance(rec, PosTicket):
                assert rec.ingested_at == ev.emit_at
        else:
            assert ev.emit_at - event_time < timedelta(seconds=5)
    assert emitted == sorted(emitted)
    assert 0.08 < late / total < 0.12


def test_duplicates_repeat_the_same_ticket_and_frame(small: Catalogue) -> None:
    config = SimulationConfig(seed=2, start=MONDAY, fps=0.2, incidents=["duplicate:fraction=0.05,lag=20"])
    seen: dict[tuple[str, str | int], PosTicket | CameraCount] = {}
    dups: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for ev in simulate(small, config):
        rec: Any = ev.record
        key = (rec.ticket_id, 0) if isinstance(rec, PosTicket) else (rec.camera_id, rec.frame_seq)
        total[ev.topic] += 1
        if ev.duplicate:
            dups[ev.topic] += 1
            assert seen[key] == rec  # the same ticket_id / (camera_id, frame_seq), same content
        else:
            assert key not in seen
            seen[key] = rec
    for topic in ("pos.tickets", "camera.counts"):
        assert 0.03 < dups[topic] / (total[topic] - dups[topic]) < 0.07


def test_late_window_in_store_local_time_delays_exactly_the_events_inside_it(small: Catalogue) -> None:
    config = SimulationConfig(
        seed=2, start=MONDAY, fps=0.1, incidents=["late:store=kol-food,fraction=1,minutes=10,at=2026-03-30T12,for=1h"]
    )
    t0, t1 = datetime(2026, 3, 30, 6, 30, tzinfo=UTC), datetime(2026, 3, 30, 7, 30, tzinfo=UTC)  # 12:00-13:00 IST
    late = 0
    for ev in simulate(small, config):
        rec: Any = ev.record
        event_time = rec.occurred_at if isinstance(rec, PosTicket) else rec.frame_ts
        inside = rec.store_id == "kol-food" and t0 <= event_time < t1
        assert ev.late == inside
        late += ev.late
    assert late > 360  # every frame of the hour (one per 10 s) and the tickets


def test_underreporting_modes_refund_discount_and_employee(small: Catalogue) -> None:
    """The three ways of keeping money the rates show: fake full refunds, discounts never given, sales rung
    as staff purchases; the same visitors, the same buyers (ticket ids), only the declared tickets change."""
    base = plan_of(small, SimulationConfig(seed=3, start=MONDAY), "ber-fashion")

    def under(mode: str) -> DayPlan:
        spec = f"underreporting:store=ber-fashion,mode={mode},share=0.3"
        return plan_of(small, SimulationConfig(seed=3, start=MONDAY, incidents=[spec]), "ber-fashion")

    def by_id(plan: DayPlan) -> dict[str, dict[str, object]]:
        return {str(t.fields["ticket_id"]): t.fields for t in plan.tickets}

    sales = {k: f for k, f in by_id(base).items() if f["kind"] is TicketKind.SALE and not k.endswith("V")}
    assert len(sales) >= 40

    refund = by_id(under("refund"))
    fakes = {k: f for k, f in refund.items() if k.endswith("F")}
    assert 0.15 * len(sales) < len(fakes) < 0.45 * len(sales)
    for f in fakes.values():
        original = refund[str(f["original_ticket_id"])]
        assert f["kind"] is TicketKind.REFUND and f["net_amount"] == -original["net_amount"]  # type: ignore[operator]
    assert set(refund) - set(fakes) == set(by_id(base))  # every sale still declared

    discount = by_id(under("discount"))
    assert set(discount) == set(by_id(base))
    cut = [k for k in sales if discount[k]["net_amount"] < sales[k]["net_amount"]]  # type: ignore[operator]
    assert 0.15 * len(sales) < len(cut) < 0.45 * len(sales)
    assert all(discount[k]["discount_amount"] > 0 for k in cut)  # type: ignore[operator]

    employee = by_id(under("employee"))
    assert set(employee) == set(by_id(base))
    staff = [k for k in sales if employee[k]["kind"] is TicketKind.EMPLOYEE_SALE]
    assert 0.15 * len(sales) < len(staff) < 0.45 * len(sales)
