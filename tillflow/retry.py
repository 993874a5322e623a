"""Exponential backoff shared by everything that retries (POS pollers, the collector, camera reconnects, the
ClickHouse sink, the alert outbox), and the interruptible pause that long-running commands wait with."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from itertools import count


def backoff(
    attempt: int, initial: float, maximum: float, *, jitter: bool = False, rng: random.Random | None = None
) -> float:
    """The wait before retry ``attempt`` (0 for the first): ``initial * 2**attempt``, capped at ``maximum``.

    With ``jitter`` the wait is uniform in [0, that] ("full jitter"), so many clients failing together do not
    retry in lockstep.
    """
    wait = min(maximum, initial * 2 ** max(0, attempt))
    return (rng or random).uniform(0, wait) if jitter else wait


def backoff_delays(initial: float, maximum: float) -> Iterator[float]:
    """The successive waits of :func:`backoff` without jitter: initial, 2*initial, 4*initial ... up to ``maximum``."""
    return (backoff(attempt, initial, maximum) for attempt in count())


def pause(
    seconds: float, stopped: Callable[[], bool], step: float = 0.2, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Wait ``seconds`` in steps of at most ``step``, ending early once ``stopped()``; True when it was stopped."""
    deadline = time.monotonic() + seconds
    while not stopped():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sleep(min(step, left))
    return True
