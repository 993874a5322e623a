"""UNDERREPORTING: a tenant that declares less than it sells, judged over days against its own history and
its peers in the same mall (pure functions with explicit dates, no I/O).

Underreporting happens over days and weeks, not in one hour: a 30 % shortfall in a 15-ticket hour is within
the hour's noise, but ten such days are not. The store stage sends the counts of every usable final
store-hour (see :func:`hour_counts`); the peer stage (streams/peers.py) sums them per store and local day
and runs :func:`evaluate` over the retained days of a mall.

For each store, day ``d`` and metric ``m`` (a ratio of daily sums, :data:`METRICS`; conversion and sales per
visitor per visitor of the store's weekday-hour profile, :func:`series`), on a log scale:

- **peer factor** ``pf(d)``: the median, over the store's peers (same mall and category; the rest of the
  mall when the category has no other tenant) that are not themselves alarmed on ``m``, of
  ``log m_peer(d) − median of log m_peer over the peer's clean reference days``, shrunk towards 0 by its
  standard error (``pf · pf² / (pf² + 4 se²)``, from the peers' day-to-day scatter). A holiday or a strike
  moves every tenant: it is in ``pf`` and cancels out. With exactly two peers the store's own shift joins
  the median (a median of two is their mean, and one peer's own departure would move it).
- **normalised value** ``y(d) = log m(d) − pf(d)``; **expected** ``ref(d)`` = median of ``y`` over the
  store's clean days (not alarmed on ``m``) of the last ``ref_days`` (28) days, at least ``min_ref_days``
  (7) of them; **scale** ``σ(d)`` = max(1.4826 · MAD of those ``y``, the sampling sd of today's rate and,
  for counts, at the expected rate, ``min_sigma``).
- **score** ``z(d) = direction · (y(d) − ref(d)) / σ(d)`` (direction −1 for metrics where low hides sales:
  conversion, sales per visitor, cash share; +1 where high does: void, refund, discount and employee-sale
  rates; the discount rate is the share of sales with a discount, a count).
- **CUSUM** ``S(d) = max(0, S(d−1) + min(z(d), z_cap) − k)``; the metric **alarms** when ``S ≥ h`` and the mean
  departure over the run (the days since ``S`` last was 0) is at least ``min_departure`` (15 %). The run's
  first day is the *since* of the alert. An alarmed metric **resolves** after ``resolve_days`` (3) days
  whose mean score (each day counted at least -1) is under 1; its CUSUM restarts at 0. While a metric is
  alarmed, its reference stays the clean days before its run.

A store's **episode** runs from the first day a metric alarms to the day its last alarmed metric resolves;
it is one alert (one page) listing every metric that departed, by how much, since when, against which
peers, with the daily figures. With ``z_cap = 4`` one extreme day cannot fire alone: it takes three days
of strong departure, or more of a weaker one. False-alarm rate: with ``k = 0.5`` and ``h = 8`` the
in-control average run length of one metric of one store is about 19,000 days for normal scores
(Siegmund's approximation); with seven metrics, about one false episode per 7 store-years. Measured on
simulated clean estates: docs/streams.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any, NotRequired, TypedDict

from streams.hours import local_weekday_hour


class DayCounts(TypedDict):
    """Sums over a store's usable hours of one local day (also the per-hour message counts)."""

    v: int
    """visitors (entrance entries)"""
    tx: int
    """SALE transactions less VOIDs"""
    net: int
    cash: int
    pay: int
    """payments of sales (cash share denominator)"""
    tk: int
    """in-store tickets of every kind"""
    vd: int
    rf: int
    disc: int
    gross: int
    dk: int
    """sales with a discount (less voided ones)"""
    emp: int
    vw: NotRequired[int]
    """visitors weighted by the conversion of their weekday-hour in the store's own profile (:func:`series`)"""


COUNT_KEYS = ("v", "tx", "net", "cash", "pay", "tk", "vd", "rf", "disc", "gross", "dk", "emp")


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    direction: int
    """-1: a low value hides sales; +1: a high one does."""
    numerator: str
    denominator: tuple[str, ...]
    counted: bool
    """True when the numerator is a count (binomial sampling sd), False for money shares."""
    profiled: bool = False
    """Per visitor of the store's weekday-hour profile (``vw``) when the day has one: visitors coming at other
    hours or weekdays than usual (where conversion differs) do not move it."""


METRICS: tuple[Metric, ...] = (
    Metric("conversion", "conversion", -1, "tx", ("v",), True, profiled=True),
    Metric("sales_per_visitor", "sales per visitor", -1, "net", ("v",), False, profiled=True),
    Metric("cash_share", "cash share", -1, "cash", ("pay",), False),
    Metric("void_rate", "void rate", 1, "vd", ("tk",), True),
    Metric("refund_rate", "refund rate", 1, "rf", ("tx", "rf"), True),
    Metric("discount_rate", "share of sales discounted", 1, "dk", ("tx",), True),
    Metric("employee_rate", "employee-sale rate", 1, "emp", ("tk",), True),
)


@dataclass(frozen=True)
class UnderreportingConfig:
    k: float = 0.5
    """CUSUM allowance, in standard deviations per day."""
    h: float = 8.0
    """CUSUM decision threshold."""
    z_cap: float = 4.0
    """A day adds at most this score (less ``k``): one extreme day cannot fire alone; it takes three days
    of strong departure (or more of a weaker one)."""
    min_departure: float = 0.15
    """The mean ratio of observed to expected over the run must depart by at least this share."""
    ref_days: int = 28
    min_ref_days: int = 7
    min_sigma: float = 0.03
    """Floor of the daily scale on the log scale (3 %)."""
    resolve_days: int = 3
    min_visitors: int = 100
    """A day is judged only with this many visitors in its usable hours..."""
    min_tickets: int = 20
    """...and this many in-store tickets."""
    keep_days: int = 56
    """Days of counts the peer stage keeps per store (reference and runs)."""
    evidence_days: int = 14
    """Daily figures listed in the alert (the last days of the run)."""
    profile_days: int = 28
    """Days of usable hours the weekday-hour conversion profile is made of (the days before the judged one)..."""
    profile_prior: float = 200.0
    """...each slot's conversion shrunk towards the store's with this many visitors' weight."""


@dataclass
class DayFigure:
    day: str
    observed: float
    expected: float
    peer_ratio: float
    z: float
    cusum: float


@dataclass
class Departure:
    """One metric's alarmed run within an episode."""

    metric: Metric
    since: str
    alarmed: str
    resolved: str | None = None
    days: list[DayFigure] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Mean observed / expected over the run's days up to the alarm (and after, while alarmed)."""
        return math.exp(sum(math.log(d.observed / d.expected) for d in self.days) / len(self.days))


@dataclass
class Episode:
    store_id: str
    since: str
    alarmed: str
    resolved: str | None
    departures: list[Departure]
    peers: list[str]


@dataclass
class _Track:
    cusum: float = 0.0
    run_start: str | None = None
    run: list[DayFigure] = field(default_factory=list)
    alarm: Departure | None = None
    calm: int = 0
    recent: list[float] = field(default_factory=list)
    """Scores of the last days while alarmed (each at least -1)."""
    clean: list[tuple[str, float, float]] = field(default_factory=list)
    """(day, raw log value, peer-normalised log value) of clean days, oldest first."""


def hour_counts(acc: Mapping[str, Any]) -> DayCounts:
    """The counts of a store-hour accumulator (streams.accumulators) that the daily sums are made of."""
    return {
        "v": int(acc["v"]),
        "tx": int(acc["tx"]),
        "net": int(acc["net"]),
        "cash": int(acc["cash"]),
        "pay": int(acc["pay"]),
        "tk": int(acc["tk"]),
        "vd": int(acc["vd"]),
        "rf": int(acc["rf"]),
        "disc": int(acc["disc"]),
        "gross": int(acc["gross"]),
        "dk": int(acc.get("dk", 0)),
        "emp": int(acc["emp"]),
    }


def add_counts(total: DayCounts | None, part: Mapping[str, int]) -> DayCounts:
    out: DayCounts = dict.fromkeys(COUNT_KEYS, 0) if total is None else dict(total)  # type: ignore[assignment]
    for key in COUNT_KEYS:
        out[key] += int(part.get(key, 0))  # type: ignore[literal-required]
    return out


def _rate(day: Mapping[str, int], metric: Metric) -> tuple[float, float] | None:
    """(value, sampling sd of its log) of a metric on a day, or None when undefined or zero."""
    num = day[metric.numerator]
    den = _denominator(day, metric)
    if den <= 0:
        return None
    value = (num + 0.5) / (den + 1.0) if metric.counted else num / den
    if value <= 0:
        return None
    if metric.counted:  # binomial: var(log p) = 1/k - 1/n
        sd = math.sqrt(max(1.0 / (num + 0.5) - 1.0 / (den + 1.0), 0.0))
    elif metric.name == "cash_share":  # cash tickets among sales, amounts with coefficient of variation ~1
        p = min(value, 0.99)
        sd = math.sqrt(2.0 * (1.0 - p) / (max(day["tx"], 1) * p))
    else:  # a sum of ticket amounts (compound Poisson, amounts' coefficient of variation ~1): var = 2/tickets
        sd = math.sqrt(2.0 / max(day["tx"], 1))
    return value, sd


def _expected_sd(day: Mapping[str, int], metric: Metric, expected: float) -> float:
    """Sampling sd of the log of a counted rate at its *expected* value (0 for money shares): a rare event
    (voids at 1 % of 150 tickets) counted 3 times today is not a 6-fold rise measured to ±50 %."""
    if not metric.counted:
        return 0.0
    den = _denominator(day, metric)
    return math.sqrt(max(1.0 / (den * expected + 0.5) - 1.0 / (den + 1.0), 0.0)) if den > 0 else 0.0


def _denominator(day: Mapping[str, int], metric: Metric) -> int:
    if metric.profiled and day.get("vw"):
        return int(day["vw"])
    return sum(day[k] for k in metric.denominator)


def _usable(day: Mapping[str, int], cfg: UnderreportingConfig) -> bool:
    return day["v"] >= cfg.min_visitors and day["tk"] >= cfg.min_tickets


def peers_of(store_id: str, categories: Mapping[str, str | None]) -> list[str]:
    """Peers in the same mall: the same category, or every other tenant when the category has none."""
    same = sorted(s for s, c in categories.items() if s != store_id and c == categories[store_id])
    return same or sorted(s for s in categories if s != store_id)


def evaluate(
    days: Mapping[str, Mapping[str, Mapping[str, int]]],
    categories: Mapping[str, str | None],
    cfg: UnderreportingConfig,
) -> list[Episode]:
    """Episodes of every store of one mall (or one street store) over its complete days.

    ``days``: store id -> local date (ISO) -> :class:`DayCounts`; ``categories``: store id -> category of
    every store of the group. Deterministic: the same days give the same episodes.
    """
    dates = sorted({d for per_store in days.values() for d in per_store})
    stores = sorted(days)
    tracks = {(s, m.name): _Track() for s in stores for m in METRICS}
    peer_lists = {s: [p for p in peers_of(s, categories) if p in days] for s in stores}
    episodes: dict[str, Episode] = {}
    finished: list[Episode] = []
    for day in dates:
        cutoff = _shift(day, -cfg.ref_days)
        for metric in METRICS:
            today: dict[str, tuple[float, float]] = {}
            raw_ref: dict[str, float] = {}
            raw_sd: dict[str, float] = {}
            for s in stores:
                counts = days[s].get(day)
                rate = _rate(counts, metric) if counts is not None and _usable(counts, cfg) else None
                track = tracks[(s, metric.name)]
                if track.alarm is None:  # an alarmed metric keeps the reference of the days before its run
                    track.clean = [c for c in track.clean if c[0] >= cutoff]
                if rate is not None:
                    today[s] = (math.log(rate[0]), rate[1])
                if len(track.clean) >= cfg.min_ref_days:
                    raw_ref[s] = median(c[1] for c in track.clean)
                    raw_sd[s] = 1.4826 * median(abs(c[1] - raw_ref[s]) for c in track.clean)
            for s in stores:
                if s not in today:
                    continue
                track = tracks[(s, metric.name)]
                used = [
                    p for p in peer_lists[s] if p in today and p in raw_ref and tracks[(p, metric.name)].alarm is None
                ]
                if len(used) == 2 and s in raw_ref:
                    used.append(s)  # a median of two is their mean: one peer's own departure would move it
                pf = _peer_factor([today[p][0] - raw_ref[p] for p in used], [max(raw_sd[p], today[p][1]) for p in used])
                y = today[s][0] - pf
                if s not in raw_ref:
                    track.clean.append((day, today[s][0], y))
                    continue
                ys = [c[2] for c in track.clean]
                ref = median(ys)
                sigma = max(
                    1.4826 * median(abs(v - ref) for v in ys),
                    today[s][1],
                    _expected_sd(days[s][day], metric, math.exp(ref + pf)),
                    cfg.min_sigma,
                )
                z = metric.direction * (y - ref) / sigma
                figure = DayFigure(day, math.exp(today[s][0]), math.exp(ref + pf), math.exp(pf), z, 0.0)
                _step(track, figure, metric, day, y, today[s][0], cfg)
                if track.alarm is not None and track.alarm.alarmed == day and track.alarm.resolved is None:
                    ep = episodes.get(s)
                    if ep is None:
                        ep = episodes[s] = Episode(s, track.alarm.since, day, None, [], peer_lists[s])
                    ep.departures.append(track.alarm)
        for s in list(episodes):
            if all(tracks[(s, m.name)].alarm is None for m in METRICS):
                ep = episodes.pop(s)
                ep.resolved = day
                finished.append(ep)
    return sorted([*finished, *episodes.values()], key=lambda e: (e.store_id, e.alarmed))


def _peer_factor(shifts: Sequence[float], sds: Sequence[float]) -> float:
    """The peers' common shift today: their median, shrunk towards 0 by its own noise (pf · pf² / (pf² + 4 se²),
    se = 1.25 · rms sd / √n). A mall-wide change is many standard errors wide and passes whole; the scatter
    of a few peers with small daily counts does not become a factor applied to the store."""
    if not shifts:
        return 0.0
    pf = float(median(shifts))
    se2 = 1.25**2 * (sum(sd * sd for sd in sds) / len(sds)) / len(sds)
    return pf * pf * pf / (pf * pf + 4 * se2) if pf else 0.0


def _step(
    track: _Track, figure: DayFigure, metric: Metric, day: str, y: float, raw: float, cfg: UnderreportingConfig
) -> None:
    """Advance one store-metric by one day."""
    if track.alarm is not None:
        track.alarm.days.append(figure)
        # Calm: the mean score of the last ``resolve_days`` days (each counted at least -1, so one very low
        # day does not outweigh the others) is under 1. Day by day, a busy tenant's ordinary swing exceeds
        # its sampling noise now and then: requiring every day under 1 kept episodes open for weeks.
        track.recent = [*track.recent, max(figure.z, -1.0)][-cfg.resolve_days :]
        track.calm = len(track.recent)
        if track.calm >= cfg.resolve_days and sum(track.recent) / len(track.recent) < 1.0:
            track.alarm.resolved = day
            del track.alarm.days[-cfg.resolve_days :]  # the calm days are not part of the departure
            track.alarm = None
            track.cusum, track.run_start, track.run, track.calm, track.recent = 0.0, None, [], 0, []
        return
    track.cusum = max(0.0, track.cusum + min(figure.z, cfg.z_cap) - cfg.k)
    figure.cusum = track.cusum
    if track.cusum <= 0.0:
        track.run_start, track.run = None, []
        track.clean.append((day, raw, y))
        return
    if track.run_start is None:
        track.run_start = day
    track.run.append(figure)
    track.clean.append((day, raw, y))
    if track.cusum >= cfg.h:
        departure = Departure(metric, track.run_start, day, None, list(track.run))
        if (departure.ratio - 1.0) * metric.direction >= cfg.min_departure:
            # The run's days were not normal: take them out of the reference.
            run_days = {f.day for f in track.run}
            track.clean = [c for c in track.clean if c[0] not in run_days]
            track.alarm = departure
            track.calm, track.recent = 0, []


def _shift(day: str, days: int) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def describe(episode: Episode, cfg: UnderreportingConfig) -> tuple[str, float, float, dict[str, str]]:
    """(message, observed, expected, details) of an episode's alert; the headline is its largest departure."""
    main = max(episode.departures, key=lambda d: abs(math.log(d.ratio)))
    shown = main.days[-cfg.evidence_days :]
    observed = sum(d.observed for d in shown) / len(shown)
    expected = sum(d.expected for d in shown) / len(shown)
    peers = ", ".join(episode.peers) if episode.peers else "none (own history only)"
    since = episode.departures[0].since  # the first metric that alarmed (each metric's own since is listed)
    departed = "; ".join(
        f"{d.metric.label} {d.ratio - 1:+.0%} since {d.since}"
        for d in sorted(episode.departures, key=lambda d: d.since)
    )
    message = (
        f"{main.metric.label} at {main.ratio:.0%} of expected since {main.since} "
        f"({len(main.days)} days, peers: {peers}): {departed}"
    )
    details = {
        "metric": main.metric.name,
        "metrics": ",".join(sorted({d.metric.name for d in episode.departures})),
        "departure": f"{main.ratio - 1:+.3f}",
        "since": since,
        "alarmed_on": episode.alarmed,
        "peers": ",".join(episode.peers),
        "cusum_k": str(cfg.k),
        "cusum_h": str(cfg.h),
        "days": json.dumps(
            [
                {
                    "day": d.day,
                    "observed": round(d.observed, 5),
                    "expected": round(d.expected, 5),
                    "peer_factor": round(d.peer_ratio, 3),
                    "z": round(d.z, 2),
                }
                for d in shown
            ],
            separators=(",", ":"),
        ),
    }
    for d in episode.departures:
        details[f"{d.metric.name}_ratio"] = f"{d.ratio:.3f}"
        details[f"{d.metric.name}_since"] = d.since
    if episode.resolved:
        details["resolved_on"] = episode.resolved
    return message, observed, expected, details


def sum_days(hours: Mapping[str, Mapping[str, Any]]) -> DayCounts | None:
    """Daily sums of the usable hour messages of one store-day (``hour_start`` -> message)."""
    total: DayCounts | None = None
    for message in hours.values():
        if message.get("usable", True):
            total = add_counts(total, message["counts"])
    return total


Slot = tuple[int, int]
"""(local weekday 0=Monday, local hour of day)"""


def profile_weights(hours: Sequence[tuple[Slot, int, int]], prior: float) -> dict[Slot, float]:
    """Each weekday-hour's conversion relative to the store's, from (slot, visitors, transactions) of past
    usable hours: ``((tx_slot + prior · c) / (v_slot + prior)) / c`` with ``c`` the store's conversion over
    them (a slot seen little stays near 1). Empty without visitors or sales."""
    visitors = sum(v for _, v, _ in hours)
    sales = sum(tx for _, _, tx in hours)
    if visitors <= 0 or sales <= 0:
        return {}
    overall = sales / visitors
    v_slot: dict[Slot, int] = {}
    tx_slot: dict[Slot, int] = {}
    for slot, v, tx in hours:
        v_slot[slot] = v_slot.get(slot, 0) + v
        tx_slot[slot] = tx_slot.get(slot, 0) + tx
    return {slot: (tx_slot[slot] + prior * overall) / (v_slot[slot] + prior) / overall for slot in v_slot}


def profiled_visitors(hours: Sequence[tuple[Slot, int]], weights: Mapping[Slot, float]) -> int:
    """A day's visitors, each hour's weighted by its slot's relative conversion (1 for an unseen slot)."""
    return round(sum(v * weights.get(slot, 1.0) for slot, v in hours))


def series(
    store_days: Mapping[str, Mapping[str, Mapping[str, Any]]],
    complete: Sequence[str],
    timezone: str | None = None,
    cfg: UnderreportingConfig | None = None,
) -> dict[str, DayCounts]:
    """Daily sums of the ``complete`` days of one store (local date -> hours). With the store's ``timezone``,
    each day also gets ``vw``: its visitors weighted by the weekday-hour conversion profile of its usable hours
    over the ``profile_days`` before it (at least ``min_ref_days`` of them; :func:`profile_weights`)."""
    out: dict[str, DayCounts] = {}
    for day in complete:
        total = sum_days(store_days.get(day, {}))
        if total is not None:
            out[day] = total
    if timezone is None or cfg is None:
        return out
    slots: dict[str, list[tuple[Slot, int, int]]] = {}
    for day in out:
        slots[day] = [
            (local_weekday_hour(int(start), timezone), int(m["counts"]["v"]), int(m["counts"]["tx"]))
            for start, m in store_days[day].items()
            if m.get("usable", True)
        ]
    for day, total in out.items():
        first = _shift(day, -cfg.profile_days)
        past = [d for d in out if first <= d < day]
        if len(past) < cfg.min_ref_days:
            continue
        weights = profile_weights([h for d in past for h in slots[d]], cfg.profile_prior)
        if weights:
            total["vw"] = profiled_visitors([(slot, v) for slot, v, _ in slots[day]], weights)
    return out
