"""Alert rules (pure functions): sales and traffic drops, silent feeds and cameras (UNDERREPORTING, judged
over days, is streams/underreporting.py).

Each rule returns a :class:`Finding` or None; :func:`reconcile` turns findings into Alert records so that an
alert fires once per store, hour and kind, and a later evaluation that clears it emits RESOLVED. Thresholds
are in :class:`AlertConfig`; the defaults ask for both a large relative drop and a drop that is improbable
under counting noise, so ordinary hour-to-hour variation does not fire.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.baselines import Baseline

_NAMESPACE = uuid.UUID("6f1c3a52-4d7e-4c1b-9a56-1d2e3f405a61")

SALES_DROP = "SALES_DROP"
TRAFFIC_DROP = "TRAFFIC_DROP"
UNDERREPORTING = "UNDERREPORTING"
FEED_SILENT = "FEED_SILENT"
CAMERA_SILENT = "CAMERA_SILENT"


@dataclass(frozen=True)
class AlertConfig:
    sales_drop_ratio: float = 0.5
    """SALES_DROP when net revenue is at most this share of the expected revenue..."""
    footfall_margin: float = 0.25
    """...and the visitors' ratio to their baseline is at least the revenue ratio plus this margin."""
    count_overdispersion: float = 1.0
    """Variance of hourly SALE counts relative to a Poisson count (the day-to-day swing of conversion)."""
    sales_drop_p: float = 1e-4
    """...or the SALE count is this improbable next to the baseline hours' (:func:`count_drop_tail`)."""
    traffic_drop_ratio: float = 0.4
    """TRAFFIC_DROP when visitors are at most this share of the expected visitors."""
    traffic_min_complete: float = 0.9
    """TRAFFIC_DROP is judged only on hours where every entrance camera sent frames in at least this share of
    the open minutes; below it the finding is a symptom of the camera gap and is suppressed (not paged)."""
    min_z: float = 3.5
    """Both drops must also be this many standard deviations below expectation under counting noise."""
    overdispersion: float = 2.0
    """Variance of visitor counts and of revenue (in tickets) relative to a Poisson count."""
    pooled_slack: float = 1.5
    """Two hours in a row each at most this multiple of a drop's ratio are also judged together (their sums)."""
    critical_ratio: float = 0.2
    """Severity CRITICAL at or below this ratio, else WARNING."""
    early_fraction: float = 0.5
    """Fire SALES_DROP during the hour once this share of it has passed and the projection is below."""
    feed_silent_minutes: float = 20.0
    feed_silent_expected_tickets: float = 12.0
    """FEED_SILENT when the visitors since the last ticket would have made this many sales: a Poisson gap that
    long has probability e^-12 (6e-6), so a busy store (200 gaps a day) fires about once in 800 days."""
    feed_silent_dwell_minutes: int = 10
    """Visitors count towards FEED_SILENT only this long after they entered (they shop before they pay)."""
    default_conversion: float = 0.15
    """Conversion assumed for FEED_SILENT before the store has history."""
    camera_silent_minutes: float = 15.0
    camera_silent_min_tickets: int = 5
    """CAMERA_SILENT when a camera sent no frame for the time while the store rang this many tickets."""


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    observed: float | None
    expected: float | None
    message: str
    details: dict[str, str] = field(default_factory=dict)


def alert_id(kind: str, store_id: str, hour_start_ms: int) -> str:
    """Deterministic id: the same kind, store and hour always give the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}|{store_id}|{hour_start_ms}"))


def _severity(ratio: float, cfg: AlertConfig) -> str:
    return "CRITICAL" if ratio <= cfg.critical_ratio else "WARNING"


def sales_drop(
    net: float,
    visitors: float,
    base: Baseline,
    cfg: AlertConfig,
    fraction: float = 1.0,
    transactions: int | None = None,
) -> Finding | None:
    """Revenue far below the baseline (scaled to ``fraction`` of the hour) while footfall held up.

    Improbable under noise means either the revenue is ``min_z`` standard deviations below (compound
    Poisson with ``overdispersion``) or the SALE count is below the baseline hours' with a conditional tail
    (:func:`count_drop_tail`) under ``sales_drop_p``.
    """
    if base.net is None or base.avg_ticket is None or base.avg_ticket <= 0:
        return None
    # revenue_per_visitor baselines already scale with this hour's visitors so far.
    scale = 1.0 if base.method == "revenue_per_visitor" else fraction
    visitor_ratio: float | None = None
    if base.method != "revenue_per_visitor" and base.visitors:
        visitor_ratio = visitors / (base.visitors * fraction)
        # Sales are expected of the visitors who came: with fewer of them than usual, fewer sales are a
        # traffic matter (a clean simulated café hour at 59 % of its visitors and 40 % of its sales paged, and
        # the hour after a traffic drop paged as a sales drop). The visitor ratio is noisy itself (variance
        # ``overdispersion`` x the count): the expectation is scaled by its upper one-sigma value.
        noise = math.sqrt(cfg.overdispersion / (base.visitors * fraction))
        scale *= min(visitor_ratio + noise, 1.0)
    expected = base.net * scale
    if expected <= 0:
        return None
    ratio = net / expected
    if ratio > cfg.sales_drop_ratio:
        return None
    sd = math.sqrt(cfg.overdispersion * expected * base.avg_ticket)
    z = (expected - net) / sd if sd else 0.0
    tail = 1.0
    if transactions is not None and base.transactions:
        tail = count_drop_tail(transactions, base.transactions * scale, base.samples, cfg.count_overdispersion)
    if z < cfg.min_z and tail > cfg.sales_drop_p:
        return None
    if visitor_ratio is not None and visitor_ratio < ratio + cfg.footfall_margin:
        return None
    details = {
        "baseline": base.method,
        "samples": str(base.samples),
        "z": f"{z:.1f}",
        "revenue_ratio": f"{ratio:.2f}",
    }
    if tail < 1.0:
        details["transactions_tail_p"] = f"{tail:.1e}"
    if visitor_ratio is not None:
        details["visitor_ratio"] = f"{visitor_ratio:.2f}"
    if fraction < 1.0:
        details["projected"] = "true"
        details["hour_fraction"] = f"{fraction:.2f}"
    what = "projected net revenue" if fraction < 1.0 else "net revenue"
    return Finding(
        SALES_DROP,
        _severity(ratio, cfg),
        float(net),
        float(expected),
        f"{what} {net:.0f} is {ratio:.0%} of the expected {expected:.0f} while footfall held up",
        details,
    )


def traffic_drop(visitors: float, base: Baseline, cfg: AlertConfig) -> Finding | None:
    """Footfall of a closed hour far below the baseline visitors."""
    if base.method != "same_weekday" or not base.visitors or base.visitors <= 0:
        return None  # footfall differs by weekday: only same-weekday history is a traffic baseline
    ratio = visitors / base.visitors
    z = (base.visitors - visitors) / math.sqrt(cfg.overdispersion * base.visitors)
    if ratio > cfg.traffic_drop_ratio or z < cfg.min_z:
        return None
    return Finding(
        TRAFFIC_DROP,
        _severity(ratio, cfg),
        float(visitors),
        float(base.visitors),
        f"{visitors:.0f} visitors is {ratio:.0%} of the expected {base.visitors:.0f}",
        {"baseline": base.method, "samples": str(base.samples), "z": f"{z:.1f}"},
    )


def pooled(bases: Sequence[Baseline]) -> Baseline:
    """The baseline of consecutive hours judged together: expected revenue, visitors and transactions summed,
    the average ticket weighted by expected transactions, and the fewest samples of any hour."""
    first = bases[0]
    net = [b.net for b in bases]
    visitors = [b.visitors for b in bases]
    tx = [b.transactions for b in bases]
    tickets = [(b.avg_ticket, b.transactions or 0.0) for b in bases if b.avg_ticket]
    weight = sum(w for _, w in tickets)
    avg = sum(a * w for a, w in tickets) / weight if weight else (tickets[0][0] if tickets else None)
    return Baseline(
        first.method if all(b.method == first.method for b in bases) else "pooled",
        sum(n for n in net if n is not None) if all(n is not None for n in net) else None,
        sum(v for v in visitors if v is not None) if all(v is not None for v in visitors) else None,
        avg,
        min(b.samples for b in bases),
        sum(t for t in tx if t is not None) if all(t is not None for t in tx) else None,
    )


def low(kind: str, observed: float, base: Baseline, cfg: AlertConfig) -> bool:
    """An hour within ``pooled_slack`` times the ``kind``'s drop ratio: two such hours in a row are judged on their
    sums (:func:`pooled`), against the same ratio and improbability, so the evidence of a smaller store adds up."""
    if kind == TRAFFIC_DROP:
        expected = base.visitors if base.method == "same_weekday" else None
        ratio = cfg.traffic_drop_ratio
    else:
        expected, ratio = base.net, cfg.sales_drop_ratio
    return bool(expected) and observed <= min(ratio * cfg.pooled_slack, 1.0) * (expected or 0.0)


def feed_silent(silent_ms: int, visitors_since: int, conversion: float, cfg: AlertConfig) -> Finding | None:
    """No ticket for ``silent_ms`` while ``visitors_since`` came in: improbable with a working till."""
    expected = visitors_since * conversion
    if silent_ms < cfg.feed_silent_minutes * 60_000 or expected < cfg.feed_silent_expected_tickets:
        return None
    return Finding(
        FEED_SILENT,
        "CRITICAL",
        0.0,
        expected,
        f"no tickets for {silent_ms / 60_000:.0f} min while cameras counted {visitors_since} visitors",
        {"silent_minutes": f"{silent_ms / 60_000:.0f}", "visitors": str(visitors_since)},
    )


def camera_silent(camera_id: str, silent_ms: int, tickets_since: int, cfg: AlertConfig) -> Finding | None:
    """A camera sent no frame for ``silent_ms`` while the store kept ringing tickets."""
    if silent_ms < cfg.camera_silent_minutes * 60_000 or tickets_since < cfg.camera_silent_min_tickets:
        return None
    return Finding(
        CAMERA_SILENT,
        "WARNING",
        0.0,
        None,
        f"camera {camera_id} sent no frames for {silent_ms / 60_000:.0f} min while {tickets_since} tickets came in",
        {"camera_id": camera_id, "silent_minutes": f"{silent_ms / 60_000:.0f}", "tickets": str(tickets_since)},
    )


def count_drop_tail(observed: int, expected: float, samples: int, overdispersion: float) -> float:
    """How improbable ``observed`` SALE transactions are next to a baseline of ``expected`` per hour taken
    from ``samples`` past hours: the conditional test of two Poisson rates (given the total, today's share
    is binomial with p = 1 / (samples + 1)), on counts divided by ``overdispersion`` (quasi-Poisson).

    The baseline is itself a noisy estimate (a median of 2 to 4 hours) and hourly counts vary more than a
    Poisson count: treating it as exact fired on clean simulated estates about once per 1,500 store-hours.
    """
    phi = max(overdispersion, 1.0)
    k = math.floor(max(observed, 0) / phi + 0.5)
    n = math.floor((max(observed, 0) + expected * max(samples, 1)) / phi + 0.5)
    return binomial_cdf(k, n, 1.0 / (max(samples, 1) + 1))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for a binomial count of ``n`` trials with success probability ``p``."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_term = n * math.log1p(-p)
    total = math.exp(log_term)
    for i in range(1, k + 1):
        log_term += math.log((n - i + 1) / i) + math.log(p) - math.log1p(-p)
        total += math.exp(log_term)
    return min(total, 1.0)


def poisson_cdf(k: int, lam: float) -> float:
    """P(X <= k) for a Poisson count with mean ``lam``."""
    if k < 0:
        return 0.0
    term = math.exp(-lam)
    total = term
    for i in range(1, k + 1):
        term *= lam / i
        total += term
    return min(total, 1.0)


def reconcile(
    states: dict[str, str],
    *,
    store_id: str,
    hour_start_ms: int,
    evaluated: Iterable[str],
    findings: Iterable[Finding],
    fired_at_ms: int,
    tenant_id: str | None = None,
    mall_id: str | None = None,
) -> list[dict[str, Any]]:
    """Alert records to emit for one store-hour, updating ``states`` (alert_id -> FIRING/RESOLVED) in place.

    A finding whose alert is not FIRING fires; a kind in ``evaluated`` with no finding resolves a FIRING alert.
    """
    found = {f.kind: f for f in findings}
    out: list[dict[str, Any]] = []
    for kind in sorted(set(evaluated) | set(found)):
        aid = alert_id(kind, store_id, hour_start_ms)
        finding = found.get(kind)
        current = states.get(aid)
        if finding is not None and current != "FIRING":
            states[aid] = "FIRING"
            out.append(_record(aid, finding, "FIRING", store_id, hour_start_ms, fired_at_ms, tenant_id, mall_id))
        elif finding is None and current == "FIRING":
            states[aid] = "RESOLVED"
            cleared = Finding(kind, "INFO", None, None, f"{kind} cleared by a later revision of the hour")
            out.append(_record(aid, cleared, "RESOLVED", store_id, hour_start_ms, fired_at_ms, tenant_id, mall_id))
    return out


def fire(
    states: dict[str, str],
    finding: Finding,
    *,
    store_id: str,
    hour_start_ms: int,
    fired_at_ms: int,
    tenant_id: str | None = None,
    mall_id: str | None = None,
) -> list[dict[str, Any]]:
    """The alert record of ``finding`` for its store-hour if its alert is not FIRING yet (then it is), else none:
    :func:`reconcile` of one finding, resolving nothing."""
    return reconcile(
        states,
        store_id=store_id,
        hour_start_ms=hour_start_ms,
        evaluated=[],
        findings=[finding],
        fired_at_ms=fired_at_ms,
        tenant_id=tenant_id,
        mall_id=mall_id,
    )


def _record(
    aid: str,
    f: Finding,
    state: str,
    store_id: str,
    hour_start_ms: int,
    fired_at_ms: int,
    tenant_id: str | None,
    mall_id: str | None,
) -> dict[str, Any]:
    return {
        "alert_id": aid,
        "kind": f.kind,
        "state": state,
        "severity": f.severity,
        "store_id": store_id,
        "tenant_id": tenant_id,
        "mall_id": mall_id,
        "hour_start": hour_start_ms,
        "observed": f.observed,
        "expected": f.expected,
        "message": f.message,
        "fired_at": fired_at_ms,
        "details": dict(f.details),
    }
