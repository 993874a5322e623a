"""Door-line geometry, crossings with hysteresis, occupancy and the IoU tracker, driven frame by frame."""

from __future__ import annotations

import dataclasses

import pytest

from producers.camera.counting import (
    DoorLine,
    LineCounter,
    Stitching,
    Track,
    anchor_point,
    occupancy,
    point_in_polygon,
    segments_intersect,
)
from producers.camera.tracking import IouTracker, iou

# A horizontal door across a 200x200 frame at y=100, walked left to right: screen-right is down (y > 100).
DOOR = DoorLine.with_entering(((20.0, 100.0), (180.0, 100.0)), "down")


def box_at(x: float, y: float, half: float = 5.0) -> tuple[float, float, float, float]:
    return (x - half, y - half, x + half, y + half)


def walk(counter: LineCounter, track_id: int, ys: list[float], x: float = 100.0, half: float = 5.0) -> tuple[int, int]:
    entries = exits = 0
    for y in ys:
        fc = counter.update([Track(track_id, box_at(x, y, half))])
        entries += fc.entries
        exits += fc.exits
    return entries, exits


def test_signed_distance_sides_and_inside_options() -> None:
    assert DOOR.signed_distance((100, 130)) == pytest.approx(30)
    assert DOOR.signed_distance((100, 60)) == pytest.approx(-40)
    up = DoorLine.with_entering(DOOR.points, "up")
    assert up.signed_distance((100, 130)) == pytest.approx(-30)
    by_point = DoorLine.with_inside_point(DOOR.points, (50.0, 10.0))
    assert by_point.signed_distance((100, 60)) == pytest.approx(40)
    # Beyond the ends the line extends, so the whole frame has a side.
    assert DOOR.signed_distance((0, 110)) == pytest.approx(10)
    assert DOOR.signed_distance((199, 95)) == pytest.approx(-5)


def test_polyline_sides_at_a_corner() -> None:
    # East then south (a right turn): the outer corner, up-right of the vertex, is screen-left.
    bend = DoorLine(((0.0, 50.0), (100.0, 50.0), (100.0, 150.0)), inside_side=1)
    assert bend.signed_distance((130, 20)) < 0
    assert bend.signed_distance((80, 70)) > 0
    assert bend.signed_distance((50, 40)) == pytest.approx(-10)
    assert bend.signed_distance((120, 100)) == pytest.approx(-20)
    assert bend.signed_distance((90, 100)) == pytest.approx(10)


def test_door_line_validation() -> None:
    with pytest.raises(ValueError, match="at least two points"):
        DoorLine(((0.0, 0.0),))
    with pytest.raises(ValueError, match="equal consecutive"):
        DoorLine(((0.0, 0.0), (0.0, 0.0)))
    with pytest.raises(ValueError, match="lies on the door line"):
        DoorLine.with_inside_point(((0.0, 0.0), (10.0, 0.0)), (5.0, 0.0))


def test_segments_intersect() -> None:
    assert segments_intersect((0, 0), (10, 10), (0, 10), (10, 0))
    assert not segments_intersect((0, 0), (4, 4), (0, 10), (10, 10))
    assert segments_intersect((5, 0), (5, 10), (0, 10), (10, 10))  # touching an end counts


def test_a_persons_crossings_alternate_in_and_out() -> None:
    counter = LineCounter(DOOR, hysteresis=10)
    assert walk(counter, 1, [60, 80, 95, 105, 120, 140]) == (1, 0)
    assert walk(counter, 2, [150, 120, 100, 80, 60], x=30) == (0, 1)  # someone else, elsewhere on the door
    # Track 1 leaves, then comes back in: a second visit, its exit and its second entry count.
    assert walk(counter, 1, [120, 90, 80, 95, 115]) == (1, 1)
    assert (counter.entries, counter.exits) == (2, 2)


def test_the_same_direction_is_never_counted_twice_in_a_row() -> None:
    counter = LineCounter(DOOR, hysteresis=10, max_age=50)
    assert walk(counter, 1, [60, 80, 120, 140]) == (1, 0)
    # The same track jumps back outside (a box of someone else, round the end of the line: no crossing), then
    # comes in again: an entry after an entry, with no exit between, is not counted.
    assert walk(counter, 1, [140, 140], x=200) == (0, 0)
    assert walk(counter, 1, [60, 60], x=200) == (0, 0)
    assert walk(counter, 1, [60, 80, 120, 140]) == (0, 0)


def test_a_track_handed_from_a_person_who_left_to_one_coming_in_still_counts_them() -> None:
    """A tracker gives the id of a person walking out to someone walking in a moment later (their boxes met at
    the edge of the picture): the newcomer's entry counts ("alternate"); with "once" it was lost."""
    for repeat, expected in (("alternate", (1, 1)), ("once", (0, 1))):
        counter = LineCounter(DOOR, hysteresis=10, repeat=repeat)  # type: ignore[arg-type]
        assert walk(counter, 1, [60, 80, 120, 140]) == (1, 0)  # an earlier visit of this id
        got = walk(counter, 1, [140, 120, 80, 60, 40, 20])  # out ...
        got2 = walk(counter, 1, [25, 40, 60, 80, 120, 140])  # ... and the id now on someone coming in
        assert (got2[0], got[1]) == expected


def test_the_crossing_is_reported_in_the_frame_that_leaves_the_band() -> None:
    counter = LineCounter(DOOR, hysteresis=10)
    got = [counter.update([Track(7, box_at(100, y))]).entries for y in (70, 95, 100, 108, 111, 130)]
    assert got == [0, 0, 0, 0, 1, 0]


def test_hovering_on_the_line_and_turning_back_are_not_counted() -> None:
    counter = LineCounter(DOOR, hysteresis=10)
    # Hovers across the line inside the band many times.
    assert walk(counter, 1, [60, 92, 104, 96, 108, 93, 107, 95]) == (0, 0)
    # Comes up to the line, steps over it by less than the band, turns back out.
    assert walk(counter, 2, [40, 70, 95, 108, 90, 50]) == (0, 0)
    # Zero hysteresis counts the same step over the line.
    assert walk(LineCounter(DOOR, hysteresis=0), 3, [40, 70, 95, 108, 90, 50]) == (1, 1)


def test_a_track_first_seen_in_the_band_or_walking_round_the_door_is_not_counted() -> None:
    counter = LineCounter(DOOR, hysteresis=10)
    assert walk(counter, 1, [100, 105, 130]) == (0, 0)  # born on the line: its old side is unknown
    # Walks round the end of the door (x=190, beyond x=180): changes side without cutting the line.
    assert walk(counter, 2, [60, 90, 110, 140], x=190) == (0, 0)


def test_a_crossing_spread_over_frames_lost_in_between_still_counts() -> None:
    counter = LineCounter(DOOR, hysteresis=10, max_age=5)
    counter.update([Track(1, box_at(100, 60))])
    counter.update([])
    counter.update([])
    assert counter.update([Track(1, box_at(100, 140))]).entries == 1


def test_a_forgotten_track_starts_over() -> None:
    counter = LineCounter(DOOR, hysteresis=10, max_age=2, stitching=None)
    counter.update([Track(1, box_at(100, 60))])
    for _ in range(3):
        counter.update([])
    assert counter.update([Track(1, box_at(100, 140))]).entries == 0


def test_two_side_by_side_count_two_in_one_frame() -> None:
    counter = LineCounter(DOOR, hysteresis=10)
    total = 0
    for y in (60, 85, 105, 125):
        fc = counter.update([Track(1, box_at(80, y)), Track(2, box_at(120, y))])
        total += fc.entries
        assert fc.people_in_frame == 2
    assert total == 2
    assert fc.entered_ids == (1, 2)  # both in the last frame


def test_bottom_anchor_uses_the_feet() -> None:
    box = (10.0, 20.0, 30.0, 80.0)
    assert anchor_point(box, "bottom") == (20.0, 80.0)
    assert anchor_point(box) == (20.0, 50.0)
    counter = LineCounter(DOOR, hysteresis=5, anchor="bottom")
    # The box centre stays outside (y=80) while the feet cross (y=115).
    got = [counter.update([Track(1, (95.0, y - 35.0, 105.0, y))]).entries for y in (70.0, 90.0, 115.0)]
    assert got == [0, 0, 1]


def test_zone_occupancy_counts_anchors_in_the_region() -> None:
    region = ((0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0))
    tracks = [Track(1, box_at(50, 50)), Track(2, box_at(150, 50)), Track(3, box_at(99, 10))]
    assert occupancy(tracks, region) == 2
    assert occupancy(tracks, None) == 3
    assert point_in_polygon((5, 5), region)
    assert not point_in_polygon((-1, 5), region)
    counter = LineCounter(None, region=region)
    fc = counter.update(tracks)
    assert (fc.people_in_frame, fc.entries, fc.exits) == (2, 0, 0)


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0


def test_iou_tracker_keeps_ids_through_motion_gaps_and_crossing_paths() -> None:
    tracker = IouTracker(max_age=2)
    a = [box_at(20 + 8 * i, 50, 10) for i in range(10)]
    b = [box_at(180 - 8 * i, 90, 10) for i in range(10)]
    ids: list[dict[int, float]] = []
    for i in range(10):
        boxes = [a[i], b[i]] if i != 4 else [b[i]]  # a is missed once
        ids.append({t.track_id: t.box[1] for t in tracker.update(boxes)})
    assert ids[0] == {1: 40.0, 2: 80.0}
    assert ids[4] == {2: 80.0}
    assert ids[9] == {1: 40.0, 2: 80.0}


def test_iou_tracker_matches_fast_movers_by_distance_and_ends_old_tracks() -> None:
    tracker = IouTracker(max_age=1)
    assert [t.track_id for t in tracker.update([box_at(20, 50, 10)])] == [1]
    # Moved 25 px: no overlap with a 20 px box, but within one diagonal (28 px).
    assert [t.track_id for t in tracker.update([box_at(45, 50, 10)])] == [1]
    tracker.update([])
    tracker.update([])
    assert [t.track_id for t in tracker.update([box_at(70, 50, 10)])] == [2]


def test_a_crossing_split_over_two_track_ids_counts_once() -> None:
    """An identity switch at the line: track 1 walks up to it and ends, track 2 starts just past it."""
    for stitching, expected in ((Stitching(), 1), (None, 0)):
        counter = LineCounter(DOOR, hysteresis=10, stitching=stitching)
        walk(counter, 1, [40, 55, 70, 85, 95], half=20)
        counter.update([])
        assert walk(counter, 2, [115, 130, 150], half=20) == (expected, 0)
    assert counter.stitched == 0


def test_a_person_split_into_fragments_is_counted_once_per_direction() -> None:
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching())
    assert walk(counter, 1, [60, 80, 100, 120, 135], half=20) == (1, 0)
    # A second id for the same person, where the first one would be by now, walking on: no second entry.
    assert walk(counter, 2, [150, 160, 170], half=20) == (0, 0)
    # Then out, then back in: an exit and a second visit.
    assert walk(counter, 2, [150, 130, 110, 85, 70, 85, 110, 130], half=20) == (1, 1)
    assert counter.stitched == 1 and (counter.entries, counter.exits) == (2, 1)


def test_stitching_needs_the_same_place_size_and_colours() -> None:
    red, blue = (0.9, 0.1, 0.0), (0.0, 0.1, 0.9)

    def split(second: Track) -> int:
        counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching())
        for y in (40, 55, 70, 85, 95):
            counter.update([Track(1, box_at(100, y, 20), red)])
        counter.update([second])
        return counter.stitched

    assert split(Track(2, box_at(100, 110, 20), red)) == 1
    assert split(Track(2, box_at(100, 110, 20), blue)) == 0  # other clothes
    assert split(Track(2, box_at(170, 110, 20), red)) == 0  # too far from where the first one went
    assert split(Track(2, box_at(100, 110, 45), red)) == 0  # twice the size
    # Too late: more than max_gap frames after the first one was last seen.
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching(max_gap=3))
    for y in (40, 55, 70, 85, 95):
        counter.update([Track(1, box_at(100, y, 20), red)])
    for _ in range(4):
        counter.update([])
    counter.update([Track(2, box_at(100, 110, 20), red)])
    assert counter.stitched == 0


def test_weak_detections_continue_a_track_but_never_start_one() -> None:
    tracker = IouTracker()
    first = tracker.update([(0.0, 0.0, 20.0, 40.0)])
    # Half hidden: only a weak box where the person went on; and a weak box of nobody elsewhere.
    second = tracker.update([], weak=[(3.0, 0.0, 23.0, 40.0), (100.0, 0.0, 120.0, 40.0)])
    assert [t.track_id for t in second] == [first[0].track_id]
    assert second[0].box == (3.0, 0.0, 23.0, 40.0)
    assert tracker.update([], weak=[(100.0, 0.0, 120.0, 40.0)]) == []


def test_a_tracker_swapping_two_people_who_pass_at_the_door_is_undone_by_their_colours() -> None:
    """Two people pass each other on the line; the tracker hands each one's id to the other from then on."""
    red, blue = (0.9, 0.1, 0.0), (0.0, 0.1, 0.9)
    going_in = [40, 55, 70, 85, 97, 110, 125, 140, 155]  # red, walking down (in)
    going_out = [160, 145, 130, 115, 103, 90, 75, 60, 45]  # blue, walking up (out)

    def run(stitching: Stitching | None) -> tuple[int, int]:
        counter = LineCounter(DOOR, hysteresis=10, stitching=stitching)
        for i, (a, b) in enumerate(zip(going_in, going_out, strict=True)):
            swapped = i >= 5
            red_track = Track(2 if swapped else 1, box_at(100, a, 20), red)
            blue_track = Track(1 if swapped else 2, box_at(104, b, 20), blue)
            counter.update([red_track, blue_track])
        return counter.entries, counter.exits

    assert run(None) == (0, 0)  # each id walks to the line and back
    assert run(Stitching()) == (1, 1)


def _passing_pair(ids_after: tuple[int, int], merges: bool) -> tuple[LineCounter, int, int]:
    """A walks down (in) in the lane x=80, B walks up (out) in the lane x=120, the same colours. They meet at
    the line and are one box for two frames; when they part the tracker labels A's part ``ids_after[0]`` and
    B's part ``ids_after[1]`` (A had id 1 and B id 2 before)."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching(merges=merges))
    a_ys, b_ys = [40, 55, 70, 85], [160, 145, 130, 115]
    for a, b in zip(a_ys, b_ys, strict=True):
        counter.update([Track(1, box_at(80, a, 20)), Track(2, box_at(120, b, 20))])
    # One box for both (the detector's non-maximum suppression keeps one), given to A's id.
    counter.update([Track(1, (58.0, 78.0, 142.0, 122.0))])
    counter.update([Track(1, (58.0, 80.0, 142.0, 120.0))])
    for a, b in zip([130, 145, 160], [70, 55, 40], strict=True):
        counter.update([Track(ids_after[0], box_at(80, a, 20)), Track(ids_after[1], box_at(120, b, 20))])
    return counter, counter.entries, counter.exits


def test_two_people_who_become_one_box_at_the_line_are_told_apart_by_their_motion() -> None:
    # The tracker hands the ids back swapped: without following the merge, each seems to turn back at the line.
    assert _passing_pair((2, 1), merges=False)[1:] == (0, 0)
    counter, entries, exits = _passing_pair((2, 1), merges=True)
    assert (entries, exits) == (1, 1)
    assert counter.merged == 1 and counter.unswapped == 1
    # The carrier's id on B's part, A's part a new track: A is found in it by where A was going.
    assert _passing_pair((3, 1), merges=False)[1:] == (0, 0)
    assert _passing_pair((3, 1), merges=True)[1:] == (1, 1)
    # The tracker got it right: nothing to put right, the same counts.
    counter, entries, exits = _passing_pair((1, 2), merges=True)
    assert (entries, exits, counter.unswapped) == (1, 1, 0)
    assert _passing_pair((1, 2), merges=False)[1:] == (1, 1)


def test_a_merge_far_from_the_line_is_left_to_the_tracker() -> None:
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching())
    for x in (20, 35, 50):
        counter.update([Track(1, box_at(x, 30, 10)), Track(2, box_at(200 - x, 34, 10))])
    counter.update([Track(1, (60.0, 20.0, 140.0, 44.0))])
    assert counter.merged == 0


def test_parts_of_a_split_box_are_judged_over_several_frames() -> None:
    """The box splits with both parts still on the line (nothing to tell them apart yet, so the tracker's swapped
    labels stand); the next frames show which part walks on in which direction."""
    # Left to the tracker (no merges, no head-on swaps undone) both seem to turn back; undoing the swap of two
    # boxes passing head on puts it right too, once both walk on.
    for merges, unswap, expected in ((True, False, (1, 1)), (False, False, (0, 0)), (False, True, (1, 1))):
        counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching(merges=merges, unswap=unswap))
        for a, b in zip([40, 55, 70, 85], [160, 145, 130, 115], strict=True):
            counter.update([Track(1, box_at(80, a, 20)), Track(2, box_at(120, b, 20))])
        counter.update([Track(1, (58.0, 78.0, 142.0, 122.0))])
        counter.update([Track(2, box_at(80, 100, 20)), Track(1, box_at(120, 100, 20))])  # A's part labelled 2
        for a, b in zip([115, 130, 145, 160], [85, 70, 55, 40], strict=True):
            counter.update([Track(2, box_at(80, a, 20)), Track(1, box_at(120, b, 20))])
        assert (counter.entries, counter.exits) == expected


def _meet(counter: LineCounter, extra: list[Track]) -> None:
    for a, b in zip([40, 55, 70, 85], [160, 145, 130, 115], strict=True):
        counter.update([Track(1, box_at(80, a, 20)), Track(2, box_at(120, b, 20))])
    counter.update([Track(1, box_at(80, 97, 20)), Track(2, box_at(120, 103, 20)), *extra])


def test_a_box_round_two_people_starts_no_person() -> None:
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching())
    _meet(counter, [Track(3, (55.0, 75.0, 145.0, 125.0))])
    assert counter.person_of(3) is None
    plain = LineCounter(DOOR, hysteresis=10, stitching=Stitching(merges=False))
    _meet(plain, [Track(3, (55.0, 75.0, 145.0, 125.0))])
    assert plain.person_of(3) is not None


def test_someone_inside_another_ones_box_is_not_stitched_to_a_track_far_from_it() -> None:
    for merges in (True, False):
        # A generous stitching reach (8 box heights), so only the merge tells the newcomer from B.
        counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching(max_distance=8.0, merges=merges))
        _meet(counter, [])
        counter.update([Track(1, (58.0, 78.0, 142.0, 122.0))])  # B inside A's box
        counter.update([Track(1, (58.0, 78.0, 142.0, 122.0)), Track(4, box_at(250, 60, 20))])
        assert counter.merged == (1 if merges else 0)
        assert (counter.person_of(4) == 2) is not merges


def test_a_part_of_a_person_lost_inside_them_is_not_a_merge() -> None:
    """The detector sees a walker whole and, for a while, their head as a second box; the head box going
    is not someone walking into the walker's box."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching())
    for y in (40, 55, 70, 85):
        counter.update([Track(1, box_at(100, y, 20)), Track(2, (90.0, y - 20, 110.0, y - 5))])
    counter.update([Track(1, box_at(100, 100, 20))])
    assert counter.merged == 0
    other = LineCounter(DOOR, hysteresis=10, stitching=Stitching())
    for y in (40, 55, 70, 85):  # someone beside them, not inside their box, is
        other.update([Track(1, box_at(100, y, 20)), Track(2, (112.0, y - 20, 132.0, y + 20))])
    other.update([Track(1, (80.0, 80.0, 145.0, 120.0))])
    assert other.merged == 1


def _half_seen_walker(counter: LineCounter, whole_back: bool) -> None:
    """A walker going in (down) gets a second, upper-body box (track 2) on the line, inside their whole box
    (track 1), which is then lost; with ``whole_back`` the whole box comes back as a new track (3)."""
    for y in (40, 55, 70, 85):
        counter.update([Track(1, box_at(100, y, 20))])
    counter.update([Track(1, box_at(100, 100, 20)), Track(2, (85.0, 85.0, 115.0, 105.0))])
    counter.update([Track(2, (85.0, 100.0, 115.0, 120.0))])
    for y in (125, 140, 155):
        whole = [Track(3, box_at(100, y, 20))] if whole_back else []
        counter.update([Track(2, (85.0, y - 10, 115.0, y + 10)), *whole])


def test_a_walker_followed_on_through_a_partial_box_of_them() -> None:
    for merges, expected in ((True, 1), (False, 0)):
        counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching(merges=merges))
        _half_seen_walker(counter, whole_back=False)
        assert (counter.entries, counter.exits) == (expected, 0)
    # The whole box back: the walker moves to it; their partial box counts nothing more.
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching())
    _half_seen_walker(counter, whole_back=True)
    assert (counter.entries, counter.exits) == (1, 0)
    assert counter.person_of(3) == 1 and counter.person_of(2) != 1  # the walker was the first person


def test_least_cost_assignment() -> None:
    from producers.camera.counting import least_cost_assignment

    # The tracker's choice stands on a tie, and gives way to a cheaper one.
    assert least_cost_assignment([[1.0, 1.0], [1.0, 1.0]], [1, 0]) == [1, 0]
    assert least_cost_assignment([[0.1, 2.0], [2.0, 0.1]], [1, 0]) == [0, 1]
    # Fewer parts than people: the part goes where it costs least, the other person stays hidden.
    assert least_cost_assignment([[0.5], [0.2]], [0, None]) == [None, 0]
    # A hidden person takes a new part rather than none; an infinite cost rules a pairing out.
    assert least_cost_assignment([[0.1, 5.0], [0.3, 0.9]], [0, None]) == [0, 1]
    assert least_cost_assignment([[0.1, float("inf")], [0.3, 0.9]], [None, None]) == [0, 1]


def _head_on_behind_a_pillar(rules: Stitching) -> tuple[LineCounter, int, int]:
    """A walks down (in) and B up (out) in the same lane; at the line B disappears into A's box (one box, A's id)
    and the tracker keeps that box on B as B walks out of it, while A, hidden behind a pillar, comes out below
    the line three frames later as a new track."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=rules)
    for a, b in zip([40, 55, 70, 85], [160, 145, 130, 115], strict=True):
        counter.update([Track(1, box_at(100, a, 20)), Track(2, box_at(104, b, 20))])
    for b in (100, 85, 70, 55, 40):  # the one box, first both of them, then B alone
        counter.update([Track(1, box_at(102, b, 20))])
    counter.update([Track(1, box_at(104, 25, 20)), Track(3, box_at(100, 170, 20))])  # A again, where A was going
    return counter, counter.entries, counter.exits


def test_a_merged_box_that_walks_on_with_the_hidden_person_is_theirs() -> None:
    rules = Stitching(max_gap=12)  # 12.5 frames/s: parts judged over 3 frames
    counter, entries, exits = _head_on_behind_a_pillar(rules)
    assert (entries, exits) == (1, 1)
    assert counter.handed_over == 1
    assert counter.person_of(3) == 1 and counter.person_of(1) == 2  # A in the new track, B in A's old id
    # Left with the person in front, the box turns back at the line and A comes out as someone new.
    counter, entries, exits = _head_on_behind_a_pillar(dataclasses.replace(rules, handover=False))
    assert (entries, exits) == (0, 0) and counter.handed_over == 0


def test_a_box_that_moves_on_with_its_own_person_is_not_handed_over() -> None:
    """Two people walking in side by side become one box at the line: the box moves the way both were going."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching(max_gap=12))
    for y in (40, 55, 70, 85):
        counter.update([Track(1, box_at(90, y, 20)), Track(2, box_at(112, y + 2, 20))])
    for y in (100, 115, 130, 145, 160):
        counter.update([Track(1, box_at(100, y, 22))])
    assert counter.handed_over == 0 and counter.merged == 1
    assert counter.entries == 1  # the one box's person; the hidden one was never seen across


def test_someone_hidden_in_a_box_is_found_where_their_own_motion_takes_them() -> None:
    """B walks up (out) into A's box at the line and comes out of sight beyond it, away from A's box, where B's
    own motion leads: that track is B (a track elsewhere is not, see the test above)."""
    for reach, found in ((0.6, True), (0.0, False)):
        counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching(max_gap=12, hidden_reach=reach))
        for a, b in zip([40, 55, 70, 85], [160, 145, 130, 115], strict=True):
            counter.update([Track(1, box_at(100, a, 20)), Track(2, box_at(104, b, 20))])
        for a in (100, 115, 130, 145):  # the one box goes on down with A
            counter.update([Track(1, box_at(101, a, 20))])
        counter.update([Track(1, box_at(100, 160, 20)), Track(3, box_at(104, 48, 20))])
        assert counter.merged == 1
        assert (counter.person_of(3) == 2) is found
        assert (counter.entries, counter.exits) == (1, 1 if found else 0)


def _passing_in_own_boxes(rules: Stitching) -> LineCounter:
    """A walks down (in) and B up (out), side by side but each in a box of their own; as they pass at the line
    their boxes overlap and the tracker swaps the ids (same colours, so nothing else tells them apart)."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=rules)
    for a, b in zip([40, 55, 70, 85, 97], [160, 145, 130, 115, 103], strict=True):
        counter.update([Track(1, box_at(95, a, 20)), Track(2, box_at(105, b, 20))])
    for a, b in zip([110, 125, 140, 155], [90, 75, 60, 45], strict=True):
        counter.update([Track(2, box_at(95, a, 20)), Track(1, box_at(105, b, 20))])
    return counter


def test_two_people_passing_head_on_get_their_swapped_boxes_back() -> None:
    counter = _passing_in_own_boxes(Stitching())
    assert (counter.entries, counter.exits) == (1, 1)
    assert counter.swaps_undone == 1 and counter.person_of(2) == 1 and counter.person_of(1) == 2
    counter = _passing_in_own_boxes(Stitching(unswap=False))
    assert (counter.entries, counter.exits, counter.swaps_undone) == (0, 0, 0)  # each turns back at the line


def test_people_who_turn_back_at_the_line_keep_their_boxes() -> None:
    """Two people walking towards each other who both turn back before the line (each box goes on with its own
    person's new motion, no swap of boxes would fit better) are not swapped."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching())
    for a, b in zip([40, 55, 70, 80, 85], [160, 145, 130, 120, 115], strict=True):
        counter.update([Track(1, box_at(60, a, 20)), Track(2, box_at(140, b, 20))])
    for a, b in zip([80, 70, 55, 40], [120, 130, 145, 160], strict=True):
        counter.update([Track(1, box_at(60, a, 20)), Track(2, box_at(140, b, 20))])
    assert counter.swaps_undone == 0 and (counter.entries, counter.exits) == (0, 0)


def _loiterer_half_hidden(counter: LineCounter) -> LineCounter:
    """Someone walks up to the door (down, towards inside) and stands 20 px before the line; someone passing in
    front hides all but their feet for two frames: the box of the feet has its centre 12.5 px beyond the line."""
    for y in (20, 35, 50, 65, 80, 80, 80):
        counter.update([Track(1, box_at(100, y, 40))])
    for _ in range(2):
        counter.update([Track(1, (80.0, 105.0, 120.0, 120.0))])
    for _ in range(2):
        counter.update([Track(1, box_at(100, 80, 40))])
    return counter


def test_a_part_of_a_standing_person_does_not_move_them_over_the_line() -> None:
    # Taken at their box's centre, they would go in and come out again.
    counter = _loiterer_half_hidden(LineCounter(DOOR, hysteresis=10, stitching=Stitching()))
    assert (counter.entries, counter.exits) == (0, 0)


def test_a_half_hidden_walker_is_still_counted_where_their_motion_takes_them() -> None:
    """A walker going in whose box shrinks to their upper body (centre 10 px above the person's) as they cross."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=Stitching())
    for y in (20, 35, 50, 65, 80):
        counter.update([Track(1, box_at(100, y, 40))])
    for y in (95, 110, 125):
        counter.update([Track(1, (80.0, y - 40, 120.0, y + 20))])  # the lower third hidden
    assert (counter.entries, counter.exits) == (1, 0)


def _turn_back_half_hidden(rules: Stitching) -> LineCounter:
    """Someone inside walks up towards the door (y=100) at 8 px a frame, slows down 10 px before it and turns
    back, while someone passing in front hides them from below: their box keeps its top edge (their head, 40 px
    above their centre) and loses its bottom, so its centre walks on over the line as it shrinks, and comes back
    as they reappear."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=rules)
    for y in (180, 172, 164, 156, 148, 140, 132, 124, 116):
        counter.update([Track(1, box_at(100, y, 40))])
    for centre, bottom in ((112, 140), (110, 120), (110, 110), (110, 104), (111, 102), (113, 106), (116, 118)):
        counter.update([Track(1, (60.0, centre - 40.0, 140.0, float(bottom)))])
    for y in (122, 130, 138):
        counter.update([Track(1, box_at(100, y, 40))])
    return counter


def test_a_half_hidden_person_is_placed_by_the_edge_that_moves_with_them() -> None:
    counter = _turn_back_half_hidden(Stitching())
    assert (counter.entries, counter.exits) == (0, 0)
    # Taken at their box's centre (and their motion carrying them on), they would go out and come back in.
    counter = _turn_back_half_hidden(dataclasses.replace(Stitching(), body=False))
    assert (counter.entries, counter.exits) == (1, 1)


def _behind_a_counter(rules: Stitching) -> list[int]:
    """A walker going in (down, 10 px a frame) behind a counter that hides everything below y=120: as they cross,
    their box keeps its top edge (their head, 40 px above their centre) and its bottom stays on the counter."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=rules)
    entries = []
    for y in (40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160):
        entries.append(counter.update([Track(1, (80.0, y - 40.0, 120.0, min(y + 40.0, 120.0)))]).entries)
    assert counter.exits == 0
    return entries


def test_a_walker_cut_off_below_is_counted_where_their_head_says_they_cross() -> None:
    entries = _behind_a_counter(Stitching())
    assert sum(entries) == 1 and entries.index(1) == 8  # at y=120, the first frame beyond the band
    # The box's centre lags behind (at 100 when they are at 120) and crosses three frames later.
    late = _behind_a_counter(dataclasses.replace(Stitching(), body=False))
    assert sum(late) <= 1 and (sum(late) == 0 or late.index(1) > 8)


def _pair_merges_as_someone_comes_the_other_way(rules: Stitching) -> LineCounter:
    """A (x=80) and B (x=120) walk on inside, down and away from the door (6 px a frame), and become one box just
    inside it; as the box goes back to B alone, C appears just outside the door, above the shared box, walking
    in: C's box lies next to the shared one, so it looks like a part of the split."""
    counter = LineCounter(DOOR, hysteresis=10, stitching=rules)
    for y in (112, 118, 124, 130):
        counter.update([Track(1, box_at(80, y, 20)), Track(2, box_at(120, y, 20))])
    counter.update([Track(2, (58.0, 110.0, 142.0, 160.0))])
    counter.update([Track(2, box_at(120, 142, 20)), Track(3, (60.0, 68.0, 100.0, 108.0))])
    for y, c in ((148, 96), (154, 104), (160, 112), (166, 120)):
        counter.update([Track(2, box_at(120, y, 20)), Track(3, box_at(80, c, 20))])
    return counter


def test_a_part_beyond_the_line_from_where_someone_was_going_is_not_them() -> None:
    counter = _pair_merges_as_someone_comes_the_other_way(Stitching())
    assert counter.merged == 1 and (counter.entries, counter.exits) == (1, 0)  # C goes in
    # Any part for anyone: A is given C's box, comes out 54 px across the line from where they were going.
    counter = _pair_merges_as_someone_comes_the_other_way(dataclasses.replace(Stitching(), part_reach=None))
    assert counter.exits == 1


def _first_seen_as_a_head(rules: Stitching) -> LineCounter:
    """A door entered upwards (inside above y=100). Someone stands 20 px outside it (centre y=120, 160 px tall), at
    first seen only as a head box (someone in front hides the rest) whose centre lies 35 px inside; then their
    whole box holds the head box."""
    counter = LineCounter(DoorLine.with_entering(DOOR.points, "up"), hysteresis=10, stitching=rules)
    for _ in range(5):
        counter.update([Track(1, (85.0, 40.0, 115.0, 90.0))])
    counter.update([Track(1, (85.0, 40.0, 115.0, 90.0)), Track(2, (70.0, 40.0, 130.0, 200.0))])
    for _ in range(3):
        counter.update([Track(2, (70.0, 40.0, 130.0, 200.0))])
    return counter


def test_someone_seen_whole_for_the_first_time_is_not_counted_for_where_their_head_box_was() -> None:
    counter = _first_seen_as_a_head(Stitching())
    assert (counter.entries, counter.exits) == (0, 0)
    # Read from the head box's centre, they were inside and walked out.
    counter = _first_seen_as_a_head(dataclasses.replace(Stitching(), reread=False))
    assert (counter.entries, counter.exits) == (0, 1)
