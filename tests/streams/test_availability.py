"""POS minutes in a store-hour's data availability (streams/availability.py), as plain functions and through
the engine with explicit event times: minutes of a silent till feed are missing, minutes whose tickets arrived
after the hour closed are delayed, and the hourly record carries both shares."""

from __future__ import annotations

from streams import availability as av
from streams.engine import FRAME, TICKET, Engine, StreamConfig
from tests.support.events import demo, frame, ms, ticket

WALL = 10**13
HOUR = ms("2026-03-16T12:00:00+01:00")  # a Monday: wg-shoes is open all hour
MIN = 60_000


def test_minutes_within_an_hour() -> None:
    assert av.minutes_within(HOUR, HOUR + 10 * MIN, HOUR + 50 * MIN) == ((1 << 40) - 1) << 10
    assert av.minutes_within(HOUR, HOUR - 5 * MIN, HOUR + 2 * MIN) == 0b11
    assert av.minutes_within(HOUR, HOUR + 59 * MIN + 1, 2**62) == 1 << 59  # a minute partly inside counts
    assert av.minutes_within(HOUR, HOUR + 61 * MIN, 2**62) == 0
    assert av.minutes_within(HOUR, HOUR - 2 * MIN, HOUR) == 0


def test_pos_and_all_complete_shares() -> None:
    open_all = av.ALL_MINUTES
    missing = av.minutes_within(HOUR, HOUR + 10 * MIN, HOUR + 40 * MIN)  # 30 minutes silent
    delayed = 1 << 45 | 1 << 50
    assert av.pos_complete_share(missing, delayed, open_all) == 28 / 60
    assert av.pos_complete_share(0, 0, 0) is None  # closed hour
    first_half = (1 << 30) - 1
    assert av.pos_complete_share(missing, 0, first_half) == 10 / 30  # only open minutes count
    cams = {"a": open_all, "b": open_all & ~(1 << 55)}  # door b sent nothing in minute 55
    assert av.all_complete_share(cams, ["a", "b"], missing, delayed, open_all) == 27 / 60
    assert av.all_complete_share({}, [], missing, 0, open_all) == 30 / 60  # no door camera: the POS feed alone


def _hour_of_a_silent_till(e: Engine) -> list[dict]:
    """wg-shoes: 6 visitors and one ticket a minute from 12:00, no ticket from 12:10 to 12:49, then again
    to 13:15; the hour 12:00 closes. FEED_SILENT fires in the silence (since 12:10, ended at 12:50)."""
    evs = [(FRAME, frame("cam-wg-shoes", "wg-shoes", HOUR + m * MIN, m, entries=6)) for m in range(76)]
    evs += [(TICKET, ticket("wg-shoes", HOUR + m * MIN + 30_000)) for m in range(76) if not 10 <= m < 50]
    evs.sort(key=lambda ev: ev[1].get("occurred_at") or ev[1]["frame_ts"])
    out = e.apply(0, evs, WALL)
    assert [(a["kind"], a["state"]) for a in out.alerts] == [("FEED_SILENT", "FIRING")]
    return [r for r in out.conversions if r["is_final"] and r["store_id"] == "wg-shoes"]


def test_a_silent_till_makes_its_minutes_missing_in_the_hourly_record() -> None:
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    (final,) = _hour_of_a_silent_till(e)
    assert final["local_hour"].startswith("2026-03-16T12:00")
    assert final["complete_share"] == 1.0  # the door camera sent every minute
    assert final["pos_complete_share"] == 20 / 60  # 12:10-12:49 missing
    assert final["all_complete_share"] == 20 / 60


def test_late_tickets_resolve_the_silence_and_their_minutes_are_delayed() -> None:
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    _hour_of_a_silent_till(e)
    late = [(TICKET, ticket("wg-shoes", HOUR + m * MIN + 30_000)) for m in (12, 20, 31)]
    out = e.apply(0, late, WALL)
    assert [(a["kind"], a["state"]) for a in out.alerts] == [("FEED_SILENT", "RESOLVED")]
    (corrected,) = [r for r in out.conversions if r["is_final"] and r["store_id"] == "wg-shoes"]
    assert corrected["revision"] == 1 and corrected["transactions"] == 23
    assert corrected["pos_complete_share"] == 57 / 60  # the silence is gone; the three late minutes are delayed


def test_a_silence_fired_after_its_hour_closed_corrects_the_hour() -> None:
    """The till goes quiet at 12:50; FEED_SILENT fires at 13:13 (after 12:00 closed at 13:10): the 12:00 hour is
    emitted again with its last ten minutes missing."""
    e = Engine(demo(), StreamConfig(), {}, {}, {})
    evs = [(FRAME, frame("cam-wg-shoes", "wg-shoes", HOUR + m * MIN, m, entries=6)) for m in range(90)]
    evs += [(TICKET, ticket("wg-shoes", HOUR + m * MIN + 30_000)) for m in range(50)]
    # Another store of the partition keeps ringing: the tickets input progresses while wg-shoes is silent.
    evs += [(TICKET, ticket("wg-denim", HOUR + m * MIN + 40_000)) for m in range(90)]
    evs += [(FRAME, frame("cam-wg-denim", "wg-denim", HOUR + m * MIN, m, entries=1)) for m in range(90)]
    evs.sort(key=lambda ev: ev[1].get("occurred_at") or ev[1]["frame_ts"])
    cut = next(i for i, ev in enumerate(evs) if (ev[1].get("occurred_at") or ev[1]["frame_ts"]) >= HOUR + 71 * MIN)
    out = e.apply(0, evs[:cut], WALL)  # to 13:11: the hour closed, the silence not yet long enough
    (first,) = [r for r in out.conversions if r["is_final"] and r["store_id"] == "wg-shoes"]
    assert (first["revision"], first["pos_complete_share"], out.alerts) == (0, 1.0, [])
    out = e.apply(0, evs[cut:], WALL)
    assert [a["kind"] for a in out.alerts] == ["FEED_SILENT"]
    (corrected,) = [r for r in out.conversions if r["is_final"] and r["local_hour"].startswith("2026-03-16T12")]
    assert (corrected["revision"], corrected["pos_complete_share"]) == (1, 50 / 60)
