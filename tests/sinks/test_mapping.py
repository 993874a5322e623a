"""Record-to-row mapping: pure functions, no ClickHouse."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from sinks.clickhouse.mapping import COLUMNS, MappingError, hourly_version, rows_for
from sinks.clickhouse.sink import Pending, commit_offsets, group_rows, is_data_error
from tests.sinks.conftest import T0, alert, frame, hourly, ticket

TZ = {"wg-fashion": "Europe/Berlin", "mum-bandra": "Asia/Kolkata", "nyc-soho": "America/New_York"}


def as_dict(table: str, row: tuple) -> dict:  # type: ignore[type-arg]
    assert len(row) == len(COLUMNS[table])
    return dict(zip(COLUMNS[table], row, strict=True))


def test_ticket_rows_carry_local_date_and_hour_in_the_store_zone() -> None:
    late = datetime(2026, 11, 20, 19, 45, tzinfo=UTC)  # 01:15 next day in Kolkata (+5:30)
    rows = rows_for(POS_TICKETS, ticket(1, store="mum-bandra", at=late, currency="INR"), TZ)
    head = as_dict("tickets", rows["tickets"][0])
    assert head["local_date"] == date(2026, 11, 21) and head["local_hour"] == 1
    assert head["timezone"] == "Asia/Kolkata" and head["occurred_at"] == late
    assert head["card_amount"] == 5950 and head["cash_amount"] == 0
    assert head["payment_methods"] == ["CARD"] and head["line_count"] == 2 and head["units"] == 3.0
    lines = [as_dict("ticket_lines", r) for r in rows["ticket_lines"]]
    assert [line["line_no"] for line in lines] == [1, 2]
    assert lines[0]["category"] == "tops" and lines[1]["category"] == ""


def test_new_york_dst_end_local_date() -> None:
    at = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, the first of two 01:30s
    head = as_dict("tickets", rows_for(POS_TICKETS, ticket(1, store="nyc-soho", at=at), TZ)["tickets"][0])
    assert (head["local_date"], head["local_hour"]) == (date(2026, 11, 1), 1)


def test_unknown_store_is_a_mapping_error_naming_it() -> None:
    with pytest.raises(MappingError, match="'ghost' is not in the catalogue"):
        rows_for(CAMERA_COUNTS, frame(1, store="ghost"), TZ)


def test_camera_and_alert_rows() -> None:
    cam = as_dict("camera_frames", rows_for(CAMERA_COUNTS, frame(3), TZ)["camera_frames"][0])
    assert cam["zone_id"] == "" and cam["frame_seq"] == 3 and cam["timezone"] == "Europe/Berlin"
    al = as_dict("alerts", rows_for(ALERTS, alert(), TZ)["alerts"][0])
    assert al["state"] == "FIRING" and al["details"] == {"baseline": "median of 4 Fridays"}
    assert as_dict("alerts", rows_for(ALERTS, alert(store="ghost"), TZ)["alerts"][0])["timezone"] == "UTC"


def test_hourly_version_orders_revision_then_final_then_update() -> None:
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    assert hourly_version(0, False, t2) < hourly_version(0, True, t1) < hourly_version(1, False, t1)
    assert hourly_version(0, False, t1) < hourly_version(0, False, t2)
    row = as_dict(
        "conversion_hourly", rows_for(CONVERSION_HOURLY, hourly(zone_id="womens"), TZ)["conversion_hourly"][0]
    )
    assert row["local_date"] == date(2026, 11, 20) and row["zone_id"] == "womens"
    assert row["version"] == hourly_version(0, True, row["updated_at"])


def test_batch_helpers() -> None:
    items = [
        Pending("a", 0, 5, None, None, {"ticket_lines": [(1,)], "tickets": [(2,)]}),
        Pending("a", 0, 7, None, None, {"tickets": [(3,)]}),
        Pending("a", 1, 2, None, None, {}),
        Pending("b", 0, 9, None, None, {"alerts": [(4,)]}),
    ]
    assert group_rows(items) == [("tickets", [(2,), (3,)]), ("ticket_lines", [(1,)]), ("alerts", [(4,)])]
    assert commit_offsets(items) == [("a", 0, 8), ("a", 1, 3), ("b", 0, 10)]


def test_error_classification() -> None:
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    assert is_data_error(DatabaseError("Code: 469. DB::Exception: Constraint `c` is violated (VIOLATED_CONSTRAINT)"))
    assert not is_data_error(DatabaseError("Code: 60. DB::Exception: Unknown table (UNKNOWN_TABLE)"))
    assert not is_data_error(OperationalError("connection refused"))
    assert T0.tzinfo is UTC
