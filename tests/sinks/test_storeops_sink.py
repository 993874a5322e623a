"""staff.shifts and storeops.hourly into ClickHouse: mapping, the sink's insert order, the tables and views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.storeops import OpsHourly, StaffShift
from schemas.topics import STAFF_SHIFTS, STOREOPS_HOURLY
from sinks.clickhouse.mapping import TOPIC_TABLES, columns_for, plain_record, rows_for
from sinks.clickhouse.sink import TABLE_ORDER, merge

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def ops(hour: int, grain: str = "STORE", dimension: str = "", revision: int = 0, **kw: Any) -> OpsHourly:
    start = T0 + timedelta(hours=hour)
    fields: dict[str, Any] = {
        "store_id": "wg-grocer", "grain": grain, "dimension": dimension, "hour_start": start,
        "local_hour": start.astimezone().isoformat(), "timezone": "Europe/Berlin", "currency": "EUR",
        "visitors": 100, "transactions": 30, "net_revenue": 90_000, "conversion": 0.3, "staff_minutes": 180.0,
        "staff_on_floor": 3.0, "visitors_per_staff": 33.3, "queue_minutes": 60, "queue_mean": 1.0 + hour,
        "queue_p90": 2.0 + hour, "queue_max": 3.0 + hour, "queue_minutes_over": hour, "is_final": True,
        "revision": revision, "updated_at": start + timedelta(hours=1, minutes=revision),
    }  # fmt: skip
    fields.update(kw)
    return OpsHourly.model_validate(fields)


def test_every_mapped_table_is_written() -> None:
    assert {t for tables in TOPIC_TABLES.values() for t in tables} == set(TABLE_ORDER)
    shift = StaffShift(shift_id="rota:1", source="rota", store_id="wg-grocer", staff_ref="rota:ab", role="sales",
                       start_at=T0, end_at=T0 + timedelta(hours=8), ingested_at=T0)  # fmt: skip
    parts = [
        columns_for(STOREOPS_HOURLY, [plain_record(STOREOPS_HOURLY, ops(0))], {}),
        columns_for(STAFF_SHIFTS, [plain_record(STAFF_SHIFTS, shift)], {"wg-grocer": "Europe/Berlin"}),
    ]
    assert list(merge(parts).columns) == ["staff_shifts", "storeops_hourly"]


def test_storeops_rows_keep_the_latest_revision_and_feed_the_queue_bands(ch: Any) -> None:
    from sinks.clickhouse.mapping import COLUMNS

    records = [ops(h, conversion=0.4 - 0.05 * h, transactions=40 - 5 * h) for h in range(6)]
    records += [ops(0, revision=1, transactions=41), ops(0, "ZONE", "fresh"), ops(0, "CATEGORY", "dairy")]
    ch.insert("storeops_hourly", [rows_for(STOREOPS_HOURLY, r, {})["storeops_hourly"][0] for r in records],
              column_names=COLUMNS["storeops_hourly"])  # fmt: skip
    rows = ch.query(
        "SELECT grain, count(), sum(transactions) FROM storeops_hourly FINAL GROUP BY grain ORDER BY grain"
    ).result_rows
    assert rows == [("CATEGORY", 1, 30), ("STORE", 6, 41 + 35 + 30 + 25 + 20 + 15), ("ZONE", 1, 30)]
    bands = ch.query(
        "SELECT queue_band, hours, transactions, lost_revenue > 0 FROM queue_conversion_bands "
        "WHERE store_id = 'wg-grocer' ORDER BY queue_band"
    ).result_rows
    # Mean queue 1 (hour 0) is the short-queue band; hours 1-2 (2, 3), 3-5 (4, 5, 6) convert worse and lose sales.
    assert bands == [("0-2", 1, 41, False), ("2-4", 2, 65, True), ("4-7", 3, 60, True)]


def test_storeops_batches_insert_as_the_sink_inserts_them(ch: Any) -> None:
    """The columnar mapping of both topics, inserted column-oriented as the sink does (times as raw ticks)."""
    from schemas.storeops import ShiftBreak
    from sinks.clickhouse.mapping import COLUMNS

    shifts = [
        StaffShift(shift_id="rota:1", source="rota", store_id="wg-grocer", staff_ref="rota:ab", start_at=T0,
                   end_at=T0 + timedelta(hours=8), ingested_at=T0,
                   breaks=[ShiftBreak(start_at=T0 + timedelta(hours=4), end_at=T0 + timedelta(hours=4, minutes=30))]),
        StaffShift(shift_id="rota:2", source="rota", store_id="wg-grocer", staff_ref="rota:cd", role="till",
                   start_at=T0 - timedelta(hours=9, minutes=30), ingested_at=T0,
                   breaks=[ShiftBreak(start_at=T0 - timedelta(hours=1))]),  # open shift, open break: 0 minutes
        StaffShift(shift_id="rota:3", source="rota", store_id="nowhere", staff_ref="rota:ef", start_at=T0,
                   ingested_at=T0),
    ]  # fmt: skip
    mapped = columns_for(STAFF_SHIFTS, [plain_record(STAFF_SHIFTS, s) for s in shifts], {"wg-grocer": "Europe/Berlin"})
    assert mapped.rejects == {2: ("map", "store 'nowhere' is not in the catalogue, so its local time is unknown")}
    ops_mapped = columns_for(STOREOPS_HOURLY, [plain_record(STOREOPS_HOURLY, ops(h)) for h in range(2)], {})
    for part in (mapped, ops_mapped):
        for table, cols in part.columns.items():
            ch.insert(table, cols, column_names=COLUMNS[table], column_oriented=True)
    rows = ch.query(
        "SELECT shift_id, role, start_at, end_at, break_minutes, local_date FROM staff_shifts ORDER BY shift_id"
    ).result_rows
    assert [
        (r[0], r[1], r[2].replace(tzinfo=UTC), r[3] and r[3].replace(tzinfo=UTC), r[4], str(r[5])) for r in rows
    ] == [
        ("rota:1", "", T0, T0 + timedelta(hours=8), 30.0, "2026-11-20"),
        ("rota:2", "till", T0 - timedelta(hours=9, minutes=30), None, 0.0, "2026-11-20"),  # 00:30 in Berlin
    ]
    hours = ch.query("SELECT hour_start, local_date FROM storeops_hourly ORDER BY hour_start").result_rows
    assert [(h.replace(tzinfo=UTC), str(d)) for h, d in hours] == [
        (T0, "2026-11-20"),
        (T0 + timedelta(hours=1), "2026-11-20"),
    ]
    assert rows_for(STOREOPS_HOURLY, ops(0), {})["storeops_hourly"][0][5] == T0
