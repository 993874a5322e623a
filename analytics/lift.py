"""Campaign lift by difference-in-differences, with an interval, and a verdict that says when the data cannot tell.

For each metric (visitors, conversion, sales per day) and each day, ``d`` is the mean log value of the treated
units less the mean log value of the control units (comparable stores in the same mall and category). A day
counts only when every unit has a positive value (closed days and silent feeds drop out). The estimate is

    mean(d over the campaign days) - mean(d over the baseline days before it)

which removes both what differs between the stores (the level before) and what changed for every store at
once (the controls during). On the log scale it is a relative lift: ``exp(estimate) - 1``. Its interval is
Welch's t interval over the two sets of daily differences. The ClickHouse view ``campaign_lift`` computes the
same with ``welchTTest``.

Pure functions, no I/O; dates are the stores' local dates.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypedDict

from analytics.campaigns import Campaign, Unit

METRICS = ("visitors", "conversion", "sales")
MIN_BASELINE_DAYS = 7
MIN_CAMPAIGN_DAYS = 3
MAX_HALF_WIDTH = 0.25
"""An interval that includes zero and spans more than ±25% says the data cannot tell (rather than no effect)."""


class DailyRow(TypedDict):
    """One unit's day: store totals (zone_id '') or a zone's."""

    store_id: str
    zone_id: str
    local_date: date
    visitors: int
    transactions: int
    net_revenue: int


@dataclass(frozen=True)
class LiftEstimate:
    metric: str
    baseline_days: int
    campaign_days: int
    estimate: float | None
    """Difference-in-differences of mean log values (None when it cannot be computed)."""
    low: float | None
    high: float | None
    treated_mean: float | None
    """Mean daily value of the treated units during the campaign."""
    verdict: str

    @property
    def lift(self) -> float | None:
        """Relative lift: 0.12 is +12%."""
        return None if self.estimate is None else math.expm1(self.estimate)

    @property
    def lift_low(self) -> float | None:
        return None if self.low is None else math.expm1(self.low)

    @property
    def lift_high(self) -> float | None:
        return None if self.high is None else math.expm1(self.high)

    @property
    def per_day(self) -> float | None:
        """Effect per day in the metric's unit (visitors, conversion points, minor units of sales): the treated
        mean during the campaign less what it would have been without the lift."""
        if self.treated_mean is None or self.estimate is None:
            return None
        return self.treated_mean * -math.expm1(-self.estimate)


def _t_pdf(x: float, df: float) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))


def _t_cdf(x: float, df: float, steps: int = 2000) -> float:
    """P(T <= x) for x >= 0 by Simpson's rule over the density from 0."""
    h = x / steps
    total = _t_pdf(0.0, df) + _t_pdf(x, df)
    total += sum((4 if i % 2 else 2) * _t_pdf(i * h, df) for i in range(1, steps))
    return 0.5 + total * h / 3


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t distribution for p > 0.5: the normal's Cornish-Fisher expansion refined by Newton
    steps on the numerically integrated distribution function (within 1e-6 of the tables)."""
    if df <= 1:
        return math.tan(math.pi * (p - 0.5))
    z = statistics.NormalDist().inv_cdf(p)
    x = z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    for _ in range(6):
        step = (_t_cdf(x, df) - p) / _t_pdf(x, df)
        x -= step
        if abs(step) < 1e-9:
            break
    return x


def welch_interval(during: Sequence[float], before: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean(during) - mean(before), low, high): Welch's t interval for the difference of two means."""
    diff = statistics.fmean(during) - statistics.fmean(before)
    a = statistics.variance(during) / len(during)
    b = statistics.variance(before) / len(before)
    se = math.sqrt(a + b)
    if se == 0:
        return diff, diff, diff
    df = (a + b) ** 2 / (a**2 / (len(during) - 1) + b**2 / (len(before) - 1))
    half = t_quantile(0.5 + level / 2, df) * se
    return diff, diff - half, diff + half


def value(row: DailyRow, metric: str) -> float:
    if metric == "visitors":
        return float(row["visitors"])
    if metric == "conversion":
        return row["transactions"] / row["visitors"] if row["visitors"] > 0 else 0.0
    return float(row["net_revenue"])


def daily_differences(
    rows: Iterable[DailyRow], treated: Sequence[Unit], controls: Sequence[Unit], metric: str
) -> dict[date, float]:
    """Per day with a positive value for every unit: mean log treated - mean log controls."""
    by_day: dict[date, dict[Unit, float]] = {}
    wanted = set(treated) | set(controls)
    for row in rows:
        unit = Unit(row["store_id"], row["zone_id"])
        if unit in wanted:
            by_day.setdefault(row["local_date"], {})[unit] = value(row, metric)
    out = {}
    for day, values in sorted(by_day.items()):
        if all(values.get(u, 0.0) > 0 for u in wanted):
            t = statistics.fmean(math.log(values[u]) for u in treated)
            c = statistics.fmean(math.log(values[u]) for u in controls)
            out[day] = t - c
    return out


def baseline_window(campaign: Campaign) -> tuple[date, date]:
    """First and last day of the baseline: the ``baseline_days`` days before the campaign starts."""
    return campaign.start - timedelta(days=campaign.baseline_days), campaign.start - timedelta(days=1)


def estimate(
    campaign: Campaign, rows: Sequence[DailyRow], treated: Sequence[Unit], controls: Sequence[Unit], level: float = 0.95
) -> list[LiftEstimate]:
    """One estimate per metric, each with its interval and verdict."""
    first, last = baseline_window(campaign)
    out = []
    for metric in METRICS:
        if not controls:
            out.append(LiftEstimate(metric, 0, 0, None, None, None, None, "cannot tell: no comparable store"))
            continue
        diffs = daily_differences(rows, treated, controls, metric)
        before = [d for day, d in diffs.items() if first <= day <= last]
        during = [d for day, d in diffs.items() if campaign.start <= day <= campaign.end]
        during_days = {day for day in diffs if campaign.start <= day <= campaign.end}
        treated_set = set(treated)
        treated_values = [
            value(r, metric)
            for r in rows
            if r["local_date"] in during_days and Unit(r["store_id"], r["zone_id"]) in treated_set
        ]
        mean: float | None = None
        if treated_values:  # conversion: mean over unit-days; visitors and sales: the treated units' total per day
            mean = (
                statistics.fmean(treated_values) if metric == "conversion" else sum(treated_values) / len(during_days)
            )
        if len(before) < MIN_BASELINE_DAYS:
            verdict = f"cannot tell: {len(before)} comparable days before the campaign (at least {MIN_BASELINE_DAYS})"
            out.append(LiftEstimate(metric, len(before), len(during), None, None, None, mean, verdict))
            continue
        if len(during) < MIN_CAMPAIGN_DAYS:
            verdict = f"cannot tell: {len(during)} comparable campaign days (at least {MIN_CAMPAIGN_DAYS})"
            out.append(LiftEstimate(metric, len(before), len(during), None, None, None, mean, verdict))
            continue
        est, low, high = welch_interval(during, before, level)
        out.append(LiftEstimate(metric, len(before), len(during), est, low, high, mean, verdict_of(low, high, level)))
    return out


def verdict_of(low: float, high: float, level: float = 0.95) -> str:
    pct = f"{level:.0%}"
    if low > 0:
        return f"lift ({pct} interval above zero)"
    if high < 0:
        return f"drop ({pct} interval below zero)"
    if max(-math.expm1(low), math.expm1(high)) > MAX_HALF_WIDTH:
        return f"cannot tell: the {pct} interval {math.expm1(low):+.0%} to {math.expm1(high):+.0%} is too wide"
    return f"no detectable effect ({pct} interval includes zero)"
