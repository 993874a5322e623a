"""Exponential backoff shared by everything that retries: POS pollers, the collector, camera reconnects,
the ClickHouse sink and the alert outbox."""

from __future__ import annotations

import random
from collections.abc import Iterator
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
