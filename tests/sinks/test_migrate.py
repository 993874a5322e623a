"""Migrations and the benchmark views on the real engine (chDB)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.topics import CONVERSION_HOURLY
from sinks.clickhouse.mapping import COLUMNS, rows_for
from sinks.clickhouse.migrate import (
    DEFAULT_DIR,
    Migration,
    MigrationError,
    discover,
    migrate,
    pending,
    split_statements,
)
from sinks.report import fetch_hours, report_rows
from tests.support.records import T0, hourly

TZ: dict[str, str] = {}


def test_split_statements_drops_comments_and_keeps_inner_semicolons() -> None:
    sql = "-- a comment; with a semicolon\nCREATE TABLE a (x String DEFAULT ';')\nENGINE = Log;\n\nSELECT 1;\n"
    assert split_statements(sql) == ["CREATE TABLE a (x String DEFAULT ';')\nENGINE = Log", "SELECT 1"]


def test_pending_refuses_an_edited_applied_file() -> None:
    one, two = Migration(1, "0001_a", "SELECT 1;"), Migration(2, "0002_b", "SELECT 2;")
    assert pending([one, two], {1: one.checksum}) == [two]
    with pytest.raises(MigrationError, match="0001_a was applied with another content"):
        pending([Migration(1, "0001_a", "SELECT 11;"), two], {1: one.checksum})


def test_discover_rejects_bad_names(tmp_path: Path) -> None:
    (tmp_path / "1_x.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(tmp_path)
    assert [m.version for m in discover(DEFAULT_DIR)] == sorted(m.version for m in discover(DEFAULT_DIR))


def test_migrate_is_idempotent_and_records_versions(ch: Any) -> None:
    assert migrate(ch) == []
    rows = ch.query("SELECT version, name FROM schema_migrations FINAL ORDER BY version").result_rows
    assert rows == [(m.version, m.name) for m in discover(DEFAULT_DIR)]
    tables = {r[0] for r in ch.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows}
    assert {"tickets", "ticket_lines", "ticket_lines_current", "camera_frames", "camera_counts_minute",
            "conversion_hourly", "alerts", "stores", "zones", "tenant_benchmark_daily",
            "zone_revenue_per_m2"} <= tables  # fmt: skip
    assert ch.query("SELECT count() FROM stores FINAL").result_rows[0][0] == 9


def insert_hours(ch: Any, records: list[Any]) -> None:
    rows = [rows_for(CONVERSION_HOURLY, r, TZ)["conversion_hourly"][0] for r in records]
    ch.insert("conversion_hourly", rows, column_names=COLUMNS["conversion_hourly"])


def test_tenant_benchmark_ranks_within_mall_and_category(ch: Any) -> None:
    insert_hours(
        ch,
        [
            hourly("wg-fashion", transactions=30, visitors=100, net_revenue=420_000),  # conv .30, 1000/m2
            hourly("wg-denim", transactions=20, visitors=100, net_revenue=520_000),  # conv .20, 2000/m2
            hourly("wg-shoes", transactions=10, visitors=100, net_revenue=90_000),  # conv .10, 500/m2
            hourly("wg-volt", transactions=40, visitors=100, net_revenue=650_000, category="electronics"),
            # No visitors and no sales (cameras down, shop shut): no conversion and no average ticket.
            hourly("wg-cafe", transactions=0, visitors=0, net_revenue=0, conversion=None, avg_ticket=None),
        ],
    )
    got = {
        r[0]: r[1:]
        for r in ch.query(
            "SELECT store_id, conversion_rank_mall, conversion_pct_mall, revenue_per_m2_rank_mall, "
            "conversion_rank_category, stores_in_category, revenue_per_m2 FROM tenant_benchmark_daily"
        ).result_rows
    }
    assert got["wg-volt"][:2] == (1, 100.0) and got["wg-fashion"][:2] == (2, 66.7)
    assert got["wg-shoes"][:2] == (4, 0.0)
    assert got["wg-denim"][2] == 1 and got["wg-denim"][5] == pytest.approx(2000.0)
    assert got["wg-fashion"][3:5] == (1, 3) and got["wg-volt"][3:5] == (1, 1)
    # A store without a value is neither ranked nor given a percentile (it used to get percentile 100), and
    # the others are ranked among the stores that have one.
    (cafe,) = ch.query(
        "SELECT stores_in_mall, conversion, conversion_rank_mall, conversion_pct_mall, avg_ticket_rank_mall, "
        "avg_ticket_pct_mall, conversion_rank_category, conversion_pct_category, revenue_per_m2_rank_mall "
        "FROM tenant_benchmark_daily WHERE store_id = 'wg-cafe'"
    ).result_rows
    assert cafe == (5, None, None, None, None, None, None, None, 5)  # revenue 0 is a value: last
    avg = dict(ch.query("SELECT store_id, avg_ticket_pct_mall FROM tenant_benchmark_daily").result_rows)
    assert sorted(v for k, v in avg.items() if k != "wg-cafe") == [0.0, 33.3, 66.7, 100.0]


def test_zone_view_and_report(ch: Any) -> None:
    from datetime import timedelta

    insert_hours(
        ch,
        [
            hourly(zone_id="womens", net_revenue=90_000),
            hourly(hour=T0, final=False, transactions=5),
            hourly(hour=T0, final=True, transactions=25, units=60.0),
            hourly(hour=T0 + timedelta(hours=1), transactions=0, visitors=0, net_revenue=0),
        ],
    )
    assert ch.query("SELECT zone_name, revenue_per_m2 FROM zone_revenue_per_m2").result_rows == [("Womenswear", 500.0)]
    hours = fetch_hours(ch, "wg-fashion", T0.date())
    rows = report_rows(hours)
    assert rows[0] == ["10:00", "100", "25", "25.0%", "1,000.00", "40.00", "2.40", "final"]
    assert rows[1][3] == "-" and rows[1][5] == "-"
    assert rows[-1] == ["day", "100", "25", "25.0%", "1,000.00", "40.00", "2.40", "2/2 final"]


def test_ticket_lines_current_drops_lines_a_repolled_ticket_no_longer_has(ch: Any) -> None:
    from datetime import timedelta

    from schemas.topics import POS_TICKETS
    from tests.support.records import ticket

    tz = {"wg-fashion": "Europe/Berlin"}
    first = ticket(1)  # two lines
    line = first.lines[0].model_dump()
    again = ticket(1, ingested_at=first.ingested_at + timedelta(minutes=5), lines=[line])  # the second was removed
    other = ticket(2)
    for t in (first, again, other):
        for table, rows in rows_for(POS_TICKETS, t, tz).items():
            ch.insert(table, rows, column_names=COLUMNS[table])
    stale = ch.query("SELECT ticket_id, line_no FROM ticket_lines FINAL ORDER BY ticket_id, line_no").result_rows
    assert len(stale) == 4  # T1's second line stays in the table
    current = ch.query("SELECT ticket_id, line_no, sku FROM ticket_lines_current ORDER BY ticket_id, line_no")
    assert list(current.column_names) == ["ticket_id", "line_no", "sku"]
    assert [r[:2] for r in current.result_rows] == [("T1", stale[0][1]), ("T2", stale[2][1]), ("T2", stale[3][1])]
