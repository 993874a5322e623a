"""Duplicate detection with bounded memory.

Tickets are identified by ``ticket_id``, camera frames by (``camera_id``, ``frame_seq``). Seen ids are kept
inside the state of the store-hour they belong to (a replayed or re-polled record carries the same event
time, so it lands in the same hour), and dropped ``dedupe_retention`` after the hour closed. Memory is
therefore bounded by the open hours plus the retention period. Frame numbers of one camera are almost
contiguous, so they are kept as a sorted list of closed intervals ``[[lo, hi], ...]``: a camera at any fps
costs a few integers per hour.
"""

from __future__ import annotations

from bisect import bisect_right


def interval_add(intervals: list[list[int]], value: int) -> bool:
    """Insert ``value`` into sorted disjoint closed intervals; False if it was already there."""
    n = len(intervals)
    # Fast path: frames arrive in order.
    if n and intervals[-1][1] == value - 1:
        intervals[-1][1] = value
        return True
    if n and intervals[-1][1] < value - 1:
        intervals.append([value, value])
        return True
    if n == 0:
        intervals.append([value, value])
        return True
    i = bisect_right(intervals, [value, float("inf")]) - 1  # last interval with lo <= value
    if i >= 0 and intervals[i][0] <= value <= intervals[i][1]:
        return False
    joins_left = i >= 0 and intervals[i][1] == value - 1
    joins_right = i + 1 < n and intervals[i + 1][0] == value + 1
    if joins_left and joins_right:
        intervals[i][1] = intervals[i + 1][1]
        del intervals[i + 1]
    elif joins_left:
        intervals[i][1] = value
    elif joins_right:
        intervals[i + 1][0] = value
    else:
        intervals.insert(i + 1, [value, value])
    return True


def interval_contains(intervals: list[list[int]], value: int) -> bool:
    i = bisect_right(intervals, [value, float("inf")]) - 1
    return i >= 0 and intervals[i][0] <= value <= intervals[i][1]
