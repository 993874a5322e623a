"""Store-operations records to ClickHouse rows (pure functions): ``storeops_hourly``, ``staff_shifts``,
``camera_roles``. Column orders in :data:`STOREOPS_COLUMNS` (merged into mapping.COLUMNS)."""

from __future__ import annotations

from datetime import datetime

from schemas.catalogue import Catalogue
from schemas.storeops import OpsHourly, StaffShift

Row = tuple[object, ...]

STOREOPS_COLUMNS: dict[str, list[str]] = {
    "storeops_hourly": [
        "store_id", "grain", "dimension", "tenant_id", "mall_id", "hour_start", "local_hour", "local_date",
        "timezone", "currency", "visitors", "transactions", "net_revenue", "units", "conversion", "revenue_per_m2",
        "staff_minutes", "staff_on_floor", "visitors_per_staff", "sales_per_labour_hour", "queue_minutes",
        "queue_mean", "queue_p90", "queue_max", "queue_minutes_over", "conversion_revision", "revision",
        "updated_at", "version",
    ],
    "staff_shifts": [
        "shift_id", "source", "store_id", "staff_ref", "role", "start_at", "end_at", "break_minutes", "timezone",
        "local_date", "deleted", "ingested_at",
    ],
    "camera_roles": ["camera_id", "store_id", "zone_id", "role", "loaded_at"],
}  # fmt: skip


def ops_row(h: OpsHourly) -> Row:
    from sinks.clickhouse.mapping import hourly_version, local_date_of

    return (
        h.store_id, str(h.grain), h.dimension, h.tenant_id or "", h.mall_id or "", h.hour_start, h.local_hour,
        local_date_of(h.local_hour, h.hour_start, h.timezone), h.timezone, h.currency or "", h.visitors,
        h.transactions, h.net_revenue, h.units, h.conversion, h.revenue_per_m2, h.staff_minutes, h.staff_on_floor,
        h.visitors_per_staff, h.sales_per_labour_hour, h.queue_minutes, h.queue_mean, h.queue_p90, h.queue_max,
        h.queue_minutes_over, h.conversion_revision, h.revision, h.updated_at,
        hourly_version(h.revision, h.is_final, h.updated_at),
    )  # fmt: skip


def shift_row(s: StaffShift, timezone: str) -> Row:
    from sinks.clickhouse.mapping import local_time

    breaks = sum(((b.end_at or s.end_at or b.start_at) - b.start_at).total_seconds() / 60 for b in s.breaks)
    return (
        s.shift_id, s.source, s.store_id, s.staff_ref, s.role or "", s.start_at, s.end_at, max(breaks, 0.0),
        timezone, local_time(s.start_at, timezone).date(), int(s.deleted), s.ingested_at,
    )  # fmt: skip


def camera_role_rows(catalogue: Catalogue, loaded_at: datetime) -> list[Row]:
    return [(c.id, c.store_id, c.zone_id or "", c.role, loaded_at) for c in catalogue.cameras]
