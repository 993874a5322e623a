"""Records to ClickHouse rows: pure functions, no I/O.

Each function returns rows as tuples in the column order of :data:`COLUMNS`. Optional strings become ''
(ClickHouse sort keys cannot be Nullable); times stay timezone-aware UTC, and the store's time zone and local
date travel alongside.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.catalogue import Catalogue
from schemas.models import Alert, CameraCount, HourlyConversion, HourlyForecast, PaymentMethod, PosTicket, Record
from schemas.storeops import OpsHourly, StaffShift
from schemas.topics import (
    ALERTS,
    CAMERA_COUNTS,
    CONVERSION_HOURLY,
    FORECAST_HOURLY,
    POS_TICKETS,
    STAFF_SHIFTS,
    STOREOPS_HOURLY,
)
from sinks.clickhouse.storeops_mapping import STOREOPS_COLUMNS, ops_row, shift_row

Row = tuple[Any, ...]

COLUMNS: dict[str, list[str]] = {
    "stores": ["store_id", "name", "timezone", "area_m2", "category", "mall_id", "tenant_id", "currency", "loaded_at"],
    "zones": ["store_id", "zone_id", "name", "area_m2", "loaded_at"],
    "tickets": [
        "ticket_id", "source", "store_id", "tenant_id", "terminal_id", "kind", "channel", "occurred_at", "timezone",
        "local_date", "local_hour", "currency", "gross_amount", "net_amount", "tax_amount", "discount_amount",
        "cash_amount", "card_amount", "payment_methods", "payment_amounts", "line_count", "units",
        "original_ticket_id", "ingested_at",
    ],
    "ticket_lines": [
        "ticket_id", "line_no", "store_id", "kind", "occurred_at", "timezone", "local_date", "sku", "description",
        "category", "quantity", "unit_price", "discount_amount", "net_amount", "ingested_at",
    ],
    "camera_frames": [
        "camera_id", "store_id", "zone_id", "frame_ts", "timezone", "frame_seq", "people_in_frame", "entries",
        "exits", "detector",
    ],
    "conversion_hourly": [
        "store_id", "zone_id", "tenant_id", "mall_id", "category", "hour_start", "local_hour", "local_date",
        "timezone", "currency", "visitors", "exits", "transactions", "net_revenue", "gross_revenue",
        "discount_amount", "units", "refunds", "refund_amount", "voids", "employee_sales", "cash_amount",
        "conversion", "avg_ticket", "units_per_transaction", "revenue_per_visitor", "revenue_per_m2", "void_rate",
        "discount_rate", "cash_share", "quality_flags", "is_final", "revision", "updated_at", "version",
        "complete_share",
    ],
    "alerts": [
        "alert_id", "kind", "state", "severity", "store_id", "tenant_id", "mall_id", "hour_start", "timezone",
        "observed", "expected", "message", "fired_at", "details",
    ],
    "forecast_hourly": [
        "store_id", "tenant_id", "mall_id", "hour_start", "local_hour", "local_date", "timezone", "currency",
        "issued_at", "horizon_hours", "visitors", "net_revenue", "method",
    ],
}  # fmt: skip
COLUMNS |= STOREOPS_COLUMNS

# Tables written for each topic, in insert order (a ticket before its lines).
TOPIC_TABLES: dict[str, tuple[str, ...]] = {
    POS_TICKETS: ("tickets", "ticket_lines"),
    CAMERA_COUNTS: ("camera_frames",),
    CONVERSION_HOURLY: ("conversion_hourly",),
    ALERTS: ("alerts",),
    STAFF_SHIFTS: ("staff_shifts",),
    STOREOPS_HOURLY: ("storeops_hourly",),
    FORECAST_HOURLY: ("forecast_hourly",),
}


class MappingError(ValueError):
    """A valid record that cannot be placed (for example a store missing from the catalogue)."""


def local_time(ts: datetime, timezone: str) -> datetime:
    return ts.astimezone(ZoneInfo(timezone))


def ticket_rows(ticket: PosTicket, timezone: str) -> tuple[Row, list[Row]]:
    """The ``tickets`` row and the ``ticket_lines`` rows of one ticket."""
    local = local_time(ticket.occurred_at, timezone)
    cash = sum(p.amount for p in ticket.payments if p.method == PaymentMethod.CASH)
    card = sum(p.amount for p in ticket.payments if p.method == PaymentMethod.CARD)
    head: Row = (
        ticket.ticket_id, ticket.source, ticket.store_id, ticket.tenant_id or "", ticket.terminal_id or "",
        str(ticket.kind), str(ticket.channel), ticket.occurred_at, timezone, local.date(), local.hour,
        ticket.currency, ticket.gross_amount, ticket.net_amount, ticket.tax_amount, ticket.discount_amount,
        cash, card, [str(p.method) for p in ticket.payments], [p.amount for p in ticket.payments],
        len(ticket.lines), float(sum(line.quantity for line in ticket.lines)), ticket.original_ticket_id or "",
        ticket.ingested_at,
    )  # fmt: skip
    lines: list[Row] = [
        (
            ticket.ticket_id,
            i,
            ticket.store_id,
            str(ticket.kind),
            ticket.occurred_at,
            timezone,
            local.date(),
            line.sku,
            line.description or "",
            line.category or "",
            line.quantity,
            line.unit_price,
            line.discount_amount,
            line.net_amount,
            ticket.ingested_at,
        )
        for i, line in enumerate(ticket.lines, start=1)
    ]
    return head, lines


def camera_row(count: CameraCount, timezone: str) -> Row:
    return (
        count.camera_id, count.store_id, count.zone_id or "", count.frame_ts, timezone, count.frame_seq,
        count.people_in_frame, count.entries, count.exits, count.detector,
    )  # fmt: skip


def local_date_of(local_hour: str, hour_start: datetime, timezone: str) -> date:
    """The store-local date of an hour: from ``local_hour`` (ISO 8601 with offset), else from the time zone."""
    try:
        return datetime.fromisoformat(local_hour).date()
    except ValueError:
        return local_time(hour_start, timezone).date()


_MS_BITS = 41  # epoch milliseconds fit in 41 bits until 2039


def hourly_version(revision: int, is_final: bool, updated_at: datetime) -> int:
    """ReplacingMergeTree version: revision first, then final over live, then the newest update."""
    millis = int(updated_at.timestamp() * 1000) & ((1 << _MS_BITS) - 1)
    return (revision << (_MS_BITS + 1)) | (int(is_final) << _MS_BITS) | millis


def hourly_row(h: HourlyConversion) -> Row:
    return (
        h.store_id, h.zone_id or "", h.tenant_id or "", h.mall_id or "", h.category or "", h.hour_start,
        h.local_hour, local_date_of(h.local_hour, h.hour_start, h.timezone), h.timezone, h.currency or "",
        h.visitors, h.exits, h.transactions, h.net_revenue, h.gross_revenue, h.discount_amount, h.units, h.refunds,
        h.refund_amount, h.voids, h.employee_sales, h.cash_amount, h.conversion, h.avg_ticket,
        h.units_per_transaction, h.revenue_per_visitor, h.revenue_per_m2, h.void_rate, h.discount_rate,
        h.cash_share, list(h.quality_flags), h.is_final, h.revision, h.updated_at,
        hourly_version(h.revision, h.is_final, h.updated_at), h.complete_share,
    )  # fmt: skip


def forecast_row(f: HourlyForecast) -> Row:
    return (
        f.store_id, f.tenant_id or "", f.mall_id or "", f.hour_start, f.local_hour,
        local_date_of(f.local_hour, f.hour_start, f.timezone), f.timezone, f.currency or "", f.issued_at,
        f.horizon_hours, f.visitors, f.net_revenue, f.method,
    )  # fmt: skip


def alert_row(alert: Alert, timezone: str) -> Row:
    return (
        alert.alert_id, str(alert.kind), str(alert.state), str(alert.severity), alert.store_id,
        alert.tenant_id or "", alert.mall_id or "", alert.hour_start, timezone, alert.observed, alert.expected,
        alert.message, alert.fired_at, dict(alert.details),
    )  # fmt: skip


def rows_for(topic: str, record: Record, timezones: Mapping[str, str]) -> dict[str, list[Row]]:
    """Rows per table for one record of ``topic``; ``timezones`` maps store id to IANA zone."""
    if topic == CONVERSION_HOURLY:
        assert isinstance(record, HourlyConversion)
        return {"conversion_hourly": [hourly_row(record)]}
    if topic == STOREOPS_HOURLY:
        assert isinstance(record, OpsHourly)
        return {"storeops_hourly": [ops_row(record)]}
    store_id = str(getattr(record, "store_id", ""))
    timezone = timezones.get(store_id)
    if topic == FORECAST_HOURLY:
        assert isinstance(record, HourlyForecast)
        return {"forecast_hourly": [forecast_row(record)]}
    if topic == ALERTS:
        assert isinstance(record, Alert)
        return {"alerts": [alert_row(record, timezone or "UTC")]}
    if timezone is None:
        raise MappingError(f"store {store_id!r} is not in the catalogue, so its local time is unknown")
    if topic == POS_TICKETS:
        assert isinstance(record, PosTicket)
        head, lines = ticket_rows(record, timezone)
        return {"tickets": [head], "ticket_lines": lines}
    if topic == CAMERA_COUNTS:
        assert isinstance(record, CameraCount)
        return {"camera_frames": [camera_row(record, timezone)]}
    if topic == STAFF_SHIFTS:
        assert isinstance(record, StaffShift)
        return {"staff_shifts": [shift_row(record, timezone)]}
    raise MappingError(f"topic {topic!r} has no ClickHouse table")


def store_rows(catalogue: Catalogue, loaded_at: datetime) -> list[Row]:
    return [
        (s.id, s.name, s.timezone, s.area_m2, s.category, s.mall_id or "", s.tenant_id or "", s.currency, loaded_at)
        for s in catalogue.stores
    ]


def zone_rows(catalogue: Catalogue, loaded_at: datetime) -> list[Row]:
    return [(s.id, z.id, z.name or z.id, z.area_m2, loaded_at) for s in catalogue.stores for z in s.zones]


def timezones_of(catalogue: Catalogue) -> dict[str, str]:
    return {s.id: s.timezone for s in catalogue.stores}
