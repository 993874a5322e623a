from datetime import UTC, datetime, timedelta

from rich.console import Console

from tillflow.board import Board

H = datetime(2026, 3, 29, 13, tzinfo=UTC)


def rec(
    hour: datetime,
    *,
    store: str = "s1",
    visitors: int = 100,
    tx: int = 20,
    final: bool = False,
    revision: int = 0,
    updated: int = 0,
    zone: str | None = None,
) -> dict:
    return {
        "store_id": store,
        "zone_id": zone,
        "hour_start": hour,
        "local_hour": "2026-03-29T15:00:00+02:00",
        "visitors": visitors,
        "transactions": tx,
        "net_revenue": tx * 1000,
        "currency": "EUR",
        "conversion": tx / visitors if visitors else None,
        "revenue_per_m2": 12.5,
        "quality_flags": [],
        "is_final": final,
        "revision": revision,
        "updated_at": H + timedelta(seconds=updated),
    }


def test_newest_revision_wins_and_late_live_updates_do_not_undo_a_final():
    b = Board()
    b.add_conversion(rec(H, tx=5, updated=1))
    b.add_conversion(rec(H, tx=20, final=True, updated=2))
    b.add_conversion(rec(H, tx=7, updated=3))  # a live update delivered after the final one
    assert b.hours[("s1", H)]["transactions"] == 20
    b.add_conversion(rec(H, tx=21, final=True, revision=1, updated=4))  # a correction
    assert b.hours[("s1", H)]["transactions"] == 21
    b.add_conversion(rec(H, tx=99, zone="womens", final=True, revision=5))  # zone rows are not store rows
    assert b.hours[("s1", H)]["transactions"] == 21


def test_latest_hour_per_store_and_totals_over_final_hours():
    b = Board()
    b.add_conversion(rec(H, visitors=100, tx=20, final=True))
    b.add_conversion(rec(H + timedelta(hours=1), visitors=50, tx=10, final=True))
    b.add_conversion(rec(H + timedelta(hours=2), visitors=10, tx=1))  # live: not in totals
    b.add_conversion(rec(H, store="s2", visitors=0, tx=0, final=True))
    assert [r["hour_start"] for r in b.latest_per_store()] == [H + timedelta(hours=2), H]
    totals = b.totals()
    assert totals["s1"]["visitors"] == 150 and totals["s1"]["transactions"] == 30 and totals["s1"]["hours"] == 2
    assert totals["s1"]["conversion"] == 0.2
    assert totals["s2"]["conversion"] is None


def test_renders_stores_and_alerts():
    b = Board()
    b.add_conversion(rec(H, final=True, revision=1))
    b.add_alert(
        {
            "alert_id": "a",
            "state": "FIRING",
            "kind": "SALES_DROP",
            "store_id": "s1",
            "hour_start": H,
            "fired_at": H,
            "message": "net revenue 10% of expected",
        }
    )
    console = Console(width=160, record=True)
    console.print(b.render())
    text = console.export_text()
    assert "final r1" in text and "20.0%" in text and "200.00 EUR" in text
    assert "SALES_DROP" in text and "net revenue 10% of expected" in text
