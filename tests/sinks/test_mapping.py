"""Record-to-row mapping: pure functions, no ClickHouse."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from sinks.clickhouse.mapping import (
    COLUMNS,
    LocalClock,
    Mapped,
    MappingError,
    columns_for,
    hourly_version,
    plain_record,
    rows_for,
)
from sinks.clickhouse.sink import is_data_error, merge
from tests.support.records import T0, alert, frame, hourly, ticket
from tillflow.kafka import commit_offsets

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
    tickets = Mapped({"tickets": [["a", "b"]], "ticket_lines": [["a1", "a2", "b1"]]},
                     {"tickets": [0, 2], "ticket_lines": [0, 0, 2]})  # fmt: skip
    frames = Mapped({"camera_frames": [["f"]]}, {"camera_frames": [1]})
    hours = Mapped({"conversion_hourly": [["h"]]}, {"conversion_hourly": [3]})
    merged = merge([hours, frames, tickets])
    assert list(merged.columns) == ["tickets", "ticket_lines", "camera_frames", "conversion_hourly"]
    assert merged.owners["ticket_lines"] == [0, 0, 2]
    half = merged.take({0, 3})
    assert half.columns["ticket_lines"] == [["a1", "a2"]] and half.columns["camera_frames"] == [[]]
    assert half.owners == {"tickets": [0], "ticket_lines": [0, 0], "camera_frames": [], "conversion_hourly": [3]}
    items = [SimpleNamespace(topic=t, partition=p, offset=o) for t, p, o in [("a", 0, 5), ("a", 0, 7), ("a", 1, 2),
                                                                              ("b", 0, 9)]]  # fmt: skip
    assert commit_offsets(items) == [("a", 0, 8), ("a", 1, 3), ("b", 0, 10)]


def plain(topic: str, record: Any, **changes: Any) -> dict[str, Any]:
    return {**plain_record(topic, record), **changes}


def test_contract_checks_over_columns_name_each_refused_record() -> None:
    refund = plain(POS_TICKETS, ticket(3), kind="REFUND")  # positive amounts on a refund
    records = [
        plain(POS_TICKETS, ticket(1)),
        plain(POS_TICKETS, ticket(2), currency="eur"),
        refund,
        plain(POS_TICKETS, ticket(4), ticket_id="  "),
        plain(POS_TICKETS, ticket(5), occurred_at=plain(POS_TICKETS, ticket(5))["ingested_at"] + 2 * 86_400_000),
        plain(POS_TICKETS, ticket(6), store_id="ghost"),
        plain(POS_TICKETS, ticket(7), lines=[{**plain(POS_TICKETS, ticket(7))["lines"][0], "quantity": float("nan")}]),
        plain(POS_TICKETS, ticket(8), kind="VOID", gross_amount=-5950, net_amount=-5000),  # a correct void
    ]
    mapped = columns_for(POS_TICKETS, records, TZ)
    reasons = {i: f"{stage}: {reason}" for i, (stage, reason) in mapped.rejects.items()}
    assert reasons[1] == (
        "validate: currency must be an active ISO 4217 code such as EUR, got 'eur' (codes are upper case: EUR)"
    )
    assert reasons[2] == "validate: REFUND ticket T3: gross_amount 5950 must be <= 0 (signed amounts)"
    assert reasons[3].startswith("validate: ticket_id: must not be empty")
    assert reasons[4].startswith("validate: occurred_at is more than a day after ingested_at")
    assert reasons[5] == "map: store 'ghost' is not in the catalogue, so its local time is unknown"
    assert reasons[6] == "validate: lines.quantity: must be a finite number, got nan"
    assert set(reasons) == {1, 2, 3, 4, 5, 6}
    assert mapped.owners["tickets"] == [0, 7] and mapped.owners["ticket_lines"] == [0, 0, 7, 7]
    tickets = dict(zip(COLUMNS["tickets"], mapped.columns["tickets"], strict=True))
    assert tickets["ticket_id"] == ["T1", "T8"] and tickets["net_amount"] == [5000, -5000]

    frames = [plain(CAMERA_COUNTS, frame(1)), plain(CAMERA_COUNTS, frame(2), entries=-1),
              plain(CAMERA_COUNTS, frame(3), frame_ts=10**17)]  # fmt: skip
    mapped = columns_for(CAMERA_COUNTS, frames, TZ)
    assert mapped.rejects == {
        1: ("validate", "entries: must be >= 0, got -1"),
        2: ("validate", "frame_ts: epoch milliseconds 100000000000000000 are outside 1900-2299"),
    }
    hours = [plain(CONVERSION_HOURLY, hourly(), conversion=float("inf")), plain(CONVERSION_HOURLY, hourly())]
    assert columns_for(CONVERSION_HOURLY, hours, TZ).rejects == {
        0: ("validate", "conversion: must be a finite number, got inf")
    }


def test_local_clock_across_offset_changes() -> None:
    clock = LocalClock()
    # Lord Howe Island moves by 30 minutes at 02:00 local; Kathmandu is +5:45; New York falls back at 06:00 UTC.
    cases = [("Australia/Lord_Howe", datetime(2026, 4, 4, 14, 59, tzinfo=UTC)),
             ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, 0, tzinfo=UTC)),
             ("Asia/Kathmandu", datetime(2026, 1, 1, 18, 14, tzinfo=UTC)),
             ("Asia/Kathmandu", datetime(2026, 1, 1, 18, 15, tzinfo=UTC)),
             ("America/New_York", datetime(2026, 11, 1, 5, 59, 59, 999000, tzinfo=UTC)),
             ("America/New_York", datetime(2026, 11, 1, 6, 0, tzinfo=UTC))]  # fmt: skip
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for zone, at in cases:
        ms = (at - epoch) // timedelta(milliseconds=1)
        local = at.astimezone(__import__("zoneinfo").ZoneInfo(zone)).replace(tzinfo=UTC)
        assert clock.local_ms([zone], [ms]) == [(local - epoch) // timedelta(milliseconds=1)], (zone, at)


def test_error_classification() -> None:
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    assert is_data_error(DatabaseError("Code: 469. DB::Exception: Constraint `c` is violated (VIOLATED_CONSTRAINT)"))
    assert not is_data_error(DatabaseError("Code: 60. DB::Exception: Unknown table (UNKNOWN_TABLE)"))
    assert not is_data_error(OperationalError("connection refused"))
    assert T0.tzinfo is UTC
