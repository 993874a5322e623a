"""The stall rule: a partition with records waiting whose committed offset stands still, with explicit times."""

from __future__ import annotations

from streams.watchdog import Stall


def test_a_partition_is_stalled_once_its_offset_stood_still_with_records_waiting() -> None:
    stall = Stall(after_s=30)
    assert stall.observe(0, {"t-0": (100, 50), "t-1": (7, 0)}) == {}
    assert stall.observe(29, {"t-0": (100, 50), "t-1": (7, 0)}) == {}
    assert stall.observe(31, {"t-0": (100, 50), "t-1": (7, 0)}) == {"t-0": 31}
    # Progress resets the clock; a partition with nothing waiting is never stalled.
    assert stall.observe(40, {"t-0": (120, 30), "t-1": (7, 0)}) == {}
    assert stall.observe(69, {"t-0": (120, 30), "t-1": (7, 0)}) == {}
    assert stall.observe(71, {"t-0": (120, 30), "t-1": (7, 0)}) == {"t-0": 31}


def test_a_partition_revoked_or_caught_up_starts_over() -> None:
    stall = Stall(after_s=10)
    stall.observe(0, {"t-0": (5, 3)})
    assert stall.observe(11, {}) == {}  # revoked
    assert stall.observe(12, {"t-0": (5, 3)}) == {}  # assigned again: a new clock
    assert stall.observe(20, {"t-0": (5, 0)}) == {}  # caught up
    assert stall.observe(25, {"t-0": (5, 2)}) == {}
    assert stall.observe(31, {"t-0": (5, 2)}) == {"t-0": 11}  # waiting since 20, when it had caught up
