import itertools

from streams.hours import HOUR_MS, hour_start, local_day_hours, local_hour_iso, local_weekday_hour
from tests.support.events import ms


def test_berlin_spring_forward_day_has_23_hours_and_no_0200() -> None:
    hours = local_day_hours("2026-03-29", "Europe/Berlin")
    assert len(hours) == 23
    labels = [local_hour_iso(h, "Europe/Berlin") for h in hours]
    assert labels[1] == "2026-03-29T01:00:00+01:00"
    assert labels[2] == "2026-03-29T03:00:00+02:00"
    assert all(b - a == HOUR_MS for a, b in itertools.pairwise(hours))


def test_berlin_fall_back_day_has_25_hours_with_two_0200_hours() -> None:
    hours = local_day_hours("2026-10-25", "Europe/Berlin")
    assert len(hours) == 25
    labels = [local_hour_iso(h, "Europe/Berlin") for h in hours]
    assert labels[2] == "2026-10-25T02:00:00+02:00"
    assert labels[3] == "2026-10-25T02:00:00+01:00"
    # 00:30 UTC and 01:30 UTC are both 02:30 local but belong to different hours.
    first = hour_start(ms("2026-10-25T00:30:00+00:00"), "Europe/Berlin")
    second = hour_start(ms("2026-10-25T01:30:00+00:00"), "Europe/Berlin")
    assert (first, second) == (hours[2], hours[3])


def test_new_york_dst_days() -> None:
    assert len(local_day_hours("2026-03-08", "America/New_York")) == 23
    assert len(local_day_hours("2026-11-01", "America/New_York")) == 25
    assert len(local_day_hours("2026-03-29", "America/New_York")) == 24


def test_kolkata_hours_start_at_half_past_utc() -> None:
    start = hour_start(ms("2026-03-29T10:29:59+05:30"), "Asia/Kolkata")
    assert start == ms("2026-03-29T04:30:00+00:00")
    assert local_hour_iso(start, "Asia/Kolkata") == "2026-03-29T10:00:00+05:30"
    assert hour_start(ms("2026-03-29T05:00:00+00:00"), "Asia/Kolkata") == ms("2026-03-29T04:30:00+00:00")


def test_kathmandu_and_eucla_quarter_offsets() -> None:
    start = hour_start(ms("2026-03-29T04:14:59+00:00"), "Asia/Kathmandu")  # 09:59:59 local
    assert local_hour_iso(start, "Asia/Kathmandu") == "2026-03-29T09:00:00+05:45"
    assert hour_start(ms("2026-03-29T04:15:00+00:00"), "Asia/Kathmandu") == ms("2026-03-29T04:15:00+00:00")
    assert local_hour_iso(hour_start(ms("2026-03-29T12:00:00+00:00"), "Australia/Eucla"), "Australia/Eucla") == (
        "2026-03-29T20:00:00+08:45"
    )
    assert len(local_day_hours("2026-10-04", "Australia/Adelaide")) == 23  # +9:30 -> +10:30


def test_hour_boundaries_are_exclusive_at_the_end() -> None:
    start = hour_start(ms("2026-03-29T11:00:00+02:00"), "Europe/Berlin")
    assert start == ms("2026-03-29T11:00:00+02:00")
    assert hour_start(start - 1, "Europe/Berlin") == start - HOUR_MS


def test_weekday_and_hour_of_day_are_local() -> None:
    # Sunday 23:30 in New York is Monday 03:30 UTC.
    start = hour_start(ms("2026-03-30T03:30:00+00:00"), "America/New_York")
    assert local_weekday_hour(start, "America/New_York") == (6, 23)
