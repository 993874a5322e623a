"""Tenant revenue statements: a month's POS sales per tenant, the percentage rent owed, and the data behind it.

Pure functions over rows already read from ClickHouse (no I/O):

- :func:`build_statement` sums the month's tickets by channel and kind, applies the lease (which sales count),
  the breakpoint and the rate, and reports completeness (open days, days with a silent feed, POS coverage of
  each day, tickets that arrived after month end).
- :func:`percentage_rent` and :func:`natural_breakpoint` are exact: money stays in integer minor units, the
  rate is a Decimal, and each result is rounded once, half up, to the minor unit.
- :func:`evidence` sets the tenant's traffic, conversion and cash share against its own recent months and its
  category peers in the mall: evidence for an auditor, not an alert.
- :func:`figures` and :func:`changes`: what an issued statement said, and what a re-issue changed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import TypedDict

from analytics.leases import Lease

SILENT_FEED_EXPECTED_TICKETS = 8.0
"""Consecutive hours with visitors and no ticket at all are a silent feed when the store's conversion that month
would have made at least this many tickets in them (Poisson: none by bad luck has a chance of 0.03%, so a
month of ~300 open hours rarely shows a false one; an hour or two of a quiet store is not flagged)."""


class SalesCell(TypedDict):
    """The month's tickets of one store, channel and kind (latest version of each ticket)."""

    store_id: str
    channel: str
    kind: str
    net_amount: int
    tickets: int
    late_amount: int
    """Part of net_amount from tickets whose latest version arrived after month end."""
    late_tickets: int


class HourRow(TypedDict):
    """One store-hour of conversion_hourly (store level, latest revision)."""

    store_id: str
    local_date: date
    visitors: int
    transactions: int
    refunds: int
    employee_sales: int


class SyncDay(TypedDict):
    """`tillflow sync-check`'s verdict on one store-day (pos_sync_daily; the lowest rate over its POS sources)."""

    store_id: str
    local_date: date
    sync_rate: float
    expected_tickets: int
    missing_tickets: int


class MonthTraffic(TypedDict):
    """One store's month: footfall, sales tickets and payments, for the underreporting evidence."""

    store_id: str
    month: date
    visitors: int
    days_with_visitors: int
    transactions: int
    cash_amount: int
    payment_amount: int


@dataclass(frozen=True)
class StatementLine:
    channel: str
    kind: str
    net_amount: int
    tickets: int
    counted: bool
    late_amount: int
    late_tickets: int


@dataclass(frozen=True)
class DayCompleteness:
    local_date: date
    store_id: str
    open_hours: int
    """Hours in which cameras counted visitors."""
    hours_with_pos: int
    silent_hours: int

    @property
    def pos_coverage(self) -> float | None:
        """Share of the day's hours with visitors that also had POS tickets (the day's sync rate)."""
        return None if not self.open_hours else self.hours_with_pos / self.open_hours


@dataclass(frozen=True)
class Completeness:
    open_days: int
    """Days the catalogue has the tenant's stores open (summed over stores)."""
    days: tuple[DayCompleteness, ...]
    days_without_data: tuple[tuple[str, date], ...]
    """(store, date) open by the catalogue with no hourly data at all (cameras and POS both silent)."""
    late_tickets: int
    late_counted_amount: int
    """Counted sales that arrived after month end (corrections and late syncs)."""
    sync: tuple[SyncDay, ...] = ()
    """Days whose sync rate was checked against the POS itself (`tillflow sync-check`), where known."""
    sync_target: float = 0.99

    @property
    def silent_days(self) -> list[tuple[str, date]]:
        return [(d.store_id, d.local_date) for d in self.days if d.silent_hours]

    @property
    def days_below_sync_target(self) -> list[SyncDay]:
        return [d for d in self.sync if d["sync_rate"] < self.sync_target]


@dataclass(frozen=True)
class EvidenceRow:
    metric: str
    value: float | None
    history: float | None
    """Median of the tenant's previous months."""
    peers: float | None
    """Median of the category peers in the mall, same month."""
    history_months: int
    peer_stores: int

    @property
    def vs_history(self) -> float | None:
        return _ratio(self.value, self.history)

    @property
    def vs_peers(self) -> float | None:
        return _ratio(self.value, self.peers)


@dataclass(frozen=True)
class Statement:
    tenant_id: str
    mall_id: str
    month: date
    currency: str
    stores: tuple[str, ...]
    lease: Lease
    lines: tuple[StatementLine, ...]
    counted_sales: int
    breakpoint: int
    percentage_rent: int
    completeness: Completeness
    evidence: tuple[EvidenceRow, ...] = field(default=())

    @property
    def base_rent(self) -> int:
        return self.lease.base_rent

    @property
    def rent_due(self) -> int:
        return self.lease.base_rent + self.percentage_rent


def month_start(text_or_date: str | date) -> date:
    """The first day of a month given as ``YYYY-MM`` or any date in it."""
    if isinstance(text_or_date, date):
        return text_or_date.replace(day=1)
    try:
        year, month = (int(part) for part in text_or_date.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise ValueError(f"{text_or_date!r} is not a month like 2026-11") from None


def next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_months(first: date, count: int) -> list[date]:
    months, current = [], first
    for _ in range(count):
        current = (current - timedelta(days=1)).replace(day=1)
        months.append(current)
    return months


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def natural_breakpoint(base_rent: int, percentage: Decimal) -> int:
    """Sales at which percentage rent equals the base rent: base / rate, rounded half up to the minor unit."""
    return _round_half_up(Fraction(base_rent) * 100 / Fraction(percentage))


def breakpoint_of(lease: Lease) -> int:
    if lease.breakpoint == "natural":
        return natural_breakpoint(lease.base_rent, lease.percentage)
    return lease.breakpoint


def percentage_rent(counted_sales: int, breakpoint: int, percentage: Decimal) -> int:
    """Rate x sales above the breakpoint (nothing below it), rounded half up to the minor unit."""
    over = max(0, counted_sales - breakpoint)
    return _round_half_up(Fraction(over) * Fraction(percentage) / 100)


def statement_lines(cells: Iterable[SalesCell], lease: Lease) -> list[StatementLine]:
    """One line per channel and kind (summed over the tenant's stores), saying whether the lease counts it."""
    sums: dict[tuple[str, str], list[int]] = {}
    for cell in cells:
        acc = sums.setdefault((cell["channel"], cell["kind"]), [0, 0, 0, 0])
        acc[0] += cell["net_amount"]
        acc[1] += cell["tickets"]
        acc[2] += cell["late_amount"]
        acc[3] += cell["late_tickets"]
    return [
        StatementLine(channel, kind, net, n, lease.counts(channel, kind), late, late_n)
        for (channel, kind), (net, n, late, late_n) in sorted(sums.items())
    ]


def open_days(open_weekdays: Mapping[str, set[int]], month: date) -> list[tuple[str, date]]:
    """(store, date) of each day of the month a store opens, from each store's opening weekdays (0 = Monday)."""
    days = []
    day = month
    end = next_month(month)
    while day < end:
        for store, weekdays in open_weekdays.items():
            if day.weekday() in weekdays:
                days.append((store, day))
        day += timedelta(days=1)
    return days


def _silent_hours(hours: Sequence[HourRow], conversion: float) -> set[int]:
    """Indexes of the hours (one store, time order) in silent stretches: consecutive hours with visitors and no
    ticket at all, in which the store's conversion would have made SILENT_FEED_EXPECTED_TICKETS or more."""
    silent: set[int] = set()
    run: list[int] = []
    expected = 0.0
    for i, h in enumerate([*hours, None]):
        quiet = h is not None and h["visitors"] > 0 and _no_pos(h)
        if quiet and h is not None:
            run.append(i)
            expected += h["visitors"] * conversion
            continue
        if run and expected >= SILENT_FEED_EXPECTED_TICKETS:
            silent.update(run)
        run, expected = [], 0.0
    return silent


def _no_pos(h: HourRow) -> bool:
    return h["transactions"] == 0 and h["refunds"] == 0 and h["employee_sales"] == 0


def completeness(
    hours: Sequence[HourRow],
    expected_days: Sequence[tuple[str, date]],
    lines: Sequence[StatementLine],
    sync: Sequence[SyncDay] = (),
    sync_target: float = 0.99,
) -> Completeness:
    """Per store-day: hours with visitors, hours that also had tickets, and hours in silent stretches."""
    per_day: dict[tuple[str, date], list[int]] = {}
    for store in sorted({h["store_id"] for h in hours}):
        own = [h for h in hours if h["store_id"] == store]
        visitors = sum(h["visitors"] for h in own)
        conversion = sum(h["transactions"] for h in own) / visitors if visitors else 0.0
        silent = _silent_hours(own, conversion)
        for i, h in enumerate(own):
            acc = per_day.setdefault((store, h["local_date"]), [0, 0, 0])
            if h["visitors"] > 0:
                acc[0] += 1
                acc[1] += not _no_pos(h)
                acc[2] += i in silent
    days = tuple(
        DayCompleteness(day, store, opened, with_pos, silent_n)
        for (store, day), (opened, with_pos, silent_n) in sorted(per_day.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    )
    seen = {(d.store_id, d.local_date) for d in days if d.open_hours}
    missing = tuple((store, day) for store, day in expected_days if (store, day) not in seen)
    return Completeness(
        open_days=len(expected_days),
        days=days,
        days_without_data=missing,
        late_tickets=sum(line.late_tickets for line in lines),
        late_counted_amount=sum(line.late_amount for line in lines if line.counted),
        sync=tuple(sorted(sync, key=lambda d: (d["local_date"], d["store_id"]))),
        sync_target=sync_target,
    )


def build_statement(
    lease: Lease,
    month: date,
    stores: Sequence[str],
    cells: Iterable[SalesCell],
    hours: Sequence[HourRow],
    expected_days: Sequence[tuple[str, date]],
    evidence_rows: Sequence[EvidenceRow] = (),
    sync: Sequence[SyncDay] = (),
    sync_target: float = 0.99,
) -> Statement:
    """The tenant's statement for the month from its stores' ticket cells, hourly rows and, where known, the
    sync rate of each day checked against the POS."""
    own = set(stores)
    lines = statement_lines((c for c in cells if c["store_id"] in own), lease)
    counted = sum(line.net_amount for line in lines if line.counted)
    bp = breakpoint_of(lease)
    return Statement(
        tenant_id=lease.tenant_id,
        mall_id=lease.mall_id,
        month=month_start(month),
        currency=lease.currency,
        stores=tuple(stores),
        lease=lease,
        lines=tuple(lines),
        counted_sales=counted,
        breakpoint=bp,
        percentage_rent=percentage_rent(counted, bp, lease.percentage),
        completeness=completeness(
            [h for h in hours if h["store_id"] in own],
            expected_days,
            lines,
            [d for d in sync if d["store_id"] in own],
            sync_target,
        ),
        evidence=tuple(evidence_rows),
    )


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


TRAFFIC = "visitors per 100 m2 per open day"


def _metrics(months: Iterable[MonthTraffic], areas: Mapping[str, float]) -> dict[str, float | None]:
    rows = list(months)
    visitors = sum(r["visitors"] for r in rows)
    floor_days = sum(r["days_with_visitors"] * areas[r["store_id"]] / 100 for r in rows)
    txns = sum(r["transactions"] for r in rows)
    return {
        TRAFFIC: _ratio(visitors, floor_days),
        "conversion": _ratio(txns, visitors),
        "cash share of payments": _ratio(sum(r["cash_amount"] for r in rows), sum(r["payment_amount"] for r in rows)),
    }


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def evidence(
    month: date,
    tenant_stores: Sequence[str],
    peer_stores: Sequence[str],
    traffic: Sequence[MonthTraffic],
    areas: Mapping[str, float],
) -> list[EvidenceRow]:
    """Traffic (per floor area, so stores of any size compare), conversion and cash share of the tenant's stores
    this month, against the median of its own previous months (those in ``traffic``) and the median of its
    peers' stores this month. ``areas``: floor area in m² per store.

    Underreported (unrung, cash) sales show as conversion and cash share below both while traffic holds.
    """
    own = set(tenant_stores)
    this = _metrics((r for r in traffic if r["store_id"] in own and r["month"] == month), areas)
    history_months = sorted({r["month"] for r in traffic if r["store_id"] in own and r["month"] < month})
    history = [
        _metrics((r for r in traffic if r["store_id"] in own and r["month"] == m), areas) for m in history_months
    ]
    peers = [_metrics((r for r in traffic if r["store_id"] == p and r["month"] == month), areas) for p in peer_stores]
    peers = [p for p in peers if p[TRAFFIC] is not None]
    return [
        EvidenceRow(
            metric=name,
            value=value,
            history=_median(h[name] for h in history),
            peers=_median(p[name] for p in peers),
            history_months=sum(1 for h in history if h[name] is not None),
            peer_stores=sum(1 for p in peers if p[name] is not None),
        )
        for name, value in this.items()
    ]


def figures(statement: Statement) -> dict[str, int]:
    """What an issued statement says, as flat integer figures (kept with each issue to compare re-issues)."""
    out = {f"sales {line.channel} {line.kind}": line.net_amount for line in statement.lines}
    out.update(
        {
            "counted sales": statement.counted_sales,
            "breakpoint": statement.breakpoint,
            "percentage rent": statement.percentage_rent,
            "base rent": statement.base_rent,
            "rent due": statement.rent_due,
            "tickets after month end": statement.completeness.late_tickets,
            "days with a silent feed": len(statement.completeness.silent_days),
            "days below the sync target": len(statement.completeness.days_below_sync_target),
        }
    )
    return out


class Change(TypedDict):
    item: str
    before: int
    after: int


def changes(before: Mapping[str, int], after: Mapping[str, int]) -> list[Change]:
    """Each figure that differs between two issues (a figure missing from one issue counts as 0 there)."""
    return [
        Change(item=key, before=before.get(key, 0), after=after.get(key, 0))
        for key in sorted(set(before) | set(after))
        if before.get(key, 0) != after.get(key, 0)
    ]
