"""Run a job now and then every interval, until asked to stop (the `--every` mode)."""

from __future__ import annotations

import time
from collections.abc import Callable


def run_every(
    interval: float,
    job: Callable[[], object],
    stopped: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Start ``job`` every ``interval`` seconds (measured start to start; a run longer than the interval is
    followed at once by the next). Checks ``stopped`` at least once a second. Returns how many runs started."""
    runs = 0
    next_start = clock()
    while not stopped():
        now = clock()
        if now >= next_start:
            runs += 1
            job()
            next_start = max(next_start + interval, clock())
            continue
        sleep(min(1.0, next_start - now))
    return runs


def run_once_or_every(interval: float | None, job: Callable[[], object], stopped: Callable[[], bool]) -> bool:
    """``job`` once (``interval`` None), else :func:`run_every`; False when the single run failed (returned None)."""
    if interval is None:
        return job() is not None
    run_every(interval, job, stopped)
    return True
