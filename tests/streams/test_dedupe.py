import itertools
import random

from streams.dedupe import interval_add, interval_contains


def test_in_order_frames_stay_one_interval() -> None:
    iv: list[list[int]] = []
    assert all(interval_add(iv, n) for n in range(1000))
    assert iv == [[0, 999]]
    assert not interval_add(iv, 500)


def test_random_order_with_duplicates_matches_a_set() -> None:
    rng = random.Random(3)
    values = [rng.randrange(300) for _ in range(2000)]
    iv: list[list[int]] = []
    seen: set[int] = set()
    for v in values:
        assert interval_add(iv, v) == (v not in seen)
        seen.add(v)
    assert all(interval_contains(iv, v) for v in seen)
    assert not any(interval_contains(iv, v) for v in set(range(300)) - seen)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(iv))  # disjoint, merged


def test_gap_filled_later_merges() -> None:
    iv: list[list[int]] = []
    for v in (1, 2, 5, 6, 4, 3):
        interval_add(iv, v)
    assert iv == [[1, 6]]
