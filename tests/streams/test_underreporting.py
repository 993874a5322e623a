"""UNDERREPORTING over days: the pure rule on explicit daily figures, then simulated estates of several
weeks (the producers' simulator, counted into store-hours with the engine's own counting) through the peer
stage: every injected underreporting found at its documented strength, nothing else fires, a mall-wide
change does not fire, and a clean estate raises nothing."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, cast

import pytest

from producers.simulator.simulation import SimulationConfig, plans
from schemas.catalogue import Catalogue, Store
from streams.accumulators import add_ticket, new_hour
from streams.engine import peer_group
from streams.hours import hour_start, local_day_hours, local_hour_iso
from streams.peers import PeerEngine
from streams.underreporting import (
    Episode,
    UnderreportingConfig,
    evaluate,
    hour_counts,
    peers_of,
    profile_weights,
    profiled_visitors,
    series,
)
from tests.support.events import demo

CFG = UnderreportingConfig()


def _day_counts(rng: random.Random, visitors: int = 1000, conv: float = 0.2, cash: float = 0.3) -> dict[str, int]:
    v = int(visitors * math.exp(rng.gauss(0, 0.08)))
    tx = int(v * conv * math.exp(rng.gauss(0, 0.05)))
    net = tx * 2500
    pay = net
    return {
        "v": v, "tx": tx, "net": net, "cash": int(pay * cash * math.exp(rng.gauss(0, 0.05))), "pay": pay,
        "tk": tx + 10, "vd": rng.randint(2, 6), "rf": rng.randint(2, 6), "disc": net // 20, "gross": net + net // 20,
        "dk": tx // 5, "emp": rng.randint(1, 4),
    }  # fmt: skip


def _series(days: int, seed: int, shrink: dict[str, tuple[int, int, float]] | None = None) -> dict[str, Any]:
    """Daily figures of three fashion tenants; ``shrink`` = store -> (from day, to day, declared share)."""
    rng = random.Random(seed)
    out: dict[str, dict[str, dict[str, int]]] = {"a": {}, "b": {}, "c": {}}
    for d in range(days):
        day = (date(2026, 1, 5) + timedelta(days=d)).isoformat()
        for store in out:
            counts = _day_counts(rng)
            first, last, kept = (shrink or {}).get(store, (days, days, 1.0))
            if first <= d < last:
                for key in ("tx", "net", "pay", "tk"):
                    counts[key] = int(counts[key] * kept)
                counts["cash"] = int(counts["cash"] * kept)
            out[store][day] = counts
    return out


CATS = {"a": "fashion", "b": "fashion", "c": "fashion"}


def test_a_shortfall_over_days_fires_once_with_since_peers_and_daily_figures() -> None:
    days = _series(50, 1, {"a": (30, 40, 0.7)})
    (episode,) = evaluate(days, CATS, CFG)
    assert episode.store_id == "a" and episode.peers == ["b", "c"]
    # Day 30 (2026-02-04) to day 39: the CUSUM run may start a few days early on noise.
    assert "2026-01-31" <= episode.departures[0].since <= "2026-02-05"
    assert episode.alarmed <= "2026-02-08"  # a few days of evidence, not ten
    assert episode.resolved is not None and "2026-02-15" <= episode.resolved <= "2026-02-20"  # back to normal
    names = {d.metric.name for d in episode.departures}
    assert "conversion" in names
    conv = next(d for d in episode.departures if d.metric.name == "conversion")
    assert 0.65 < conv.ratio < 0.75


def test_a_mall_wide_change_is_not_a_tenant_departure() -> None:
    days = _series(50, 2, {"a": (30, 40, 0.6), "b": (30, 40, 0.6), "c": (30, 40, 0.6)})
    assert evaluate(days, CATS, CFG) == []
    # Without peers, the same ten days are a departure from the store's own history.
    assert len(evaluate({"a": days["a"]}, {"a": "fashion"}, CFG)) == 1


def test_single_bad_days_and_clean_series_do_not_fire() -> None:
    days = _series(60, 3, {"a": (30, 31, 0.4), "b": (45, 46, 0.5)})  # one very bad day each
    assert evaluate(days, CATS, CFG) == []
    fired = sum(len(evaluate(_series(60, seed), CATS, CFG)) for seed in range(10, 20))
    assert fired == 0  # 10 x 3 stores x 60 days


def test_peers_are_the_category_or_else_the_mall() -> None:
    cats = {"a": "fashion", "b": "fashion", "g": "grocery", "v": "electronics"}
    assert peers_of("a", cats) == ["b"] and peers_of("g", cats) == ["a", "b", "v"]


# --- simulated estates through the peer stage ---------------------------------------------------------


def _acc_of(hours: dict[tuple[str, int], dict[str, Any]], store: Store, ms: int) -> dict[str, Any]:
    start = hour_start(ms, store.timezone)
    acc = hours.get((store.id, start))
    if acc is None:
        acc = hours[(store.id, start)] = new_hour(store.id, None, start, store.timezone)
        acc["seen_t"] = None
    return acc


def _messages(catalogue: Catalogue, config: SimulationConfig) -> list[tuple[str, dict[str, Any]]]:
    """(group, message) per store-hour of the simulation, as the engine sends them, in hour order: the
    simulator's visitors and tickets counted with the engine's own counting (streams.accumulators), without
    generating camera frames (weeks of frames would make the test slow)."""
    by_id = {s.id: s for s in catalogue.stores}
    hours: dict[tuple[str, int], dict[str, Any]] = {}
    for plan in plans(catalogue, config):
        for entry in plan.entry_ms.tolist():
            _acc_of(hours, plan.store, int(entry))["v"] += 1
        for draft in plan.tickets:
            f = draft.fields
            ticket = {
                "ticket_id": f["ticket_id"],
                "occurred_at": draft.occurred_ms,
                "channel": str(f["channel"]),
                "kind": str(f["kind"]),
                "currency": f["currency"],
                "net_amount": f["net_amount"],
                "gross_amount": f["gross_amount"],
                "discount_amount": f["discount_amount"],
                "lines": [{"quantity": line.quantity} for line in f["lines"]],  # type: ignore[attr-defined]
                "payments": [{"method": str(p.method), "amount": p.amount} for p in f["payments"]],  # type: ignore[attr-defined]
            }
            add_ticket(_acc_of(hours, plan.store, draft.occurred_ms), ticket)
    out = []
    for (store_id, start), acc in sorted(hours.items(), key=lambda kv: kv[0][1]):
        store = by_id[store_id]
        message = {
            "store_id": store_id,
            "hour_start": start,
            "day": local_hour_iso(start, store.timezone)[:10],
            "revision": 0,
            "usable": True,
            "counts": hour_counts(acc),
        }
        out.append((peer_group(store), message))
    return out


def _estate() -> Catalogue:
    """The demo estate's mall and one street store (the other street stores would only add run time)."""
    full = demo()
    keep = {s.id for s in full.stores if s.mall_id} | {"mum-bandra"}
    return Catalogue(
        stores=tuple(s for s in full.stores if s.id in keep),
        cameras=tuple(c for c in full.cameras if c.store_id in keep),
    )


def _run(catalogue: Catalogue, config: SimulationConfig) -> tuple[list[dict[str, Any]], PeerEngine]:
    peers = PeerEngine(catalogue, CFG, {})
    alerts: list[dict[str, Any]] = []
    for group, message in _messages(catalogue, config):
        alerts += peers.apply(group, json.loads(json.dumps(message)))  # as it travels on the peers topic
    for group in peers.members:
        alerts += peers.flush(group)
    return alerts, peers


INCIDENTS = [
    # The two cases: a tenant declaring about two thirds of its sales, one hiding most cash sales.
    "underreporting:store=wg-fashion,mode=all,share=0.33,at=2026-02-02,for=10d",
    "underreporting:store=wg-denim,mode=cash,share=0.8,at=2026-01-26,for=10d",
    # Weaker and longer; a tenant alone in its category (judged against the rest of the mall).
    "underreporting:store=wg-grocer,mode=all,share=0.25,at=2026-02-05,for=12d",
    # A street store: its own history only.
    "underreporting:store=mum-bandra,mode=all,share=0.4,at=2026-02-02,for=10d",
    # Sales voided after the customer paid.
    "underreporting:store=wg-shoes,mode=void,share=0.1,at=2026-02-10,for=8d",
    # Sales refunded in full later with nothing returned, at two strengths.
    "underreporting:store=wg-volt,mode=refund,share=0.15,at=2026-01-19,for=10d",
    "underreporting:store=wg-cafe,mode=refund,share=0.12,at=2026-02-09,for=10d",
    # Sales rung with a discount they never had, at two strengths.
    "underreporting:store=wg-cafe,mode=discount,share=0.15,at=2026-01-19,for=10d",
    "underreporting:store=wg-denim,mode=discount,share=0.3,at=2026-02-09,for=9d",
    # Sales rung as employee sales at staff price, at two strengths.
    "underreporting:store=wg-fashion,mode=employee,share=0.05,at=2026-01-15,for=10d",
    "underreporting:store=wg-volt,mode=employee,share=0.1,at=2026-02-08,for=9d",
]
# A two-day mall-wide change (a strike, a holiday): every Westgate tenant sells 40 % less per visitor.
MALL_WIDE = [
    f"sales-drop:store={s},at=2026-01-19T00,factor=0.6,for=48h"
    for s in ("wg-fashion", "wg-denim", "wg-shoes", "wg-volt", "wg-grocer", "wg-cafe")
]


@pytest.fixture(scope="module")
def injected_estate() -> tuple[list[dict[str, Any]], PeerEngine]:
    config = SimulationConfig(seed=5, start=date(2026, 1, 5), days=49, incidents=[*INCIDENTS, *MALL_WIDE])
    return _run(_estate(), config)


def test_estate_precision_and_recall_are_one(injected_estate: tuple[list[dict[str, Any]], PeerEngine]) -> None:
    alerts, _ = injected_estate
    firing = [a for a in alerts if a["kind"] == "UNDERREPORTING" and a["state"] == "FIRING"]
    truth = []
    for spec in INCIDENTS:
        fields = dict(part.split("=") for part in spec.split(":", 1)[1].split(","))
        start = date.fromisoformat(fields["at"])
        truth.append((fields["store"], start, start + timedelta(days=int(fields["for"][:-1]))))
    matched = set()
    for alert in firing:
        since = date.fromisoformat(alert["details"]["since"])
        hits = [i for i, (s, a, b) in enumerate(truth) if s == alert["store_id"] and a - timedelta(days=7) <= since < b]
        assert hits, f"false alarm: {alert['store_id']} since {since}: {alert['message']}"
        matched.update(hits)
    assert len(firing) == len(truth)  # one page per incident
    assert matched == set(range(len(truth)))  # recall 1
    by_kind = {(a["store_id"], a["details"]["metrics"]): a for a in firing}
    by_store = {a["store_id"]: a for a in firing if a["details"]["since"] >= "2026-01-23"}  # the later incident
    assert {store for store, m in by_kind if "refund_rate" in m} == {"wg-volt", "wg-cafe"}
    assert {store for store, m in by_kind if "discount_rate" in m} == {"wg-cafe", "wg-denim"}
    assert {store for store, m in by_kind if "employee_rate" in m} == {"wg-fashion", "wg-volt"}
    fashion = by_store["wg-fashion"]
    assert fashion["details"]["peers"] == "wg-denim,wg-shoes"
    assert -0.45 < float(fashion["details"]["conversion_ratio"]) - 1 < -0.2
    days = json.loads(fashion["details"]["days"])
    assert days and {"day", "observed", "expected", "peer_factor", "z"} <= set(days[0])
    assert any("cash_share" in m for store, m in by_kind if store == "wg-denim")
    assert "void_rate" in by_store["wg-shoes"]["details"]["metrics"]
    assert by_store["mum-bandra"]["details"]["peers"] == ""
    # Each one is resolved once the tenant declares everything again (the estate runs on after it).
    resolved = {a["alert_id"] for a in alerts if a["state"] == "RESOLVED"}
    assert {a["alert_id"] for a in firing} == resolved


def test_clean_estate_raises_nothing() -> None:
    config = SimulationConfig(seed=11, start=date(2026, 1, 5), days=35)
    alerts, peers = _run(_estate(), config)
    assert [a["message"] for a in alerts] == []
    judged: defaultdict[str, int] = defaultdict(int)
    for group in peers.groups.values():
        for store_id, days in group["stores"].items():
            judged[store_id] += len(days)
    assert sum(judged.values()) >= 7 * 28  # every store was judged on weeks of days


def test_a_corrected_day_is_judged_again() -> None:
    catalogue = demo()
    peers = PeerEngine(catalogue, CFG, {})
    group = peer_group(catalogue.store("wg-fashion"))
    rng = random.Random(4)
    alerts: list[dict[str, Any]] = []
    start = datetime(2026, 1, 5, 12)
    for d in range(32):
        day = (start + timedelta(days=d)).date().isoformat()
        for store in ("wg-fashion", "wg-denim", "wg-shoes"):
            counts = _day_counts(rng)
            if store == "wg-fashion" and 25 <= d < 35:
                counts.update({k: counts[k] // 2 for k in ("tx", "net", "pay", "cash", "tk")})
            msg = {"store_id": store, "hour_start": d, "day": day, "revision": 0, "usable": True, "counts": counts}
            alerts += peers.apply(group, msg)
    (fired,) = [a for a in alerts if a["state"] == "FIRING"]
    assert fired["store_id"] == "wg-fashion"
    # The missing sales arrive late (a re-sent export): corrections of those days clear the alert, and the
    # partly corrected days in between do not page again.
    rng = random.Random(99)
    out: list[dict[str, Any]] = []
    for d in range(25, 31):
        day = (start + timedelta(days=d)).date().isoformat()
        msg = {"store_id": "wg-fashion", "hour_start": d, "day": day, "revision": 1, "usable": True}
        out += peers.apply(group, {**msg, "counts": _day_counts(rng)})
    assert [(a["alert_id"], a["state"]) for a in out] == [(fired["alert_id"], "RESOLVED")]


def _hours_of_a_street_store(days: int, seed: int, evening: tuple[int, int, float], kept: float = 1.0) -> dict:
    """A store alone (no peers) with a morning hour converting 40 % and an evening hour converting 10 %, 300
    visitors each; ``evening`` = (from day, to day, factor on the evening's visitors); ``kept``: the share of
    sales declared over the same days."""
    rng = random.Random(seed)
    tz = "Europe/Berlin"
    store_days: dict[str, dict[str, Any]] = {}
    for d in range(days):
        day = (date(2026, 1, 5) + timedelta(days=d)).isoformat()
        starts = local_day_hours(day, tz)
        shifted = evening[0] <= d < evening[1]
        hours = {}
        for hour, conv in ((10, 0.4), (18, 0.1)):
            v = int(300 * math.exp(rng.gauss(0, 0.08)) * (evening[2] if shifted and hour == 18 else 1.0))
            tx = sum(rng.random() < conv for _ in range(v))
            if shifted:
                tx = int(tx * kept)
            counts = {**dict.fromkeys(("cash", "vd", "rf", "disc", "dk", "emp"), 0), "v": v, "tx": tx}
            counts.update(net=tx * 2500, pay=tx * 2500, gross=tx * 2500, tk=tx, cash=tx * 750)
            hours[str(starts[hour])] = {"usable": True, "counts": counts}
        store_days[day] = hours
    return store_days


def test_footfall_moving_to_other_hours_is_not_underreporting() -> None:
    """Ten days when the evening (10 % conversion) brings four times its visitors: the day's conversion falls
    from 25 % to 16 %, which the daily totals alone take for underreporting. Per visitor of the store's own
    weekday-hour profile, nothing departed; two thirds of the sales declared on the same days still fire."""

    def judge(store_days: dict[str, Any], timezone: str | None) -> list[Episode]:
        days = cast(dict[str, Mapping[str, int]], series(store_days, sorted(store_days), timezone, CFG))
        return evaluate({"s": days}, {"s": "fashion"}, CFG)

    crowd = _hours_of_a_street_store(50, 7, (30, 40, 4.0))
    daily = judge(crowd, None)
    assert [d.metric.name for e in daily for d in e.departures][:1] == ["conversion"]  # the daily view fires
    assert judge(crowd, "Europe/Berlin") == []
    (episode,) = judge(_hours_of_a_street_store(50, 7, (30, 40, 4.0), kept=0.67), "Europe/Berlin")
    conv = next(d for d in episode.departures if d.metric.name == "conversion")
    assert 0.6 < conv.ratio < 0.75 and "2026-01-31" <= conv.since <= "2026-02-05"


def test_profile_weights_are_relative_and_shrunk() -> None:
    hours = [((0, 10), 300, 120), ((0, 18), 300, 30)] * 4  # 40 % and 10 % against 25 % overall
    weights = profile_weights(hours, CFG.profile_prior)
    assert weights[(0, 10)] == pytest.approx((480 + 200 * 0.25) / 1400 / 0.25)  # 1.51: shrunk from 1.6
    assert weights[(0, 18)] == pytest.approx((120 + 200 * 0.25) / 1400 / 0.25)  # 0.49: from 0.4
    # A uniform shortfall (every slot's sales 2/3) leaves the relative weights as they were.
    assert profile_weights([(s, v, tx * 2 // 3) for s, v, tx in hours], CFG.profile_prior) == pytest.approx(weights)
    assert profiled_visitors([((0, 10), 100), ((0, 18), 100), ((1, 9), 50)], weights) == round(
        100 * weights[(0, 10)] + 100 * weights[(0, 18)] + 50
    )
    assert profile_weights([((0, 10), 0, 0)], 200.0) == {}
