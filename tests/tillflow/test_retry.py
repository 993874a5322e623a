"""The shared exponential backoff."""

from __future__ import annotations

import random
import time

from tillflow.retry import backoff, backoff_delays, pause


def test_backoff_doubles_from_the_first_retry_up_to_the_cap() -> None:
    assert [backoff(a, 5, 60) for a in range(6)] == [5, 10, 20, 40, 60, 60]
    assert backoff(-1, 5, 60) == 5


def test_jittered_backoff_stays_under_the_exponential_bound_and_spreads() -> None:
    rng = random.Random(7)
    waits = [[backoff(a, 1.0, 8.0, jitter=True, rng=rng) for _ in range(200)] for a in range(6)]
    for attempt, sample in enumerate(waits):
        assert all(0 <= w <= min(8.0, 2**attempt) for w in sample)
        assert max(sample) - min(sample) > 0.5 * min(8.0, 2**attempt)  # spread over the range, not constant


def test_delays_are_the_unjittered_sequence() -> None:
    delays = backoff_delays(0.5, 4.0)
    assert [next(delays) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_pause_waits_in_steps_and_ends_early_when_stopped() -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    assert pause(0.05, lambda: False, step=0.02, sleep=sleep) is False
    assert slept and max(slept) <= 0.02 and sum(slept) >= 0.04
    calls = iter([False, False, True])
    steps: list[float] = []
    assert pause(60, lambda: next(calls), step=1.0, sleep=steps.append) is True
    assert steps == [1.0, 1.0]  # stopped after two steps, not after a minute
