"""Data availability per store-hour, as footfall vendors report it (pure functions, no I/O).

A store-hour's *expected minutes* are the minutes of the local hour in which the store is open by the
catalogue (every minute for a store without opening hours). A minute is *complete* when every entrance
camera of the store sent at least one frame in it; the camera minute bitmasks (bit m = minute m of the
hour) are kept in the hour state (``mc``) by the engine and rebuilt from the frames by the batch recompute.

- ``complete_share``: complete expected minutes / expected minutes (None when nothing was expected, or the
  store has no entrance camera). Carried by every store-level HourlyConversion record.
- An hour in which an entrance camera sent **no frame at all** while the store was open is flagged
  ``CAMERA_MISSING`` and has no conversion (nor revenue per visitor): no frames is not zero visitors.
- Per source and minute (on time, delayed with the delay, missing), the rule lives in ClickHouse, where the
  arrival times are: the ``source_minutes`` view (deploy/clickhouse/0014, docs/streams.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.catalogue import Store

MINUTE_MS = 60_000
CAMERA_MISSING = "CAMERA_MISSING"
ALL_MINUTES = (1 << 60) - 1


_MASKS: dict[tuple[str, int], tuple[Store, int]] = {}


def _open_mask(store: Store, hour_start_ms: int) -> int:
    key = (store.id, hour_start_ms)
    cached = _MASKS.get(key)
    if cached is not None and cached[0] is store:
        return cached[1]
    if len(_MASKS) > 200_000:
        _MASKS.clear()
    mask = ALL_MINUTES if store.opening_hours is None else _compute_mask(store, hour_start_ms)
    _MASKS[key] = (store, mask)
    return mask


def _compute_mask(store: Store, hour_start_ms: int) -> int:
    local = datetime.fromtimestamp(hour_start_ms / 1000, tz=UTC).astimezone(store.tz)
    mask = 0
    for m in range(60):
        at = local + timedelta(minutes=m)
        hours = store.hours_on(at.weekday())
        if hours is not None and hours.open <= at.time() < hours.close:
            mask |= 1 << m
    return mask


def open_minutes(store: Store, hour_start_ms: int) -> int:
    """Bitmask of the minutes of the local hour starting at ``hour_start_ms`` in which ``store`` is open."""
    return _open_mask(store, hour_start_ms)


def complete_minutes(camera_minutes: Mapping[str, int], entrance_cameras: Sequence[str]) -> int:
    """Bitmask of the minutes in which every entrance camera sent a frame."""
    mask = ALL_MINUTES
    for cam in entrance_cameras:
        mask &= camera_minutes.get(cam, 0)
    return mask


def complete_share(camera_minutes: Mapping[str, int], entrance_cameras: Sequence[str], expected: int) -> float | None:
    """Share of the ``expected`` minutes (bitmask) that are complete; None without expectations or cameras."""
    if not expected or not entrance_cameras:
        return None
    done = complete_minutes(camera_minutes, entrance_cameras) & expected
    return done.bit_count() / expected.bit_count()


def missing_cameras(camera_minutes: Mapping[str, int], entrance_cameras: Sequence[str], expected: int) -> list[str]:
    """Entrance cameras that sent no frame in any expected minute of the hour (the store being open)."""
    if not expected:
        return []
    return [cam for cam in entrance_cameras if not camera_minutes.get(cam, 0) & expected]


def apply_to_record(
    record: dict[str, Any], camera_minutes: Mapping[str, int], entrance_cameras: Sequence[str], expected: int
) -> None:
    """Set a store-level HourlyConversion record's ``complete_share``, and when an entrance camera sent no
    frame in the open hour while another did, flag ``CAMERA_MISSING`` and drop conversion and revenue per
    visitor: the visitors counted are a part of the store's."""
    record["complete_share"] = complete_share(camera_minutes, entrance_cameras, expected)
    sent = any(camera_minutes.get(c, 0) & expected for c in entrance_cameras)
    if sent and missing_cameras(camera_minutes, entrance_cameras, expected):
        record["quality_flags"].append(CAMERA_MISSING)
        record["conversion"] = None
        record["revenue_per_visitor"] = None
