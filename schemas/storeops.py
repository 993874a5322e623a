"""Contracts of store operations: staff shifts in, per-hour staffing, queue, zone and category figures out.

- :class:`StaffShift` (topic ``staff.shifts``, key ``store_id``): one shift of one staff member, as the
  rota, the clock-in system or the POS labour API knows it. A staff member appears only as ``staff_ref``, a
  per-source pseudonymous id (a digest of the vendor's employee id), never a name. A shift is an upsert by
  ``shift_id``: a later record replaces an earlier one (an open shift gets its end, a correction moves it);
  ``deleted`` retracts it.
- :class:`OpsHourly` (topic ``storeops.hourly``, key ``store_id``): the figures of one store-local hour at
  one grain: the whole store (staffing and queues), one zone of the floor plan (sales attributed from ticket
  lines by category, traffic from the zone's camera), or one product category.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field, model_validator

from schemas.models import Currency, Double, Id, Int, Long, Record, UtcDatetime


class ShiftBreak(Record):
    start_at: UtcDatetime
    end_at: UtcDatetime | None = None


class StaffShift(Record):
    """One staff shift at one store (topic ``staff.shifts``, key ``store_id``)."""

    avro_name: ClassVar[str] = "staff_shift"

    shift_id: Id
    source: Id
    store_id: Id
    staff_ref: Id
    """Per-source pseudonymous id of the staff member (never a name or the vendor's raw id)."""
    role: str | None = None
    start_at: UtcDatetime
    end_at: UtcDatetime | None = None
    """None while the shift is open (clocked in, not out yet)."""
    breaks: tuple[ShiftBreak, ...] = ()
    deleted: bool = False
    ingested_at: UtcDatetime

    @model_validator(mode="after")
    def _order(self) -> StaffShift:
        if self.end_at is not None and self.end_at < self.start_at:
            raise ValueError(
                f"shift {self.shift_id}: ends at {self.end_at.isoformat()} before it starts at "
                f"{self.start_at.isoformat()}"
            )
        for b in self.breaks:
            if b.end_at is not None and b.end_at < b.start_at:
                raise ValueError(f"shift {self.shift_id}: a break ends before it starts")
        return self


class Grain(StrEnum):
    STORE = "STORE"
    ZONE = "ZONE"
    CATEGORY = "CATEGORY"


class OpsHourly(Record):
    """Store operations figures of one store-local hour at one grain (topic ``storeops.hourly``)."""

    avro_name: ClassVar[str] = "ops_hourly"

    store_id: str
    grain: Grain
    dimension: str = ""
    """'' for the store, the zone id (``unmapped`` for lines whose category maps to no zone), the category."""
    tenant_id: str | None = None
    mall_id: str | None = None
    hour_start: UtcDatetime
    local_hour: str
    timezone: str
    currency: Currency | None = None
    visitors: Long | None = None
    transactions: Long = 0
    net_revenue: Long = 0
    units: Double = 0.0
    conversion: Double | None = None
    revenue_per_m2: Double | None = None
    staff_minutes: Double = 0.0
    staff_on_floor: Double | None = None
    visitors_per_staff: Double | None = None
    sales_per_labour_hour: Double | None = None
    queue_minutes: Int = Field(default=0, ge=0)
    queue_mean: Double | None = None
    queue_p90: Double | None = None
    queue_max: Double | None = None
    queue_minutes_over: Int = Field(default=0, ge=0)
    conversion_revision: Int = Field(default=0, ge=0)
    is_final: bool
    revision: Int = Field(ge=0)
    updated_at: UtcDatetime
