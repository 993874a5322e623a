"""The `--every` loop, driven by an explicit clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from producers.pos.schedule import run_every
from producers.pos.source import parse_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert 0 < seconds <= 1.0
        self.now += seconds


def test_runs_start_to_start_every_interval() -> None:
    clock = FakeClock()
    starts: list[float] = []

    def job() -> None:
        starts.append(clock.now)
        clock.now += 2.5  # the sync takes 2.5 s

    runs = run_every(10, job, lambda: clock.now >= 35, clock.sleep, clock)
    assert runs == 4 and starts == [0.0, 10.0, 20.0, 30.0]


def test_a_run_longer_than_the_interval_is_followed_at_once() -> None:
    clock = FakeClock()
    starts: list[float] = []

    def job() -> None:
        starts.append(clock.now)
        clock.now += 25 if len(starts) == 1 else 1

    run_every(10, job, lambda: clock.now >= 40, clock.sleep, clock)
    assert starts == [0.0, 25.0, 35.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("15m", timedelta(minutes=15)), ("hourly", timedelta(hours=1)), ("daily", timedelta(days=1)),
     ("90s", timedelta(seconds=90)), ("2h", timedelta(hours=2))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_bad_duration() -> None:
    with pytest.raises(ValueError, match="not a duration: 'weekly'"):
        parse_duration("weekly")
