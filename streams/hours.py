"""Store-local hours: which local hour an instant falls in, for any IANA zone (DST days, +5:30, +5:45).

Times are epoch milliseconds (UTC). A local hour is identified by its UTC start; on a 25-hour day the
repeated 01:00 (or 02:00) hour is two hours with different UTC starts, and on a 23-hour day the skipped
hour simply never occurs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

HOUR_MS = 3_600_000
_QUARTER_MS = 900_000


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=65_536)
def _offset_ms(tz_name: str, quarter: int) -> int:
    """UTC offset of ``tz_name`` during one quarter hour (all real offset changes fall on quarter hours)."""
    instant = datetime.fromtimestamp(quarter * _QUARTER_MS / 1000, tz=UTC).astimezone(zone(tz_name))
    offset = instant.utcoffset()
    assert offset is not None
    return int(offset.total_seconds() * 1000)


def offset_ms(ts_ms: int, tz_name: str) -> int:
    """The zone's UTC offset at ``ts_ms``, in milliseconds."""
    return _offset_ms(tz_name, ts_ms // _QUARTER_MS)


def hour_start(ts_ms: int, tz_name: str) -> int:
    """UTC epoch ms at which the local hour containing ``ts_ms`` starts.

    The offset in force at ``ts_ms`` holds for the whole local hour because zones change offset on local
    hour boundaries (Lord Howe's 30-minute shift is the one exception and is not supported).
    """
    off = offset_ms(ts_ms, tz_name)
    return (ts_ms + off) // HOUR_MS * HOUR_MS - off


def local_hour_iso(start_ms: int, tz_name: str) -> str:
    """ISO 8601 local time with offset of an hour start, e.g. ``2026-03-29T03:00:00+02:00``."""
    return datetime.fromtimestamp(start_ms / 1000, tz=UTC).astimezone(zone(tz_name)).isoformat()


def local_weekday_hour(start_ms: int, tz_name: str) -> tuple[int, int]:
    """(weekday 0=Monday, local hour of day) of an hour start: the baseline slot."""
    local = datetime.fromtimestamp(start_ms / 1000, tz=UTC).astimezone(zone(tz_name))
    return local.weekday(), local.hour


def local_day_hours(day: str, tz_name: str) -> list[int]:
    """UTC starts of every local hour of the local calendar day ``YYYY-MM-DD`` (23, 24 or 25 of them)."""
    tz = zone(tz_name)
    first = datetime.fromisoformat(day).replace(tzinfo=tz)
    start = hour_start(int(first.timestamp() * 1000), tz_name)
    hours = []
    while True:
        local = datetime.fromtimestamp(start / 1000, tz=UTC).astimezone(tz)
        if local.date().isoformat() != day:
            break
        hours.append(start)
        start += HOUR_MS
    return hours


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(value.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
