"""Store-operations tables in ClickHouse (pure functions): column orders of ``storeops_hourly``,
``staff_shifts`` and ``camera_roles`` in :data:`STOREOPS_COLUMNS` (merged into mapping.COLUMNS; the columns
of staff.shifts and storeops.hourly batches are made there), and the catalogue's camera roles as rows."""

from __future__ import annotations

from datetime import datetime

from schemas.catalogue import Catalogue

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


def camera_role_rows(catalogue: Catalogue, loaded_at: datetime) -> list[Row]:
    return [(c.id, c.store_id, c.zone_id or "", c.role, loaded_at) for c in catalogue.cameras]
