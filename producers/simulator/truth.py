"""What a planned store-day really was, hour by hour: the ground truth that analytics are measured against.

Pure functions of a :class:`~producers.simulator.engine.DayPlan` (no camera frames are generated): visitors per
store-local hour from the planned entries, and the delivered tickets with the hourly sales they make, counted
the way the streams count them (SALE tickets in store, less VOIDs; cash share over the sales' payments).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

import numpy as np

from producers.simulator.engine import DayPlan, _ticket
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


def hourly_truth(plan: DayPlan, tickets: list[PosTicket] | None = None) -> list[HourTruth]:
    """One row per store-local hour with visitors or tickets, in time order (UTC hour starts; every time zone
    in use has whole-hour or half/quarter-hour offsets, so hours are aligned on the store's local clock)."""
    tz = plan.store.tz
    tickets = plan_tickets(plan) if tickets is None else tickets

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
        starts = [hour_of(int(ms)) for ms in plan.entry_ms]
        uniq, counts = np.unique(np.array([s.timestamp() for s in starts]), return_counts=True)
        for ts, n in zip(uniq.tolist(), counts.tolist(), strict=True):
            row(datetime.fromtimestamp(ts, tz=UTC))["visitors"] += int(n)
    for t in tickets:
        if t.channel is not Channel.IN_STORE:
            continue
        r = row(hour_of(int(t.occurred_at.timestamp() * 1000)))
        if t.kind is TicketKind.SALE or t.kind is TicketKind.VOID:
            sign = 1 if t.kind is TicketKind.SALE else -1
            r["transactions"] += sign
            r["net_revenue"] += t.net_amount
            r["voids"] += t.kind is TicketKind.VOID
            r["cash_amount"] += sum(p.amount for p in t.payments if p.method is PaymentMethod.CASH)
            r["payment_amount"] += sum(p.amount for p in t.payments)
        elif t.kind is TicketKind.REFUND:
            r["refunds"] += 1
        elif t.kind is TicketKind.EMPLOYEE_SALE:
            r["employee_sales"] += 1
    return [rows[k] for k in sorted(rows)]
