"""`tillflow report`: a store's local day, hour by hour, read back from ClickHouse."""

from __future__ import annotations

from datetime import date
from typing import Any

HEADERS = ("hour", "visitors", "txns", "conv.", "net sales", "avg ticket", "UPT", "status")

QUERY = """
SELECT local_hour, timezone, currency, visitors, transactions, net_revenue, units, is_final, revision, quality_flags
FROM conversion_hourly FINAL
WHERE store_id = {store:String} AND zone_id = '' AND local_date = {day:Date}
ORDER BY hour_start
"""


def fetch_hours(client: Any, store: str, day: date) -> list[dict[str, Any]]:
    result = client.query(QUERY, parameters={"store": store, "day": day})
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def money(minor: float | None) -> str:
    return "-" if minor is None else f"{minor / 100:,.2f}"


def ratio(num: float, den: float) -> float | None:
    return None if not den else num / den


def report_rows(hours: list[dict[str, Any]]) -> list[list[str]]:
    """Table cells: one row per hour (local clock time), then a total row for the day."""
    rows = []
    for h in hours:
        conv = ratio(h["transactions"], h["visitors"])
        status = ("final" if h["is_final"] else "live") + (f" r{h['revision']}" if h["revision"] else "")
        if h["quality_flags"]:
            status += " " + ",".join(h["quality_flags"])
        rows.append(
            [
                h["local_hour"][11:16] if len(h["local_hour"]) >= 16 else h["local_hour"],
                f"{h['visitors']:,}",
                f"{h['transactions']:,}",
                "-" if conv is None else f"{conv:.1%}",
                money(h["net_revenue"]),
                money(ratio(h["net_revenue"], h["transactions"])),
                "-" if not h["transactions"] else f"{h['units'] / h['transactions']:.2f}",
                status,
            ]
        )
    visitors = sum(h["visitors"] for h in hours)
    txns = sum(h["transactions"] for h in hours)
    revenue = sum(h["net_revenue"] for h in hours)
    units = sum(h["units"] for h in hours)
    conv = ratio(txns, visitors)
    rows.append(
        [
            "day",
            f"{visitors:,}",
            f"{txns:,}",
            "-" if conv is None else f"{conv:.1%}",
            money(revenue),
            money(ratio(revenue, txns)),
            "-" if not txns else f"{units / txns:.2f}",
            f"{sum(1 for h in hours if h['is_final'])}/{len(hours)} final",
        ]
    )
    return rows
