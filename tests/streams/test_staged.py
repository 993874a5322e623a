"""streams.tables.Staged: a batch's table writes are held back until its outputs were delivered."""

from __future__ import annotations

import pytest

from streams.tables import Staged, apply_held, copy_value, detach_all


def test_writes_reach_the_table_only_when_applied_and_reads_see_them_at_once() -> None:
    table = {"a": 1, "b": 2}
    staged = Staged(table)
    staged["a"] = 10
    staged["c"] = 3
    del staged["b"]
    assert (staged["a"], staged.get("b"), staged.get("c"), "b" in staged, "c" in staged) == (10, None, 3, False, True)
    assert sorted(staged) == ["a", "c"] and len(staged) == 2
    with pytest.raises(KeyError):
        staged["b"]
    assert table == {"a": 1, "b": 2}  # a crash now keeps the old state: the batch is processed again from it
    held = detach_all([staged, {"plain": 0}])  # plain mappings (tests, the bench engine) hold nothing back
    assert not staged.pending and table == {"a": 1, "b": 2}
    apply_held(held)  # once the batch's outputs were delivered
    assert table == {"a": 10, "c": 3}


def test_deleting_a_key_written_in_the_same_batch_and_a_missing_key() -> None:
    table: dict[str, int] = {}
    staged = Staged(table)
    staged["x"] = 1
    del staged["x"]
    with pytest.raises(KeyError):
        del staged["y"]
    staged.apply()
    assert table == {}


def test_a_value_read_from_the_table_is_a_copy() -> None:
    # Faust's memory store hands out the object it holds, and a queued changelog record is encoded when sent:
    # changing a read value in place must not reach the table (or that record) before apply.
    table = {"h": {"closed": False, "ids": [1]}}
    staged = Staged(table)
    acc = staged["h"]
    acc["closed"] = True
    acc["ids"].append(2)
    assert table["h"] == {"closed": False, "ids": [1]}
    staged["h"] = acc
    staged.apply()
    assert table["h"] == {"closed": True, "ids": [1, 2]}


def test_copy_value_shares_nothing_mutable() -> None:
    value = {"ids": [1, 2], "nested": {"seen": {3}, "runs": [[4, 5]]}, "name": "x", "n": None}
    copied = copy_value(value)
    assert copied == value
    copied["ids"].append(9)
    copied["nested"]["seen"].add(8)  # not JSON-like: deep-copied all the same
    copied["nested"]["runs"][0].append(6)
    assert value == {"ids": [1, 2], "nested": {"seen": {3}, "runs": [[4, 5]]}, "name": "x", "n": None}
