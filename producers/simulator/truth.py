"""What a planned store-day really was, hour by hour: the ground truth that analytics are measured against.

Pure functions of a :class:`~producers.simulator.simulation.DayPlan` (no camera frames are generated): visitors per
store-local hour from the planned entries, and the delivered tickets with the hourly sales they make, counted
the way the streams count them (SALE tickets in store, less VOIDs; cash share over the sales' payments).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

import numpy as np

from producers.simulator.simulation import DayPlan, _ticket
from schemas.models import Channel, PaymentMethod, PosTicket, TicketKind

MS_PER_HOUR = 3_600_000


class HourTruth(TypedDict):
    store_id: str
    hour_start: datetime
    """UTC start of the store-local hour."""
    visitors: int
    transactions: int
    net_revenue: int
    refunds: int
    voids: int
    employee_sales: int
    cash_amount: int
    payment_amount: int


def plan_tickets(plan: DayPlan, source: str = "simulator", delay: timedelta = timedelta(seconds=2)) -> list[PosTicket]:
    """The plan's delivered tickets, each ingested ``delay`` after it occurred."""
    return [_ticket(draft, source, draft.occurred_ms + int(delay.total_seconds() * 1000)) for draft in plan.tickets]


def hourly_truth(plan: DayPlan) -> list[HourTruth]:
    """One row per store-local hour with visitors or delivered tickets, in time order (UTC hour starts of the
    store's local hours)."""
    tz = plan.store.tz

    def hour_of(ms: int) -> datetime:
        local = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(tz)
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)

    rows: dict[datetime, HourTruth] = {}

    def row(start: datetime) -> HourTruth:
        if start not in rows:
            rows[start] = HourTruth(
                store_id=plan.store.id, hour_start=start, visitors=0, transactions=0, net_revenue=0, refunds=0,
                voids=0, employee_sales=0, cash_amount=0, payment_amount=0,
            )  # fmt: skip
        return rows[start]

    if len(plan.entry_ms):
        # Local hours start at whole UTC quarter-hours in every zone: bucket by the local hour of each entry.
        hours = np.array([hour_of(int(ms)).timestamp() for ms in np.unique(plan.entry_ms // 900_000) * 900_000])
        quarter = np.unique(plan.entry_ms // 900_000, return_counts=True)
        for ts, n in zip(hours.tolist(), quarter[1].tolist(), strict=True):
            row(datetime.fromtimestamp(ts, tz=UTC))["visitors"] += int(n)
    for draft in plan.tickets:
        f = draft.fields
        if f["channel"] is not Channel.IN_STORE:
            continue
        r = row(hour_of(draft.occurred_ms))
        kind = f["kind"]
        if kind is TicketKind.SALE or kind is TicketKind.VOID:
            payments = f["payments"]
            assert isinstance(payments, list | tuple)
            net = f["net_amount"]
            assert isinstance(net, int)
            r["transactions"] += 1 if kind is TicketKind.SALE else -1
            r["net_revenue"] += net
            r["voids"] += kind is TicketKind.VOID
            r["cash_amount"] += sum(p.amount for p in payments if p.method is PaymentMethod.CASH)
            r["payment_amount"] += sum(p.amount for p in payments)
        elif kind is TicketKind.REFUND:
            r["refunds"] += 1
        elif kind is TicketKind.EMPLOYEE_SALE:
            r["employee_sales"] += 1
    return [rows[k] for k in sorted(rows)]
