"""Vendor shift records and rota rows to :class:`StaffShift` (pure functions, no I/O).

Staff appear only as ``staff_ref``: a digest of the source name and the vendor's employee id, so one person
has one stable reference per source and no name or raw id leaves the store. Names in vendor payloads are never
read (and are scrubbed from dead letters).

- Square Labor API ``Timecard`` (``POST /v2/labor/timecards/search``, Square-Version 2025-05-21 or later;
  ``POST /v2/labor/shifts/search`` and the ``Shift`` object are deprecated and retired on 2026-05-21): id,
  location_id, team_member_id, start_at, end_at (absent while OPEN), breaks[start_at, end_at], wage.title
  (the role), status OPEN/CLOSED, version, updated_at.
- Clover ``Shift`` (``GET /v3/merchants/{mId}/shifts``): id, employee {id, role with ``expand=employee``},
  inTime / outTime (epoch ms; outTime absent while clocked in) and the manager corrections overrideInTime /
  overrideOutTime, which win when present (they are what payroll uses).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.storeops import ShiftBreak, StaffShift
from tillflow.documents import validation_reason
from tillflow.errors import MappingError

_NAMES = re.compile(r"name|nickname|e_?mail|phone|pin|address|birth", re.IGNORECASE)


class ShiftMappingError(MappingError):
    """A vendor record or rota row that cannot become a StaffShift; the message says why."""


def staff_ref(source: str, employee_id: str) -> str:
    """Per-source pseudonymous id: the same person and source always give the same reference."""
    digest = hashlib.sha256(f"{source}|{employee_id}".encode()).hexdigest()[:16]
    return f"{source}:{digest}"


def scrub_staff(value: Any) -> Any:
    """A payload without names, contact details or PINs (for dead letters)."""
    if isinstance(value, dict):
        return {k: scrub_staff(v) for k, v in value.items() if not (isinstance(k, str) and _NAMES.search(k))}
    if isinstance(value, list):
        return [scrub_staff(v) for v in value]
    return value


def _time(value: Any, what: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ShiftMappingError(f"{what} {value!r} is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise ShiftMappingError(f"{what} {value!r} has no UTC offset")
        return parsed
    raise ShiftMappingError(f"{what} is missing or not a time: {value!r}")


def _build(what: str, **fields: Any) -> StaffShift:
    try:
        return StaffShift(**fields)
    except ValidationError as exc:
        raise ShiftMappingError(f"{what}: {validation_reason(exc, top=what)}") from None


def square_timecard(tc: Mapping[str, Any], source: str, stores: Mapping[str, str], ingested_at: datetime) -> StaffShift:
    tid = tc.get("id")
    what = f"square timecard {tid}"
    if not tid:
        raise ShiftMappingError("square timecard without an id")
    store = stores.get(str(tc.get("location_id")))
    if store is None:
        raise ShiftMappingError(f"{what}: location {tc.get('location_id')!r} is not in the source's stores")
    member = tc.get("team_member_id") or tc.get("employee_id")
    if not member:
        raise ShiftMappingError(f"{what}: no team_member_id")
    breaks = [
        ShiftBreak(start_at=_time(b.get("start_at"), f"{what} break start_at"),
                   end_at=_time(b["end_at"], f"{what} break end_at") if b.get("end_at") else None)
        for b in tc.get("breaks") or ()
    ]  # fmt: skip
    wage = tc.get("wage") or {}
    return _build(
        what,
        shift_id=f"square:{tid}",
        source=source,
        store_id=store,
        staff_ref=staff_ref(source, str(member)),
        role=wage.get("title") or None,
        start_at=_time(tc.get("start_at"), f"{what} start_at"),
        end_at=_time(tc["end_at"], f"{what} end_at") if tc.get("end_at") else None,
        breaks=tuple(breaks),
        ingested_at=ingested_at,
    )


def clover_shift(
    shift: Mapping[str, Any], source: str, store_id: str, ingested_at: datetime, roles: Mapping[str, str] | None = None
) -> StaffShift:
    sid = shift.get("id")
    what = f"clover shift {sid}"
    if not sid:
        raise ShiftMappingError("clover shift without an id")
    employee = shift.get("employee") or {}
    if not employee.get("id"):
        raise ShiftMappingError(f"{what}: no employee id")
    start = shift.get("overrideInTime") or shift.get("inTime")
    end = shift.get("overrideOutTime") or shift.get("outTime")
    role = employee.get("role")
    return _build(
        what,
        shift_id=f"clover:{sid}",
        source=source,
        store_id=store_id,
        staff_ref=staff_ref(source, str(employee["id"])),
        role=(roles or {}).get(str(role), str(role).lower()) if role else None,
        start_at=_time(start, f"{what} inTime"),
        end_at=_time(end, f"{what} outTime") if end else None,
        ingested_at=ingested_at,
    )


ROTA_COLUMNS = ("store_id", "shift_id", "employee_id", "role", "start", "end", "break_start", "break_end", "deleted")
"""Columns of a rota / clock-in CSV (header row required; role, end, break_*, deleted may be empty)."""


def rota_row(
    row: Mapping[str, str], source: str, known_stores: set[str], zone_of: Mapping[str, Any], ingested_at: datetime
) -> StaffShift:
    """One CSV row. Times are ISO 8601; without an offset they are the store's local time (``zone_of``)."""
    missing = [c for c in ("store_id", "shift_id", "employee_id", "start") if not (row.get(c) or "").strip()]
    if missing:
        raise ShiftMappingError(f"missing {', '.join(missing)}")
    store = row["store_id"].strip()
    if store not in known_stores:
        raise ShiftMappingError(f"store {store!r} is not in the catalogue")

    def when(column: str) -> datetime | None:
        text = (row.get(column) or "").strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ShiftMappingError(f"{column} {text!r} is not an ISO 8601 time") from None
        return value if value.tzinfo is not None else value.replace(tzinfo=zone_of[store])

    start = when("start")
    b0, b1 = when("break_start"), when("break_end")
    deleted = (row.get("deleted") or "").strip().lower() in ("1", "true", "yes", "y")
    return _build(
        f"rota shift {row['shift_id']}",
        shift_id=f"{source}:{row['shift_id'].strip()}",
        source=source,
        store_id=store,
        staff_ref=staff_ref(source, row["employee_id"].strip()),
        role=(row.get("role") or "").strip() or None,
        start_at=start,
        end_at=when("end"),
        breaks=(ShiftBreak(start_at=b0, end_at=b1),) if b0 is not None else (),
        deleted=deleted,
        ingested_at=ingested_at,
    )
