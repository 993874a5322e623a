import pytest

from streams.accumulators import add_frame, add_ticket, hourly_record, new_hour
from tests.support.events import frame, ms, ticket

START = ms("2026-03-29T10:00:00+02:00")


def record(acc: dict, area: float = 100.0) -> dict:
    return hourly_record(
        acc, area_m2=area, mall_id="m", category="c", tenant_id=None, currency="EUR", is_final=True, updated_at_ms=0
    )


def test_metrics_of_an_hour() -> None:
    acc = new_hour("s", None, START, "Europe/Berlin")
    t = "2026-03-29T10:10:00+02:00"
    for ev in (
        ticket("s", t, 2000, cash=True, units=2),
        ticket("s", t, 1000, discount=250, units=1),
        ticket("s", t, -500, kind="REFUND"),
        ticket("s", t, 700, units=1),
        ticket("s", t, -700, kind="VOID", units=-1),  # cancels the sale above (signed amounts)
        ticket("s", t, 300, kind="EMPLOYEE_SALE"),
        ticket("s", t, 9999, channel="ONLINE"),
        ticket("s", t, 9999, kind="LAYAWAY"),
    ):
        assert add_ticket(acc, ev)
    add_frame(acc, frame("c1", "s", t, 1, entries=3, exits=1))
    add_frame(acc, frame("c2", "s", t, 1, entries=5, exits=2))
    r = record(acc)
    assert (r["visitors"], r["exits"], r["transactions"], r["net_revenue"]) == (8, 3, 2, 3000)
    assert (r["refunds"], r["refund_amount"], r["voids"], r["employee_sales"]) == (1, 500, 1, 1)
    assert r["conversion"] == pytest.approx(2 / 8)
    assert r["avg_ticket"] == pytest.approx(1500)
    assert r["units_per_transaction"] == pytest.approx(1.5)
    assert r["revenue_per_visitor"] == pytest.approx(375)
    assert r["revenue_per_m2"] == pytest.approx(30)
    assert r["void_rate"] == pytest.approx(1 / 7)  # seven in-store tickets incl. layaway
    assert r["discount_rate"] == pytest.approx(250 / 3250)
    assert r["cash_share"] == pytest.approx(2000 / 3700)  # over the sales' payments, the voided one too
    assert r["local_hour"] == "2026-03-29T10:00:00+02:00"
    assert r["quality_flags"] == []


def test_a_sale_and_its_void_cancel_out() -> None:
    acc = new_hour("s", None, START, "Europe/Berlin")
    t = "2026-03-29T10:20:00+02:00"
    assert add_ticket(acc, ticket("s", t, 1200, units=2, discount=100))
    assert add_ticket(acc, ticket("s", t, -1200, kind="VOID", units=-2, discount=-100))
    add_frame(acc, frame("c1", "s", t, 1, entries=4))
    r = record(acc)
    assert (r["transactions"], r["net_revenue"], r["gross_revenue"], r["units"], r["voids"]) == (0, 0, 0, 0, 1)
    assert r["conversion"] == 0 and r["avg_ticket"] is None


def test_conversion_null_without_visitors_and_flagged_over_one() -> None:
    acc = new_hour("s", None, START, "Europe/Berlin")
    add_ticket(acc, ticket("s", START + 1))
    r = record(acc)
    assert r["conversion"] is None and r["revenue_per_visitor"] is None
    assert "NO_CAMERA_DATA" in r["quality_flags"]
    add_ticket(acc, ticket("s", START + 2))
    add_frame(acc, frame("c", "s", START + 3, 1, entries=1))
    r = record(acc)
    assert r["conversion"] == 2.0
    assert "CONVERSION_OVER_ONE" in r["quality_flags"]


def test_duplicates_count_once() -> None:
    acc = new_hour("s", None, START, "Europe/Berlin")
    t = ticket("s", START + 1, ticket_id="x")
    assert add_ticket(acc, t) and not add_ticket(acc, dict(t))
    f = frame("c", "s", START + 1, 7, entries=2)
    assert add_frame(acc, f) and not add_frame(acc, dict(f))
    assert add_frame(acc, frame("other", "s", START + 1, 7, entries=1))
    r = record(acc)
    assert (r["transactions"], r["visitors"]) == (1, 3)
