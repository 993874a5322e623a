"""Hourly forecasts per store: expected visitors and sales for the rest of today and tomorrow.

The model, in the store's local time (so DST days and every offset work alike):

- shape: for each hour of the target weekday, the trimmed mean of that hour over the last ``weeks`` same
  weekdays that had data (the highest and lowest dropped once there are four or more), so one odd day (an
  incident, a holiday) moves it little;
- level: how the recent days ran against their own shape (each day compared with the shape from the weeks
  before it), shrunk towards 1 by one day's worth of volume; for the rest of today, today's complete hours so
  far against the shape, shrunk towards the recent level by a quarter of the day's expected volume.

forecast = shape x level. The naive baseline the bench compares with is the same weekday and hour one week
earlier. Pure functions; history is a mapping of (local date, local hour) to the hour's actuals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from schemas.catalogue import Store
from schemas.models import HourlyForecast

WEEKS = 6
"""Same-weekday days the shape is taken from."""
LEVEL_DAYS = 7
"""Recent days the level is measured over."""
TODAY_PRIOR = 0.25
"""Weight of the recent level against today's hours so far, as a share of the day's expected volume."""
METHOD = f"weekday-hour trimmed mean of {WEEKS} weeks x recent level"


class Actual(NamedTuple):
    visitors: float
    sales: float


History = Mapping[tuple[date, int], Actual]
"""(store-local date, local hour 0-23) -> actuals of that hour; an absent hour of a day with data counts as 0."""


@dataclass(frozen=True)
class HourForecast:
    local_date: date
    hour: int
    horizon: int
    """Hours from the issue time to the start of the hour (1 = the next hour)."""
    visitors: float
    sales: float


def days_with_data(history: History) -> set[date]:
    return {day for day, _ in history}


def shape(history: History, day: date, weeks: int = WEEKS, known: set[date] | None = None) -> dict[int, Actual]:
    """Per local hour, the trimmed mean over the last ``weeks`` same weekdays before ``day`` that had data."""
    known = days_with_data(history) if known is None else known
    past: list[date] = []
    candidate = day - timedelta(days=7)
    for _ in range(weeks * 3):  # look back past closed or missing weeks, not forever
        if candidate in known:
            past.append(candidate)
            if len(past) == weeks:
                break
        candidate -= timedelta(days=7)
    if not past:
        return {}
    out = {}
    for hour in sorted({h for d in past for h in range(24) if (d, h) in history}):
        vs = sorted(history.get((d, hour), Actual(0.0, 0.0)).visitors for d in past)
        ss = sorted(history.get((d, hour), Actual(0.0, 0.0)).sales for d in past)
        out[hour] = Actual(_trimmed_mean(vs), _trimmed_mean(ss))
    return out


def _trimmed_mean(values: list[float]) -> float:
    kept = values[1:-1] if len(values) >= 4 else values
    return sum(kept) / len(kept)


def _shrunk(actual: float, expected: float, prior: float, weight: float) -> float:
    if expected + weight <= 0:
        return prior
    return (actual + prior * weight) / (expected + weight)


def recent_level(history: History, day: date, known: set[date] | None = None) -> Actual:
    """How the last LEVEL_DAYS days with data before ``day`` ran against their own shapes (1 = as usual)."""
    known = days_with_data(history) if known is None else known
    actual_v = expected_v = actual_s = expected_s = 0.0
    days = 0
    d = day - timedelta(days=1)
    for _ in range(LEVEL_DAYS * 2):
        if d in known:
            expected = shape(history, d, known=known)
            if expected:
                days += 1
                for hour, e in expected.items():
                    a = history.get((d, hour), Actual(0.0, 0.0))
                    actual_v += a.visitors
                    actual_s += a.sales
                    expected_v += e.visitors
                    expected_s += e.sales
            if days == LEVEL_DAYS:
                break
        d -= timedelta(days=1)
    if not days:
        return Actual(1.0, 1.0)
    per_day_v, per_day_s = expected_v / days, expected_s / days
    return Actual(_shrunk(actual_v, expected_v, 1.0, per_day_v), _shrunk(actual_s, expected_s, 1.0, per_day_s))


def forecast(history: History, now: datetime) -> list[HourForecast]:
    """Forecasts for the hours of ``now``'s local date that start after ``now``, and all hours of the next day.

    ``now`` is the store-local issue time (naive or aware in the store's zone). Hours without a shape (the store
    was closed at that hour on every recent same weekday) are left out.
    """
    known = days_with_data(history)
    today = now.date()
    level = recent_level(history, today, known)
    out: list[HourForecast] = []
    today_shape = shape(history, today, known=known)
    done = [h for h in today_shape if h < now.hour]
    day_total = Actual(sum(e.visitors for e in today_shape.values()), sum(e.sales for e in today_shape.values()))
    if done:
        actual = [history.get((today, h), Actual(0.0, 0.0)) for h in done]
        today_level = Actual(
            _shrunk(sum(a.visitors for a in actual), sum(today_shape[h].visitors for h in done), level.visitors,
                    TODAY_PRIOR * day_total.visitors),
            _shrunk(sum(a.sales for a in actual), sum(today_shape[h].sales for h in done), level.sales,
                    TODAY_PRIOR * day_total.sales),
        )  # fmt: skip
    else:
        today_level = level
    issued = now.replace(tzinfo=None)
    for day, day_shape, lv in ((today, today_shape, today_level), (today + timedelta(days=1), None, level)):
        if day_shape is None:
            day_shape = shape(history, day, known=known)
        for hour in sorted(day_shape):
            start = datetime.combine(day, datetime.min.time()) + timedelta(hours=hour)
            if start <= issued:
                continue
            e = day_shape[hour]
            horizon = math.ceil((start - issued).total_seconds() / 3600)
            out.append(HourForecast(day, hour, horizon, e.visitors * lv.visitors, e.sales * lv.sales))
    return out


def naive(history: History, day: date, hour: int, known: set[date] | None = None) -> Actual | None:
    """The baseline: the same weekday and hour one week earlier (None when that day has no data)."""
    last_week = day - timedelta(days=7)
    if last_week not in (days_with_data(history) if known is None else known):
        return None
    return history.get((last_week, hour), Actual(0.0, 0.0))


def records(store: Store, forecasts: list[HourForecast], issued_at: datetime) -> list[HourlyForecast]:
    """The forecasts as ``forecast.hourly`` records (sales rounded to whole minor units)."""
    out = []
    for f in forecasts:
        local = datetime.combine(f.local_date, datetime.min.time(), store.tz) + timedelta(hours=f.hour)
        local = local.astimezone(store.tz)  # the wall-clock hour, also across a DST change
        out.append(
            HourlyForecast(
                store_id=store.id, tenant_id=store.tenant_id, mall_id=store.mall_id, hour_start=local,
                local_hour=local.isoformat(), timezone=store.timezone, currency=store.currency, issued_at=issued_at,
                horizon_hours=f.horizon, visitors=round(f.visitors, 2), net_revenue=round(f.sales), method=METHOD,
            )
        )  # fmt: skip
    return out
