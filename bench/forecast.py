"""Benchmark: forecast error of analytics.forecast against the naive same-weekday baseline, on a simulated year.

Run: ``python -m bench.forecast [--days 364] [--stores wg-fashion,wg-volt,mum-bandra,nyc-soho] [--seed 7]``.
Simulates the stores' hourly visitors and sales (producers/simulator; Berlin, Kolkata and New York with its DST
changes), then issues forecasts every day at 06:00 and 13:00 store-local time from the history before that
moment, after a six-week warm-up. Each forecast hour is scored against what happened, and so is the naive
forecast (same weekday and hour a week earlier) for the same hours. Printed per horizon group and overall:

- MAPE over open hours with at least 5 visitors (visitors) or a quarter of the store's mean hourly sales (sales);
- WAPE (sum of absolute errors / sum of actuals) and bias (sum of errors / sum of actuals).

The forecast must beat the baseline (lower MAPE); the run exits 1 when it does not.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from analytics.forecast import Actual, forecast, naive
from producers.simulator import SimulationConfig
from producers.simulator.simulation import plan_day, store_effects
from producers.simulator.truth import hourly_truth
from schemas.catalogue import load_catalogue

CATALOGUE = Path(__file__).resolve().parent.parent / "deploy" / "catalogue" / "demo-estate.yaml"
GROUPS = ((1, 3), (4, 8), (9, 16), (17, 24), (25, 48))
WARM_UP_DAYS = 42
MIN_VISITORS = 5
SALES_FLOOR = 0.25
"""Sales MAPE skips hours that sold under a quarter of the store's mean open hour: one cheap ticket against an
expected few would otherwise dominate it (WAPE and bias count every hour)."""


@dataclass
class Score:
    ape: list[float] = field(default_factory=list)
    abs_err: float = 0.0
    err: float = 0.0
    actual: float = 0.0

    def add(self, predicted: float, actual: float, scored: bool) -> None:
        self.abs_err += abs(predicted - actual)
        self.err += predicted - actual
        self.actual += actual
        if scored:
            self.ape.append(abs(predicted - actual) / actual)

    def line(self) -> str:
        mape = 100 * sum(self.ape) / len(self.ape) if self.ape else float("nan")
        wape = 100 * self.abs_err / self.actual if self.actual else float("nan")
        bias = 100 * self.err / self.actual if self.actual else float("nan")
        return f"MAPE {mape:5.1f}%  WAPE {wape:5.1f}%  bias {bias:+5.1f}%"

    @property
    def mape(self) -> float:
        return sum(self.ape) / len(self.ape) if self.ape else float("nan")


def simulate_history(stores: list[str], start: date, days: int, seed: int) -> dict[str, dict[tuple[date, int], Actual]]:
    catalogue = load_catalogue(CATALOGUE)
    config = SimulationConfig(seed=seed, start=start, days=days)
    effects = store_effects(catalogue, config)
    out: dict[str, dict[tuple[date, int], Actual]] = {}
    for store_id in stores:
        store = catalogue.store(store_id)
        hist: dict[tuple[date, int], Actual] = {}
        for i in range(days):
            plan = plan_day(catalogue, store, start + timedelta(days=i), config, effects[store_id])
            if plan is None:
                continue
            for h in hourly_truth(plan):
                local = h["hour_start"].astimezone(store.tz)
                hist[(local.date(), local.hour)] = Actual(float(h["visitors"]), float(h["net_revenue"]))
        out[store_id] = hist
        print(f"  simulated {store_id}: {len(hist)} open hours", flush=True)
    return out


def evaluate(history: dict[tuple[date, int], Actual], start: date, days: int) -> dict[str, dict[str, Score]]:
    """Scores per (model, metric, horizon group) over every issue time after the warm-up."""
    scores: dict[str, dict[str, Score]] = {}
    known_all = {d for d, _ in history}
    open_sales = [a.sales for a in history.values() if a.visitors > 0]
    min_sales = SALES_FLOOR * sum(open_sales) / max(len(open_sales), 1)
    for i in range(WARM_UP_DAYS, days - 1):
        day = start + timedelta(days=i)
        for issue_hour in (6, 13):
            now = datetime.combine(day, datetime.min.time()) + timedelta(hours=issue_hour)
            past = {k: v for k, v in history.items() if k[0] < day or (k[0] == day and k[1] < issue_hour)}
            known = {d for d in known_all if d <= day}
            for f in forecast(past, now):
                if f.local_date not in known_all:
                    continue  # closed that day: nothing to score
                actual = history.get((f.local_date, f.hour), Actual(0.0, 0.0))
                base = naive(history, f.local_date, f.hour, known)
                if base is None:
                    continue
                group = next(f"{lo}-{hi}h" for lo, hi in GROUPS if lo <= f.horizon <= hi)
                for metric, predicted, baseline, value in (
                    ("visitors", f.visitors, base.visitors, actual.visitors),
                    ("sales", f.sales, base.sales, actual.sales),
                ):
                    scored = value >= (MIN_VISITORS if metric == "visitors" else min_sales)
                    for model, p in (("forecast", predicted), ("naive", baseline)):
                        for key in (f"{metric} {group}", f"{metric} all"):
                            scores.setdefault(model, {}).setdefault(key, Score()).add(p, value, scored)
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forecast", description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=364)
    parser.add_argument("--stores", default="wg-fashion,wg-volt,mum-bandra,nyc-soho")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2025-11-03")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    start = date.fromisoformat(args.start)
    t0 = time.perf_counter()
    histories = simulate_history(args.stores.split(","), start, args.days, args.seed)
    print(f"simulated {args.days} days in {time.perf_counter() - t0:.0f}s", flush=True)
    merged: dict[str, dict[str, Score]] = {}
    for store_id, history in histories.items():
        t1 = time.perf_counter()
        for model, by_key in evaluate(history, start, args.days).items():
            for key, score in by_key.items():
                m = merged.setdefault(model, {}).setdefault(key, Score())
                m.ape += score.ape
                m.abs_err += score.abs_err
                m.err += score.err
                m.actual += score.actual
        print(f"  evaluated {store_id} in {time.perf_counter() - t1:.0f}s", flush=True)
    keys = [f"{metric} {lo}-{hi}h" for metric in ("visitors", "sales") for lo, hi in GROUPS]
    keys += ["visitors all", "sales all"]
    print(f"\n{'metric horizon':<18} {'forecast':<42} {'naive same weekday':<42} MAPE ratio")
    beats = True
    for key in keys:
        f, n = merged["forecast"].get(key), merged["naive"].get(key)
        if f is None or n is None:
            continue
        ratio = f.mape / n.mape
        print(f"{key:<18} {f.line():<42} {n.line():<42} {ratio:.2f}")
        beats &= ratio < 1
    points = len(merged["forecast"]["visitors all"].ape)
    print(f"\n{points} scored store-hours (visitors), {len(histories)} stores, issues at 06:00 and 13:00 local")
    print("forecast beats the naive baseline on every horizon" if beats else "FORECAST DOES NOT BEAT THE BASELINE")
    return 0 if beats else 1


if __name__ == "__main__":
    sys.exit(main())
