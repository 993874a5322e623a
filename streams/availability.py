"""Data availability per store-hour, as footfall vendors report it (pure functions, no I/O).

A store-hour's *expected minutes* are the minutes of the local hour in which the store is open by the
catalogue (every minute for a store without opening hours). A minute is *complete* when every entrance
camera of the store sent at least one frame in it; the camera minute bitmasks (bit m = minute m of the
hour) are kept in the hour state (``mc``) by the engine and rebuilt from the frames by the batch recompute.

- ``complete_share``: complete expected minutes / expected minutes (None when nothing was expected, or the
  store has no entrance camera). Carried by every store-level HourlyConversion record.
- An hour in which an entrance camera sent **no frame at all** while the store was open is flagged
  ``CAMERA_MISSING`` and has no conversion (nor revenue per visitor): no frames is not zero visitors.
- A POS minute is *missing* while the store's till feed is silent (inside a FIRING ``FEED_SILENT`` window:
  no ticket while tickets were expected, from the minute after the last ticket to the next one) and
  *delayed* when a ticket of it arrived after its hour had closed; otherwise complete.
  ``pos_complete_share``: POS-complete expected minutes / expected minutes; ``all_complete_share``: minutes
  complete for every entrance camera and the POS feed / expected minutes. Both are the streams' own view
  (arrival order is not in the data): the batch recompute leaves them null.
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


def minutes_within(hour_start_ms: int, since_ms: int, until_ms: int) -> int:
    """Bitmask of the minutes of the hour starting at ``hour_start_ms`` that overlap ``[since_ms, until_ms)``."""
    first = max((since_ms - hour_start_ms) // MINUTE_MS, 0)
    last = min(-((hour_start_ms - until_ms) // MINUTE_MS), 60)  # ceiling: a minute partly inside counts
    if last <= first:
        return 0
    return ((1 << (last - first)) - 1) << first


def pos_complete_minutes(missing: int, delayed: int) -> int:
    """Bitmask of the minutes whose POS data are complete: neither missing nor delayed."""
    return ALL_MINUTES & ~(missing | delayed)


def pos_complete_share(missing: int, delayed: int, expected: int) -> float | None:
    """Share of the ``expected`` minutes whose POS data are complete; None when nothing was expected."""
    if not expected:
        return None
    return (pos_complete_minutes(missing, delayed) & expected).bit_count() / expected.bit_count()


def all_complete_share(
    camera_minutes: Mapping[str, int], entrance_cameras: Sequence[str], missing: int, delayed: int, expected: int
) -> float | None:
    """Share of the ``expected`` minutes complete for every entrance camera and for the POS feed (a store without
    entrance cameras: the POS feed alone); None when nothing was expected."""
    if not expected:
        return None
    done = complete_minutes(camera_minutes, entrance_cameras) & pos_complete_minutes(missing, delayed) & expected
    return done.bit_count() / expected.bit_count()


def missing_cameras(camera_minutes: Mapping[str, int], entrance_cameras: Sequence[str], expected: int) -> list[str]:
    """Entrance cameras that sent no frame in any expected minute of the hour (the store being open)."""
    if not expected:
        return []
    return [cam for cam in entrance_cameras if not camera_minutes.get(cam, 0) & expected]


def apply_to_record(
    record: dict[str, Any],
    camera_minutes: Mapping[str, int],
    entrance_cameras: Sequence[str],
    expected: int,
    pos_missing: int | None = None,
    pos_delayed: int = 0,
) -> None:
    """Set a store-level HourlyConversion record's ``complete_share`` (and with ``pos_missing`` given, the
    streams', ``pos_complete_share`` and ``all_complete_share``), and when an entrance camera sent no frame in
    the open hour while another did, flag ``CAMERA_MISSING`` and drop conversion and revenue per visitor: the
    visitors counted are a part of the store's."""
    record["complete_share"] = complete_share(camera_minutes, entrance_cameras, expected)
    if pos_missing is not None:
        record["pos_complete_share"] = pos_complete_share(pos_missing, pos_delayed, expected)
        record["all_complete_share"] = all_complete_share(
            camera_minutes, entrance_cameras, pos_missing, pos_delayed, expected
        )
    sent = any(camera_minutes.get(c, 0) & expected for c in entrance_cameras)
    if sent and missing_cameras(camera_minutes, entrance_cameras, expected):
        record["quality_flags"].append(CAMERA_MISSING)
        record["conversion"] = None
        record["revenue_per_visitor"] = None
