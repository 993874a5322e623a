"""Reads the rows the analytics need from ClickHouse, and records issued statements. Thin: the figures are
computed by the pure modules (statements, lift, forecast)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from analytics.campaigns import Calendar, Campaign, Units, units
from analytics.forecast import LEVEL_DAYS, WEEKS, Actual, forecast, records
from analytics.leases import LeaseBook, lease_stores
from analytics.lift import DailyRow, LiftEstimate, baseline_window, estimate
from analytics.statements import (
    Change,
    HourRow,
    MonthTraffic,
    SalesCell,
    Statement,
    SyncDay,
    build_statement,
    changes,
    evidence,
    figures,
    next_month,
    open_days,
    previous_months,
)
from producers.pos.synccheck import TARGET as SYNC_TARGET
from schemas.catalogue import Catalogue
from schemas.models import HourlyForecast

HISTORY_MONTHS = 3
"""Previous months the underreporting evidence compares with."""

SALES_CELLS = """
SELECT store_id, channel, kind, sum(net_amount) AS net, count() AS n,
       sumIf(net_amount, ingested_at >= {cutoff:DateTime64(3, 'UTC')}) AS late_net,
       countIf(ingested_at >= {cutoff:DateTime64(3, 'UTC')}) AS late_n
FROM tickets FINAL
WHERE store_id = {store:String} AND local_date >= {start:Date} AND local_date < {end:Date}
GROUP BY store_id, channel, kind
ORDER BY channel, kind
"""

HOURS = """
SELECT store_id, local_date, visitors, transactions, refunds, employee_sales
FROM conversion_hourly FINAL
WHERE store_id IN {stores:Array(String)} AND zone_id = '' AND local_date >= {start:Date} AND local_date < {end:Date}
ORDER BY store_id, hour_start
"""

MONTH_TRAFFIC = """
SELECT h.store_id AS store_id, h.month AS month, h.visitors AS visitors, h.days_with_visitors AS days_with_visitors,
       h.transactions AS transactions, t.cash_amount AS cash_amount, t.payment_amount AS payment_amount
FROM
(
    SELECT store_id, toStartOfMonth(local_date) AS month, sum(h_visitors) AS visitors,
           uniqExactIf(local_date, h_visitors > 0) AS days_with_visitors, sum(h_transactions) AS transactions
    FROM (SELECT store_id, local_date, visitors AS h_visitors, transactions AS h_transactions, zone_id
          FROM conversion_hourly FINAL)
    WHERE store_id IN {stores:Array(String)} AND zone_id = '' AND local_date >= {start:Date} AND local_date < {end:Date}
    GROUP BY store_id, month
) AS h
LEFT JOIN
(
    SELECT store_id, toStartOfMonth(local_date) AS month, sum(cash_amount) AS cash_amount,
           sum(arraySum(payment_amounts)) AS payment_amount
    FROM tickets FINAL
    WHERE store_id IN {stores:Array(String)} AND kind = 'SALE' AND channel = 'IN_STORE'
      AND local_date >= {start:Date} AND local_date < {end:Date}
    GROUP BY store_id, month
) AS t ON t.store_id = h.store_id AND t.month = h.month
ORDER BY store_id, month
"""

SYNC_DAYS = """
SELECT store_id, local_date, min(sync_rate) AS rate, sum(expected_tickets) AS expected, sum(missing_tickets) AS missing
FROM pos_sync_daily FINAL
WHERE store_id IN {stores:Array(String)} AND local_date >= {start:Date} AND local_date < {end:Date}
GROUP BY store_id, local_date
ORDER BY local_date, store_id
"""

LATEST_ISSUE = """
SELECT issue, issued_at, figures
FROM tenant_statements FINAL
WHERE mall_id = {mall:String} AND month = {month:Date} AND tenant_id = {tenant:String}
ORDER BY issue DESC
LIMIT 1
"""

STATEMENT_COLUMNS = [
    "mall_id", "month", "tenant_id", "issue", "issued_at", "currency", "counted_sales", "breakpoint",
    "percentage_rent", "base_rent", "rent_due", "late_tickets", "silent_days", "open_days", "figures",
]  # fmt: skip


def _dicts(result: Any) -> list[dict[str, Any]]:
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def month_end_utc(catalogue: Catalogue, store_id: str, month: date) -> datetime:
    """The instant the month ends at the store (its local midnight), in UTC."""
    tz = catalogue.store(store_id).tz
    return datetime.combine(next_month(month), time(), tz).astimezone(UTC)


def sales_cells(client: Any, catalogue: Catalogue, store_id: str, month: date) -> list[SalesCell]:
    params = {
        "store": store_id,
        "start": month,
        "end": next_month(month),
        "cutoff": month_end_utc(catalogue, store_id, month),
    }
    return [
        SalesCell(
            store_id=r["store_id"], channel=r["channel"], kind=r["kind"], net_amount=int(r["net"]),
            tickets=int(r["n"]), late_amount=int(r["late_net"]), late_tickets=int(r["late_n"]),
        )
        for r in _dicts(client.query(SALES_CELLS, parameters=params))
    ]  # fmt: skip


def hour_rows(client: Any, stores: list[str], month: date) -> list[HourRow]:
    params = {"stores": stores, "start": month, "end": next_month(month)}
    return [
        HourRow(
            store_id=r["store_id"], local_date=r["local_date"], visitors=int(r["visitors"]),
            transactions=int(r["transactions"]), refunds=int(r["refunds"]), employee_sales=int(r["employee_sales"]),
        )
        for r in _dicts(client.query(HOURS, parameters=params))
    ]  # fmt: skip


def sync_days(client: Any, stores: list[str], month: date) -> list[SyncDay]:
    """`tillflow sync-check`'s rate of each checked store-day of the month (none when it never ran)."""
    params = {"stores": stores, "start": month, "end": next_month(month)}
    return [
        SyncDay(store_id=store, local_date=day, sync_rate=float(rate), expected_tickets=int(expected),
                missing_tickets=int(missing))
        for store, day, rate, expected, missing in client.query(SYNC_DAYS, parameters=params).result_rows
    ]  # fmt: skip


def month_traffic(client: Any, stores: list[str], first: date, end: date) -> list[MonthTraffic]:
    params = {"stores": stores, "start": first, "end": end}
    return [
        MonthTraffic(
            store_id=r["store_id"], month=r["month"], visitors=int(r["visitors"]),
            days_with_visitors=int(r["days_with_visitors"]), transactions=int(r["transactions"]),
            cash_amount=int(r["cash_amount"] or 0), payment_amount=int(r["payment_amount"] or 0),
        )
        for r in _dicts(client.query(MONTH_TRAFFIC, parameters=params))
    ]  # fmt: skip


def mall_statements(client: Any, catalogue: Catalogue, book: LeaseBook, mall_id: str, month: date) -> list[Statement]:
    """One statement per lease of the mall for the month, with evidence against history and category peers."""
    leases = book.of_mall(mall_id)
    if not leases:
        raise ValueError(f"no lease for mall {mall_id!r} in the lease file")
    mall_stores = [s for s in catalogue.stores if s.mall_id == mall_id]
    history_start = previous_months(month, HISTORY_MONTHS)[-1]
    traffic = month_traffic(client, [s.id for s in mall_stores], history_start, next_month(month))
    out = []
    for lease in leases:
        stores = lease_stores(lease, catalogue)
        cells = [cell for store in stores for cell in sales_cells(client, catalogue, store, month)]
        hours = hour_rows(client, stores, month)
        weekdays = {s: {d for d in range(7) if catalogue.store(s).hours_on(d) is not None} for s in stores}
        categories = {catalogue.store(s).category for s in stores}
        peers = [s.id for s in mall_stores if s.category in categories and s.id not in stores]
        out.append(
            build_statement(
                lease, month, stores, cells, hours, open_days(weekdays, month),
                evidence(month, stores, peers, traffic, {s.id: s.area_m2 for s in mall_stores}),
                sync_days(client, stores, month), SYNC_TARGET,
            )
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class Issued:
    statement: Statement
    issue: int
    """Issue number of this statement (1 for the first)."""
    previous_issue: int | None
    changes: list[Change]
    """What changed since the previous issue (empty on the first issue)."""
    recorded: bool
    """False when the figures equal the previous issue's (nothing new is recorded)."""


def issue_statements(client: Any, statements: list[Statement], now: datetime, record: bool = True) -> list[Issued]:
    """Number each statement against the issues recorded before; record those that are new or changed."""
    issued, rows = [], []
    for st in statements:
        params = {"mall": st.mall_id, "month": st.month, "tenant": st.tenant_id}
        prior = client.query(LATEST_ISSUE, parameters=params).result_rows
        current = figures(st)
        if prior:
            prev_issue, _, prev_figures = prior[0]
            diff = changes(dict(prev_figures), current)
            number = prev_issue + 1 if diff else prev_issue
            issued.append(Issued(st, number, prev_issue, diff, record and bool(diff)))
        else:
            issued.append(Issued(st, 1, None, [], record))
    for item in issued:
        if item.recorded:
            st = item.statement
            rows.append(
                (
                    st.mall_id, st.month, st.tenant_id, item.issue, now, st.currency, st.counted_sales,
                    st.breakpoint, st.percentage_rent, st.base_rent, st.rent_due, st.completeness.late_tickets,
                    len(st.completeness.silent_days), st.completeness.open_days, figures(st),
                )
            )  # fmt: skip
    if rows:
        client.insert("tenant_statements", rows, column_names=STATEMENT_COLUMNS)
    return issued


# --- campaigns ------------------------------------------------------------------------------------------------

DAILY = """
SELECT store_id, zone_id, local_date, sum(visitors) AS v, sum(transactions) AS tx, sum(net_revenue) AS net
FROM conversion_hourly FINAL
WHERE store_id IN {stores:Array(String)} AND local_date >= {start:Date} AND local_date <= {end:Date}
GROUP BY store_id, zone_id, local_date
ORDER BY local_date, store_id, zone_id
"""

CAMPAIGN_COLUMNS = [
    "campaign_id", "name", "kind", "scope", "mall_id", "starts", "ends", "baseline_days", "treated_units",
    "control_units", "comparison", "loaded_at",
]  # fmt: skip
UNIT_COLUMNS = ["campaign_id", "store_id", "zone_id", "role", "loaded_at"]


def daily_rows(client: Any, stores: list[str], start: date, end: date) -> list[DailyRow]:
    params = {"stores": stores, "start": start, "end": end}
    return [
        DailyRow(store_id=r["store_id"], zone_id=r["zone_id"], local_date=r["local_date"], visitors=int(r["v"]),
                 transactions=int(r["tx"]), net_revenue=int(r["net"]))
        for r in _dicts(client.query(DAILY, parameters=params))
    ]  # fmt: skip


def load_campaigns(client: Any, calendar: Calendar, catalogue: Catalogue, now: datetime) -> int:
    """Write the calendar and each campaign's treated and control units (for the campaign_lift view)."""
    rows, unit_rows = [], []
    for c in calendar.campaigns:
        found = units(c, catalogue, calendar)
        mall = c.mall or (catalogue.store(c.store).mall_id if c.store else None) or ""
        rows.append((c.id, c.name or c.id, c.kind, c.scope, mall, c.start, c.end, c.baseline_days,
                     len(found.treated), len(found.controls), found.comparison, now))  # fmt: skip
        unit_rows += [(c.id, u.store_id, u.zone_id, "treated", now) for u in found.treated]
        unit_rows += [(c.id, u.store_id, u.zone_id, "control", now) for u in found.controls]
    if rows:
        client.insert("campaigns", rows, column_names=CAMPAIGN_COLUMNS)
    if unit_rows:
        client.insert("campaign_units", unit_rows, column_names=UNIT_COLUMNS)
    return len(rows)


def campaign_lift(
    client: Any, campaign: Campaign, catalogue: Catalogue, calendar: Calendar | None = None
) -> tuple[Units, list[LiftEstimate]]:
    """The campaign's units and its lift per metric, from the daily rows of its baseline and campaign windows."""
    found = units(campaign, catalogue, calendar)
    first, _ = baseline_window(campaign)
    stores = sorted({u.store_id for u in found.treated + found.controls})
    rows = daily_rows(client, stores, first, campaign.end)
    return found, estimate(campaign, rows, found.treated, found.controls)


# --- forecasts ------------------------------------------------------------------------------------------------

HISTORY = """
SELECT local_date, toUInt8(substring(local_hour, 12, 2)) AS hour, visitors, net_revenue
FROM conversion_hourly FINAL
WHERE store_id = {store:String} AND zone_id = '' AND local_date >= {start:Date} AND local_date <= {end:Date}
"""

HISTORY_DAYS = 7 * WEEKS * 2 + LEVEL_DAYS
"""Days of hourly history read for one forecast: enough same weekdays for the shape of each recent day."""


def store_history(client: Any, store_id: str, today: date) -> dict[tuple[date, int], Actual]:
    """The store's hourly actuals (local date, local hour) up to ``today`` (its complete hours so far)."""
    params = {"store": store_id, "start": today - timedelta(days=HISTORY_DAYS), "end": today}
    result = client.query(HISTORY, parameters=params)
    return {(d, int(h)): Actual(float(v), float(s)) for d, h, v, s in result.result_rows}


def store_forecasts(client: Any, catalogue: Catalogue, store_ids: list[str], now: datetime) -> list[HourlyForecast]:
    """Forecast records for the rest of each store's local today and its tomorrow, issued at ``now`` (UTC)."""
    out = []
    for store_id in store_ids:
        store = catalogue.store(store_id)
        local_now = now.astimezone(store.tz)
        history = store_history(client, store_id, local_now.date())
        # Only complete hours count for today: the current hour is still filling.
        history = {k: v for k, v in history.items() if k[0] < local_now.date() or k[1] < local_now.hour}
        out += records(store, forecast(history, local_now.replace(tzinfo=None)), now)
    return out
