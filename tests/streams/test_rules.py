"""Baselines and alert rules as plain functions, then through the engine with explicit event times."""

import json
import random
from datetime import datetime, timedelta
from typing import Any

from streams import rules
from streams.baselines import DAY_MS, Baseline, baseline
from streams.engine import FRAME, TICKET, Engine, StreamConfig
from streams.rules import AlertConfig, alert_id
from tests.support.events import demo, frame, ms, ticket

CFG = AlertConfig()
WALL = 10**13


def entry(day: int, hour: int, net: int, v: int, tx: int, wd: int | None = None) -> dict[str, Any]:
    s = ms("2026-03-02T00:00:00+00:00") + day * DAY_MS + hour * 3_600_000
    return {
        "s": s,
        "wd": day % 7 if wd is None else wd,
        "h": hour,
        "net": net,
        "v": v,
        "tx": tx,
        "conv": tx / v if v else None,
        "vr": 0.01,
        "rr": 0.02,
        "cs": 0.3,
    }


def test_baseline_is_median_of_last_four_same_weekdays() -> None:
    hist = [entry(d, 10, net, 100, 25) for d, net in ((0, 1), (7, 100), (14, 300), (21, 200), (28, 400))]
    b = baseline(hist, entry(35, 10, 0, 0, 0)["s"], 0, 10, 90)
    assert b is not None and b.method == "same_weekday" and b.samples == 4
    assert b.net == 250.0  # median of 100, 300, 200, 400: the day-0 sample is more than four weeks back


def test_fallbacks_with_less_history() -> None:
    # Two days of history, different weekdays: revenue per visitor for sales, same hour for visitors.
    hist = [entry(0, h, 2000, 40, 10) for h in (9, 10, 11)] + [entry(1, h, 1000, 40, 5) for h in (9, 10)]
    b = baseline(hist, entry(2, 10, 0, 0, 0)["s"], 2, 10, visitors=60)
    assert b is not None and b.method == "revenue_per_visitor"
    assert b.net == 60 * 50.0  # median revenue per visitor = 50
    assert b.visitors == 40.0
    assert baseline(hist[:1], entry(2, 10, 0, 0, 0)["s"], 2, 10, 60) is None


def test_sales_drop_needs_a_large_and_improbable_drop_with_footfall_held() -> None:
    base = Baseline("same_weekday", net=100_000.0, visitors=200.0, avg_ticket=2000.0, samples=4)
    f = rules.sales_drop(25_000, 190, base, CFG)
    assert f is not None and f.kind == "SALES_DROP" and f.severity == "WARNING"
    assert f.expected == 100_000.0  # 95 % of the usual visitors is within their noise (sd 10 %): no scaling
    f = rules.sales_drop(15_000, 140, base, CFG)
    assert f is not None and f.expected == 80_000.0  # 70 % of the visitors, + 1 sd: 80 % of the usual sales
    assert rules.sales_drop(15_000, 190, base, CFG).severity == "CRITICAL"  # type: ignore[union-attr]
    assert rules.sales_drop(60_000, 190, base, CFG) is None  # 60%: not far enough below
    assert rules.sales_drop(30_000, 80, base, CFG) is None  # footfall fell as much: not the till
    # A clean simulated café hour: 59 % of the usual visitors and 35 % of the sales is half of what those
    # visitors buy (59 % + 1 sd), not a sales drop (it paged before sales were expected of the visitors who came).
    assert rules.sales_drop(35_000, 118, base, CFG) is None
    small = Baseline("same_weekday", net=4000.0, visitors=10.0, avg_ticket=2000.0, samples=4)
    assert rules.sales_drop(0, 10, small, CFG) is None  # two expected sales: zero is not improbable


def test_early_projection_scales_the_expectation() -> None:
    base = Baseline("same_weekday", net=100_000.0, visitors=200.0, avg_ticket=2000.0, samples=4)
    f = rules.sales_drop(10_000, 150, base, CFG, fraction=0.8)
    assert f is not None and f.details["projected"] == "true" and f.expected == 80_000.0
    assert rules.sales_drop(45_000, 150, base, CFG, fraction=0.8) is None


def test_traffic_drop() -> None:
    base = Baseline("same_weekday", net=1.0, visitors=200.0, avg_ticket=1.0, samples=3)
    assert rules.traffic_drop(60, base, CFG) is not None
    assert rules.traffic_drop(120, base, CFG) is None
    assert rules.traffic_drop(2, Baseline("same_hour", None, 6.0, None, 2), CFG) is None


def test_default_thresholds_do_not_fire_on_noise() -> None:
    rng = random.Random(11)
    base = Baseline("same_weekday", net=40 * 2500.0, visitors=160.0, avg_ticket=2500.0, samples=4)
    fired = 0
    for _ in range(5000):
        visitors = max(0, int(rng.gauss(160, 20)))  # 12.5% day-to-day footfall noise
        tx = sum(rng.random() < 0.25 for _ in range(visitors))
        net = sum(int(rng.expovariate(1 / 2500)) for _ in range(tx))
        fired += rules.sales_drop(net, visitors, base, CFG) is not None
        fired += rules.traffic_drop(visitors, base, CFG) is not None
    assert fired == 0


def test_silence_rules() -> None:
    assert rules.feed_silent(25 * 60_000, 60, 0.2, CFG) is not None
    assert rules.feed_silent(25 * 60_000, 20, 0.2, CFG) is None  # 4 expected sales
    assert rules.feed_silent(10 * 60_000, 100, 0.2, CFG) is None
    assert rules.camera_silent("c", 20 * 60_000, 6, CFG) is not None
    assert rules.camera_silent("c", 20 * 60_000, 2, CFG) is None


def test_alert_ids_are_deterministic_and_fire_once() -> None:
    assert alert_id("SALES_DROP", "s", 1) == alert_id("SALES_DROP", "s", 1) != alert_id("TRAFFIC_DROP", "s", 1)
    states: dict[str, str] = {}
    f = rules.Finding("SALES_DROP", "WARNING", 1.0, 2.0, "m")
    first = rules.reconcile(
        states, store_id="s", hour_start_ms=1, evaluated=["SALES_DROP"], findings=[f], fired_at_ms=5
    )
    again = rules.reconcile(
        states, store_id="s", hour_start_ms=1, evaluated=["SALES_DROP"], findings=[f], fired_at_ms=6
    )
    cleared = rules.reconcile(
        states, store_id="s", hour_start_ms=1, evaluated=["SALES_DROP"], findings=[], fired_at_ms=7
    )
    assert [a["state"] for a in first] == ["FIRING"] and again == []
    assert [a["state"] for a in cleared] == ["RESOLVED"] and cleared[0]["alert_id"] == first[0]["alert_id"]


def _day(e: Engine, day: datetime, hour_tx: int, visitors: int, seq: list[int], net: int = 2500) -> list[dict]:
    """One hour 12:00-13:00 of wg-volt on ``day``: tickets and frames spread over the hour, then closed."""
    events: list[tuple[str, dict]] = []
    start = int(day.timestamp() * 1000)
    for i in range(visitors):
        seq[0] += 1
        events.append((FRAME, frame("cam-wg-volt", "wg-volt", start + i * 3_600_000 // visitors, seq[0], entries=1)))
    for m in range(60):  # a camera sends frames while nobody comes in, too
        seq[0] += 1
        events.append((FRAME, frame("cam-wg-volt", "wg-volt", start + m * 60_000 + 30_000, seq[0])))
    for i in range(hour_tx):
        events.append((TICKET, ticket("wg-volt", start + i * 3_600_000 // max(hour_tx, 1) + 1, net)))
    events.sort(key=lambda ev: ev[1].get("occurred_at") or ev[1]["frame_ts"])
    out = e.apply(0, events, WALL)
    out.extend(e.tick(0, WALL, close_all=True))
    e.parts["p0"]["forced"] = 0  # a new day continues in event time
    return out.alerts


def test_engine_fires_sales_drop_once_and_resolves_on_correction() -> None:
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    seq = [0]
    noon = datetime.fromisoformat("2026-03-02T12:00:00+01:00")  # a Monday
    for week in range(3):
        assert _day(e, noon + timedelta(days=7 * week), 40, 160, seq) == []
    alerts = _day(e, noon + timedelta(days=21), 8, 160, seq)
    (alert,) = alerts
    assert (alert["kind"], alert["state"], alert["store_id"]) == ("SALES_DROP", "FIRING", "wg-volt")
    # Fired early (projected at the last event, 59 minutes in); the close does not fire it again.
    assert alert["details"]["projected"] == "true" and alert["observed"] == 20_000.0
    assert 80_000 < alert["expected"] < 100_000
    assert alert["alert_id"] == alert_id("SALES_DROP", "wg-volt", ms("2026-03-23T12:00:00+01:00"))
    # The missing tickets arrive late: the correction clears the alert.
    late = [(TICKET, ticket("wg-volt", "2026-03-23T12:30:00+01:00", 2500)) for _ in range(30)]
    out = e.apply(0, late, WALL)
    assert [r["revision"] for r in out.conversions if r["is_final"]] == [1]
    assert [(a["state"], a["alert_id"]) for a in out.alerts] == [("RESOLVED", alert["alert_id"])]


def test_engine_fires_traffic_drop_not_sales_drop() -> None:
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    seq = [0]
    noon = datetime.fromisoformat("2026-03-02T12:00:00+01:00")
    for week in range(2):
        _day(e, noon + timedelta(days=7 * week), 40, 160, seq)
    (alert,) = _day(e, noon + timedelta(days=14), 10, 40, seq)
    assert alert["kind"] == "TRAFFIC_DROP"


def test_engine_early_sales_drop_during_the_hour() -> None:
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    seq = [0]
    noon = datetime.fromisoformat("2026-03-02T12:00:00+01:00")
    for week in range(2):
        _day(e, noon + timedelta(days=7 * week), 40, 160, seq)
    start = ms("2026-03-16T12:00:00+01:00")
    events = [(FRAME, frame("cam-wg-volt", "wg-volt", start + i * 22_500, 10_000 + i, entries=1)) for i in range(107)]
    # A few sales keep coming (the till works), far fewer than usual.
    sales = [(TICKET, ticket("wg-volt", start + m * 60_000, 2500)) for m in (1, 15, 29)]
    # Another store's ticket shows the tickets input has progressed to 12:40 as well.
    others = [(TICKET, ticket("wg-denim", start + 40 * 60_000))]
    out = e.apply(0, [*events, *sales, *others], WALL)
    (alert,) = out.alerts
    assert alert["kind"] == "SALES_DROP" and alert["details"]["projected"] == "true"
    assert not any(r["is_final"] for r in out.conversions)


def test_a_silent_till_pages_once_as_feed_silent_not_also_as_sales_drop() -> None:
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    seq = [0]
    noon = datetime.fromisoformat("2026-03-02T12:00:00+01:00")
    for week in range(2):
        _day(e, noon + timedelta(days=7 * week), 40, 160, seq)
    start = ms("2026-03-16T12:00:00+01:00")
    events = [(FRAME, frame("cam-wg-volt", "wg-volt", start + i * 22_500, 10_000 + i, entries=1)) for i in range(160)]
    out = e.apply(0, [*events, (TICKET, ticket("wg-volt", start + 60000, 2500))], WALL)
    out.extend(e.apply(0, [(TICKET, ticket("wg-denim", start + 75 * 60_000))], WALL))  # tickets input moves on
    out.extend(e.tick(0, WALL, close_all=True))
    kinds = [(a["kind"], a["state"]) for a in out.alerts]
    assert ("SALES_DROP", "FIRING") not in kinds and kinds[0] == ("FEED_SILENT", "FIRING")
    root = out.alerts[-1]  # re-emitted with the suppressed symptom attached
    assert root["alert_id"] == out.alerts[0]["alert_id"] and root["state"] == "FIRING"
    (related,) = json.loads(root["details"]["related"])
    assert related["kind"] == "SALES_DROP" and related["hour"] == "2026-03-16T12:00:00+01:00"
    assert root["details"]["suppressed"] == "1"
    assert out.suppressed == [("SALES_DROP", "FEED_SILENT")]


def test_no_frames_is_not_a_traffic_drop() -> None:
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    seq = [0]
    noon = datetime.fromisoformat("2026-03-02T12:00:00+01:00")
    for week in range(2):
        _day(e, noon + timedelta(days=7 * week), 40, 160, seq)
    start = ms("2026-03-16T12:00:00+01:00")
    # The camera works for 10 minutes, then sends nothing while the till rings 40 sales.
    frames = [(FRAME, frame("cam-wg-volt", "wg-volt", start + i * 20_000, 20_000 + i, entries=1)) for i in range(30)]
    sales = [(TICKET, ticket("wg-volt", start + i * 90_000 + 1, 2500)) for i in range(40)]
    evs = sorted([*frames, *sales], key=lambda ev: ev[1].get("occurred_at") or ev[1]["frame_ts"])
    out = e.apply(0, evs, WALL)
    out.extend(e.apply(0, [(FRAME, frame("cam-wg-denim", "wg-denim", start + 75 * 60_000, 1))], WALL))
    out.extend(e.tick(0, WALL, close_all=True))
    firing = [a for a in out.alerts if a["state"] == "FIRING"]
    assert {a["kind"] for a in firing} == {"CAMERA_SILENT"}
    related = json.loads(firing[-1]["details"]["related"])
    assert [r["kind"] for r in related] == ["TRAFFIC_DROP"]
    assert out.suppressed == [("TRAFFIC_DROP", "CAMERA_SILENT")]
    (final,) = [r for r in out.conversions if r["is_final"] and r["store_id"] == "wg-volt"]
    assert final["complete_share"] == 10 / 60 and final["visitors"] == 30


def test_an_entrance_camera_without_frames_flags_the_hour_and_drops_conversion() -> None:
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    start = ms("2026-03-16T12:00:00+01:00")  # wg-grocer has two entrances; only one sends frames
    evs = [(FRAME, frame("cam-wg-grocer-a", "wg-grocer", start + m * 60_000, m, entries=3)) for m in range(60)]
    evs.append((TICKET, ticket("wg-grocer", start + 1000)))
    out = e.apply(0, evs, WALL)
    out.extend(e.tick(0, WALL, close_all=True))
    (final,) = [r for r in out.conversions if r["is_final"]]
    assert "CAMERA_MISSING" in final["quality_flags"] and final["conversion"] is None
    assert final["complete_share"] == 0.0 and final["visitors"] == 180


def test_engine_feed_and_camera_silence() -> None:
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    start = ms("2026-03-29T12:00:00+02:00")
    # Camera counts 6 visitors a minute, the till stays silent for 25 minutes.
    frames = [(FRAME, frame("cam-wg-shoes", "wg-shoes", start + i * 60_000, i, entries=6)) for i in range(26)]
    progressed = (TICKET, ticket("wg-denim", start + 26 * 60_000))  # the tickets input is not just lagging
    out = e.apply(0, [(TICKET, ticket("wg-shoes", start)), *frames, progressed], WALL)
    (alert,) = out.alerts
    assert alert["kind"] == "FEED_SILENT" and alert["state"] == "FIRING"
    # The tickets were only late: one inside the silent window resolves it.
    out = e.apply(0, [(TICKET, ticket("wg-shoes", start + 10 * 60_000))], WALL)
    assert [a["state"] for a in out.alerts] == ["RESOLVED"]
    # Camera of another store dies while tickets keep coming.
    other = ms("2026-03-29T14:00:00+02:00")
    evs = [(FRAME, frame("cam-wg-cafe", "wg-cafe", other, 1))]
    evs += [(TICKET, ticket("wg-cafe", other + i * 120_000)) for i in range(1, 10)]
    evs += [(FRAME, frame("cam-wg-denim", "wg-denim", other + 20 * 60_000, 1))]  # counts input progressed
    out = e.apply(0, evs, WALL)
    assert [(a["kind"], a["details"]["camera_id"]) for a in out.alerts] == [("CAMERA_SILENT", "cam-wg-cafe")]


def test_the_night_is_not_a_silence_a_till_silent_after_opening_is() -> None:
    """The grocer opens at 09:00 (Thursday 2026-02-12): the night since the evening's last ticket is not a
    silence: 12 visitors a minute from 09:01 and a first ticket at 09:19 page nothing (the night counted as
    silence paged at 09:17, when 12 sales were due at the default conversion). A till silent to 09:30 pages."""
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    evening = ms("2026-02-11T19:55:00+01:00")
    opening = ms("2026-02-12T09:00:00+01:00")
    frames = [
        (FRAME, frame("cam-wg-grocer-a", "wg-grocer", opening + 60_000 + i * 60_000, i, entries=12)) for i in range(19)
    ]
    evs = [(TICKET, ticket("wg-grocer", evening)), *frames, (TICKET, ticket("wg-grocer", opening + 19 * 60_000))]
    evs.append((TICKET, ticket("wg-denim", opening + 21 * 60_000)))  # the tickets input progressed
    out = e.apply(0, evs, WALL)
    assert [a for a in out.alerts if a["kind"] == "FEED_SILENT"] == []
    # Next morning nobody rings anything for 30 minutes while 4 visitors a minute come in: FEED_SILENT.
    opening += DAY_MS
    frames = [
        (FRAME, frame("cam-wg-grocer-a", "wg-grocer", opening + i * 60_000, 100 + i, entries=4)) for i in range(31)
    ]
    out = e.apply(0, [*frames, (TICKET, ticket("wg-denim", opening + 31 * 60_000))], WALL)
    (silent,) = [a for a in out.alerts if a["kind"] == "FEED_SILENT"]
    assert silent["details"]["silent_minutes"] == "30"  # counted from the opening, not from the evening before


def test_two_low_hours_are_judged_on_their_sums() -> None:
    """An evening at 30 % of 27 visitors an hour: 2.6 standard deviations in one hour (no page), 3.7 over two."""
    hour = Baseline("same_weekday", 27 * 3000.0, 27.0, 3000.0, 4, 8.0)
    assert rules.traffic_drop(8, hour, CFG) is None
    assert rules.low(rules.TRAFFIC_DROP, 8, hour, CFG) and rules.low(rules.TRAFFIC_DROP, 16, hour, CFG)
    assert not rules.low(rules.TRAFFIC_DROP, 17, hour, CFG)  # over 1.5 x the 0.4 drop ratio
    both = rules.pooled([hour, hour])
    assert (both.visitors, both.net, both.transactions, both.samples) == (54.0, 162_000.0, 16.0, 4)
    finding = rules.traffic_drop(16, both, CFG)
    assert finding is not None and finding.details["z"] == "3.7"
    # Sales at ~10 an hour kept at 20 % for two hours (4 of 20 tickets): one hour alone is not improbable.
    sales = Baseline("same_weekday", 10 * 3000.0, 80.0, 3000.0, 4, 10.0)
    assert rules.sales_drop(6000, 80, sales, CFG, transactions=2) is None
    found = rules.sales_drop(12000, 160, rules.pooled([sales, sales]), CFG, transactions=4)
    assert found is not None and float(found.details["transactions_tail_p"]) < CFG.sales_drop_p
    # Only a tenth kept in one hour at this volume (1 of 10 tickets) stays below the evidence needed.
    assert rules.sales_drop(3000, 80, sales, CFG, transactions=1) is None


def _evening(e: Engine, day: str, visitors: int, tickets: int, seq: int) -> list[dict[str, Any]]:
    """Mumbai's last two hours (20:00-22:00) of ``day``: ``visitors`` and ``tickets`` an hour, spread evenly."""
    evs = []
    for hour in (20, 21):
        start = ms(f"{day}T{hour}:00:00+05:30")
        for m in range(60):
            seq += 1
            entries = 1 if m * visitors // 60 != (m + 1) * visitors // 60 else 0
            evs.append((FRAME, frame("cam-mum-bandra", "mum-bandra", start + m * 60_000, seq, entries=entries)))
        for t in range(tickets):
            evs.append((TICKET, ticket("mum-bandra", start + (t * 60 // tickets + 3) * 60_000, currency="INR")))
    evs.sort(key=lambda ev: ev[1].get("occurred_at") or ev[1]["frame_ts"])
    return e.apply(0, evs, WALL).alerts


def test_an_evening_drop_too_small_for_one_hour_pages_once_over_two() -> None:
    """Three Thursdays of 27 visitors an hour at 20:00 and 21:00, then one at 8 an hour: each hour alone is 2.6
    standard deviations below (no page), the two together 3.7: one TRAFFIC_DROP for 20:00, over two hours."""
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    alerts: list[dict[str, Any]] = []
    for week, day in enumerate(("2026-01-08", "2026-01-15", "2026-01-22")):
        alerts += _evening(e, day, 27, 8, week * 1000)
    alerts += _evening(e, "2026-01-29", 8, 3, 5000)
    alerts += e.tick(0, WALL, close_all=True).alerts
    (page,) = [a for a in alerts if a["state"] == "FIRING"]
    assert (page["kind"], page["hour_start"]) == ("TRAFFIC_DROP", ms("2026-01-29T20:00:00+05:30"))
    assert page["details"]["hours"] == "2" and page["details"]["z"] == "3.7"
    assert page["message"] == "20:00-22:00: 16 visitors is 30% of the expected 54"


def test_fire_pages_a_finding_once_and_resolves_nothing() -> None:
    hour = ms("2026-03-02T10:00:00Z")
    states = {alert_id(rules.TRAFFIC_DROP, "wg-fashion", hour): "FIRING"}
    drop = rules.Finding(rules.SALES_DROP, "WARNING", 10.0, 100.0, "sales down")
    first = rules.fire(states, drop, store_id="wg-fashion", hour_start_ms=hour, fired_at_ms=hour + 1, mall_id="wg")
    assert [(r["kind"], r["state"], r["mall_id"]) for r in first] == [(rules.SALES_DROP, "FIRING", "wg")]
    assert rules.fire(states, drop, store_id="wg-fashion", hour_start_ms=hour, fired_at_ms=hour + 2) == []
    assert states[alert_id(rules.TRAFFIC_DROP, "wg-fashion", hour)] == "FIRING"  # another kind is left alone
