"""Audits against a hand tally: matching per direction within a tolerance, once each, and tally files."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.camera.audit import Crossing, TallyError, audit, clock, read_tally


def test_counts_match_the_nearest_tallied_crossing_in_the_same_direction_once() -> None:
    tally = [Crossing(10.0, "in"), Crossing(11.0, "in"), Crossing(30.0, "out")]
    counted = [Crossing(10.4, "in"), Crossing(10.9, "in"), Crossing(10.95, "in"), Crossing(29.0, "in")]
    result = audit(counted, tally, tolerance=1.5)
    assert [(t.seconds, c.seconds) for t, c in result.entries.right] == [(10.0, 10.4), (11.0, 10.95)]
    # One more entry than people: a false count, even though it is close to a tallied one.
    assert result.entries.false == [Crossing(10.9, "in"), Crossing(29.0, "in")]
    # An entry counted where an exit was tallied matches nothing: one false, one missed.
    assert result.exits.missed == [Crossing(30.0, "out")] and result.exits.counted == 0
    assert result.entries.accuracy == pytest.approx(0.0)
    assert result.exits.accuracy == 0.0
    assert (result.right, result.false, result.missed, result.tallied) == (2, 2, 1, 3)
    assert result.accuracy == pytest.approx(0.0)


def test_tolerance_and_perfect_audit() -> None:
    tally = [Crossing(5.0, "in"), Crossing(9.0, "out")]
    assert audit([Crossing(6.4, "in"), Crossing(9.0, "out")], tally).accuracy == 1.0
    late = audit([Crossing(6.6, "in"), Crossing(9.0, "out")], tally, tolerance=1.5)
    assert len(late.entries.false) == 1 and len(late.entries.missed) == 1
    assert late.accuracy == 0.0  # 1 - (1 + 1) / 2
    assert audit([], []).accuracy == 1.0 and audit([Crossing(1.0, "in")], []).accuracy == 0.0


def test_tally_files(tmp_path: Path) -> None:
    path = tmp_path / "tally.csv"
    path.write_text("Time,Direction\n00:01:02.5,Entry\n0:00:03,exit\n61,in\n")
    assert read_tally(path) == [Crossing(3.0, "out"), Crossing(61.0, "in"), Crossing(62.5, "in")]
    path.write_text("time_s,direction\n1.0,in\n2.0,sideways\n")
    with pytest.raises(TallyError, match=r"tally.csv: row 3: direction 'sideways' is not in or out"):
        read_tally(path)
    path.write_text("time_s,direction\nsoon,in\n")
    with pytest.raises(TallyError, match=r"row 2: time 'soon' is not seconds or HH:MM:SS"):
        read_tally(path)
    path.write_text("when,way\n1,in\n")
    with pytest.raises(TallyError, match="the header needs time_s"):
        read_tally(path)
    with pytest.raises(TallyError, match="cannot read"):
        read_tally(tmp_path / "missing.csv")
    assert clock(75.25) == "1:15.2"
