"""Expected values of a store-hour from the store's own history of final hours (pure functions).

History entries are compact dicts kept per store: ``s`` (hour start, UTC ms), ``wd``/``h`` (local weekday and
hour of day), ``net``, ``v`` (visitors), ``tx``, and the rates used by the underreporting rule.

Baseline of a store-hour, first rule that has enough data:
1. ``same_weekday``: the median of the same local weekday and hour over the last four weeks (at least 2 of
   the up to 4 samples). Expected revenue, visitors and transactions are those medians.
2. ``revenue_per_visitor``: with less history, the expected revenue is this hour's visitors times the
   store's median revenue per visitor over its closed hours of the last 7 days (at least 3 hours with 20+
   visitors). It tells nothing about footfall, so TRAFFIC_DROP then falls back to
3. ``same_hour``: the median visitors of the same local hour on the last 7 days, any weekday (at least 2).
Without any of these there is no baseline and no sales or traffic alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from streams.hours import HOUR_MS

DAY_MS = 24 * HOUR_MS
MIN_VISITORS_FOR_RATE = 20


@dataclass(frozen=True)
class Baseline:
    method: str
    net: float | None
    """Expected net revenue (None: unknown)."""
    visitors: float | None
    avg_ticket: float | None
    samples: int
    transactions: float | None = None
    """Expected SALE transactions (None: unknown)."""


def history_entry(record: dict[str, Any], weekday: int, hour: int) -> dict[str, Any]:
    """The compact history entry of a final HourlyConversion record."""
    tx = record["transactions"]
    refunds = record["refunds"]
    return {
        "s": record["hour_start"],
        "wd": weekday,
        "h": hour,
        "net": record["net_revenue"],
        "v": record["visitors"],
        "tx": tx,
        "conv": record["conversion"],
        "vr": record["void_rate"],
        "rr": refunds / (tx + refunds) if tx + refunds else None,
        "cs": record["cash_share"],
    }


def _avg_ticket(entries: Iterable[dict[str, Any]]) -> float | None:
    tickets = [e["net"] / e["tx"] for e in entries if e["tx"]]
    return median(tickets) if tickets else None


def baseline(
    history: Sequence[dict[str, Any]], start_ms: int, weekday: int, hour: int, visitors: int
) -> Baseline | None:
    """Expected values for the hour starting at ``start_ms`` (local ``weekday``/``hour``) with ``visitors`` so far."""
    past = [e for e in history if e["s"] < start_ms]
    same = sorted(
        (e for e in past if e["wd"] == weekday and e["h"] == hour and e["s"] >= start_ms - 28 * DAY_MS),
        key=lambda e: e["s"],
    )[-4:]
    if len(same) >= 2:
        return Baseline(
            "same_weekday",
            float(median(e["net"] for e in same)),
            float(median(e["v"] for e in same)),
            _avg_ticket(same) or _avg_ticket(past),
            len(same),
            float(median(e["tx"] for e in same)),
        )
    week = [e for e in past if e["s"] >= start_ms - 7 * DAY_MS]
    rich = [e for e in week if e["v"] >= MIN_VISITORS_FOR_RATE]
    same_hour = [e for e in week if e["h"] == hour]
    net = visitors * median(e["net"] / e["v"] for e in rich) if len(rich) >= 3 else None
    expected_visitors = float(median(e["v"] for e in same_hour)) if len(same_hour) >= 2 else None
    if net is None and expected_visitors is None:
        return None
    method = "revenue_per_visitor" if net is not None else "same_hour"
    tx = visitors * median(e["tx"] / e["v"] for e in rich) if len(rich) >= 3 else None
    samples = len(rich) if net is not None else len(same_hour)
    return Baseline(method, net, expected_visitors, _avg_ticket(rich or week), samples, tx)


def prune(history: list[dict[str, Any]], now_ms: int, keep_days: int = 35) -> list[dict[str, Any]]:
    """History entries newer than ``keep_days`` before ``now_ms``."""
    return [e for e in history if e["s"] >= now_ms - keep_days * DAY_MS]


def robust_center_scale(values: Sequence[float]) -> tuple[float, float]:
    """Median and MAD scaled to a normal standard deviation (1.4826 × median absolute deviation)."""
    center = float(median(values))
    mad = float(median(abs(v - center) for v in values))
    return center, 1.4826 * mad
