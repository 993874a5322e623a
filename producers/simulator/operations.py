"""Store operations in the simulator: product categories of lines, the queue at the tills, the staff rota.

Plain functions over a planned store-day (no I/O):

- :func:`line_category`: a SKU's category. Stores whose zones list categories sell those (each SKU in one,
  from a digest of the SKU) plus the store's own category, which no zone lists (the ``unmapped`` zone).
- :func:`queue_series`: people waiting per frame for each queue camera: the in-store buyers who pay within
  the next ``wait_s`` seconds, shared between the store's queue cameras, plus the people a ``queue-long``
  incident adds in its window.
- :func:`rota`: the day's shifts. Floor staff scale with the store's area: an early and a late team that
  overlap for two hours over midday, where each shift over six hours takes its 30-minute break (one at a
  time). Each shift is published twice, at clock-in (open, no end) and at clock-out (closed, with its
  breaks). During an ``understaffed`` incident every floor shift but one is off the floor. Staff appear as
  a digest (``staff_ref``), never a name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from schemas.catalogue import Camera, Store
from schemas.storeops import ShiftBreak, StaffShift

MS_PER_MIN = 60_000


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def line_category(store: Store, sku: str) -> str:
    categories = [c for z in store.zones for c in z.categories]
    if not categories:
        return store.category
    choices = [*categories, store.category]
    return choices[_digest(sku) % len(choices)]


def queue_series(
    store: Store,
    cameras: Sequence[Camera],
    frame_ms: np.ndarray,
    pay_ms: np.ndarray,
    extra: Sequence[tuple[int, int, float]] = (),
    wait_s: float = 50.0,
) -> dict[str, np.ndarray]:
    """People in the queue per frame for each queue camera; ``extra`` = (start ms, end ms, people added)."""
    pays = np.sort(pay_ms)
    waiting = np.searchsorted(pays, frame_ms + int(wait_s * 1000), "left") - np.searchsorted(pays, frame_ms, "left")
    waiting = waiting.astype(np.int64)
    for start, end, people in extra:
        inside = (frame_ms >= start) & (frame_ms < end)
        waiting = np.where(inside, waiting + int(people), waiting)
    k = len(cameras)
    out = {}
    for i, cam in enumerate(cameras):
        out[cam.id] = waiting // k + (i < waiting % k)
    return out


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def rota(
    store: Store,
    opens_ms: int,
    closes_ms: int,
    source: str,
    understaffed: Sequence[tuple[int, int]] = (),
) -> list[tuple[int, StaffShift]]:
    """(emit ms, shift) for the store-day: each shift at clock-in and again at clock-out."""
    team = max(1, round(store.area_m2 / 200))
    day = _dt(opens_ms).astimezone(store.tz).strftime("%Y%m%d")
    mid = (opens_ms + closes_ms) // 2 // MS_PER_MIN * MS_PER_MIN
    plan: list[tuple[str, str, int, int]] = []
    for i in range(team):
        plan.append((f"early{i}", "sales", opens_ms - 15 * MS_PER_MIN, mid + 60 * MS_PER_MIN))
        plan.append((f"late{i}", "sales", mid - 60 * MS_PER_MIN, closes_ms + 15 * MS_PER_MIN))
    plan.append(("stock", "stock", opens_ms - 90 * MS_PER_MIN, opens_ms + 120 * MS_PER_MIN))
    out: list[tuple[int, StaffShift]] = []
    kept_on_floor: set[tuple[int, int]] = set()
    for n, (name, role, start, end) in enumerate(plan):
        breaks: list[ShiftBreak] = []
        if end - start > 6 * 60 * MS_PER_MIN:
            # Breaks fall in the two hours both teams are in, one person at a time.
            b0 = mid - 60 * MS_PER_MIN + (n * 30 * MS_PER_MIN) % (120 * MS_PER_MIN)
            breaks.append(ShiftBreak(start_at=_dt(b0), end_at=_dt(b0 + 30 * MS_PER_MIN)))
        if role == "sales":
            for w0, w1 in understaffed:
                if start < w1 and end > w0:
                    if (w0, w1) not in kept_on_floor:
                        kept_on_floor.add((w0, w1))  # the one who stays
                        continue
                    lo, hi = max(start, w0), min(end, w1)
                    breaks = [b for b in breaks if _ms(b.end_at or b.start_at) <= lo or _ms(b.start_at) >= hi]
                    breaks.append(ShiftBreak(start_at=_dt(lo), end_at=_dt(hi)))
        ref = f"{source}:{_digest(f'{store.id}|{name}') % 10**12:012d}"
        fields = {
            "shift_id": f"{source}:{store.id}:{day}:{name}",
            "source": source,
            "store_id": store.id,
            "staff_ref": ref,
            "role": role,
            "start_at": _dt(start),
        }
        out.append((start, StaffShift(**fields, ingested_at=_dt(start))))  # type: ignore[arg-type]
        closed = StaffShift(
            **fields,  # type: ignore[arg-type]
            end_at=_dt(end),
            breaks=tuple(sorted(breaks, key=lambda b: b.start_at)),
            ingested_at=_dt(end + 2 * MS_PER_MIN),
        )
        out.append((end + 2 * MS_PER_MIN, closed))
    out.sort(key=lambda item: item[0])
    return out
