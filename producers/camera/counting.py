"""Door-line crossings and zone occupancy from tracked boxes: pure functions and small state, no I/O.

Everything works in pixel coordinates of the processed frame (x to the right, y down). A door line is a
polyline; its *inside* is one side of it. A track's side is the sign of its anchor point's distance to the
line; it only changes once the anchor is more than ``hysteresis`` pixels beyond the line, so a person
hovering on the line or turning back before it is not counted. A side change counts as an entry (outside to
inside) or an exit (inside to outside) only when the track's path since it last stood on the old side cuts
the polyline itself (walking round the end of a door line is not a crossing), and at most once per track and
direction.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tillflow.errors import ConfigError

Point = tuple[float, float]
Box = tuple[float, float, float, float]
"""x1, y1, x2, y2 in pixels."""

Anchor = Literal["center", "bottom"]


@dataclass(frozen=True)
class Track:
    """One tracked person in one frame; ``appearance`` is an optional colour histogram of the person's crop
    (L1-normalised), used to tell whether a new track is a lost one come back."""

    track_id: int
    box: Box
    appearance: tuple[float, ...] | None = field(default=None, compare=False, repr=False)


def anchor_point(box: Box, anchor: Anchor = "center") -> Point:
    """The point of a box that is tested against lines and zones: its centre, or its bottom centre (feet)."""
    x1, y1, x2, y2 = box
    return ((x1 + x2) / 2.0, y2 if anchor == "bottom" else (y1 + y2) / 2.0)


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True when segment p1-p2 and segment q1-q2 share at least one point."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on(a: Point, b: Point, c: Point) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return (
        (d1 == 0 and on(q1, q2, p1))
        or (d2 == 0 and on(q1, q2, p2))
        or (d3 == 0 and on(p1, p2, q1))
        or (d4 == 0 and on(p1, p2, q2))
    )


Direction = Literal["left", "right", "up", "down"]
"""A screen direction (y down): where an entering person walks *towards* as seen in the picture."""

DIRECTIONS: dict[str, Point] = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "down": (0.0, 1.0), "up": (0.0, -1.0)}

MIN_CROSSING_ANGLE = 25.0
"""An ``entering`` direction must cross every segment of the door line at least this steeply (degrees)."""


class AmbiguousDoorError(ConfigError):
    """A door line whose inside side cannot be read one way only; the message says what to write instead."""


def _segment_sines(points: Sequence[Point], vec: Point) -> list[float]:
    """For each segment: sine of the angle from the segment (walked first to last) to ``vec``; positive when
    ``vec`` points to the segment's screen-right (y down)."""
    sines = []
    for a, b in itertools.pairwise(points):
        dx, dy = b[0] - a[0], b[1] - a[1]
        sines.append((dx * vec[1] - dy * vec[0]) / math.hypot(dx, dy))
    return sines


def crossing_directions(points: Sequence[Point]) -> list[Direction]:
    """The screen directions that cross every segment of the line steeply and the same way (usable as
    ``entering``)."""
    limit = math.sin(math.radians(MIN_CROSSING_ANGLE))
    found: list[Direction] = []
    for name, vec in DIRECTIONS.items():
        sines = _segment_sines(points, vec)
        if all(s >= limit for s in sines) or all(s <= -limit for s in sines):
            found.append(name)  # type: ignore[arg-type]
    return found


def entering_side(points: Sequence[Point], entering: Direction) -> int:
    """The side (+1 screen-right of the line walked first to last, -1 screen-left) that a person walking
    towards ``entering`` reaches: raises :class:`AmbiguousDoorError` when the direction runs along the line
    (or along one of its segments, or crosses segments both ways)."""
    if entering not in DIRECTIONS:
        raise AmbiguousDoorError(f"entering must be one of left, right, up, down (got {entering!r})")
    sines = _segment_sines(points, DIRECTIONS[entering])
    limit = math.sin(math.radians(MIN_CROSSING_ANGLE))
    if all(s >= limit for s in sines):
        return 1
    if all(s <= -limit for s in sines):
        return -1
    usable = crossing_directions(points)
    hint = (
        f"write the direction people walk in towards ({' or '.join(usable)})"
        if usable
        else "this line bends too much for a direction"
    )
    raise AmbiguousDoorError(
        f"entering: {entering} runs along the door line (within {MIN_CROSSING_ANGLE:g} degrees of a segment, or "
        f"crossing it both ways), so it does not say which side is inside; {hint}, or give a point that is "
        "inside: `inside: [x, y]`"
    )


@dataclass(frozen=True)
class DoorLine:
    """A polyline of at least two points with an inside side.

    ``inside_side`` is +1 when the inside is on the screen-right of the line walked from its first to its last
    point (y down), -1 when on its screen-left. Build one with :meth:`with_inside_point` or
    :meth:`with_entering`, which say the side in words nobody reads backwards.
    """

    points: tuple[Point, ...]
    inside_side: int = 1

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError("a door line needs at least two points")
        for a, b in zip(self.points, self.points[1:], strict=False):
            if a == b:
                raise ValueError(f"door line has two equal consecutive points {a}")
        if self.inside_side not in (1, -1):
            raise ValueError("inside_side is +1 or -1")

    @classmethod
    def with_inside_point(cls, points: Sequence[Point], inside: Point) -> DoorLine:
        """The side of the line where the point ``inside`` lies is inside."""
        line = cls(tuple(points))
        raw = line._raw_distance(inside)
        if abs(raw) <= 0.01 * line.length():
            raise AmbiguousDoorError(
                f"the inside point {list(inside)} lies on the door line (or within 1 % of its length); "
                "move it into the shop"
            )
        return cls(line.points, 1 if raw > 0 else -1)

    @classmethod
    def with_entering(cls, points: Sequence[Point], entering: Direction) -> DoorLine:
        """Inside is where a person walking towards the screen direction ``entering`` ends up."""
        return cls(tuple(points), entering_side(points, entering))

    def length(self) -> float:
        return sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(self.points))

    def _raw_distance(self, p: Point) -> float:
        """Signed distance, positive on the screen-right of the walking direction (y down)."""
        pts = self.points
        last = len(pts) - 2
        best = math.inf
        sign = 1.0
        for i, (a, b) in enumerate(itertools.pairwise(pts)):
            dx, dy = b[0] - a[0], b[1] - a[1]
            t = ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy)
            # The first and last segments extend to infinity, so the line splits the whole frame in two.
            vertex = None
            if i > 0 and t <= 0.0:
                t, vertex = 0.0, i
            elif i < last and t >= 1.0:
                t, vertex = 1.0, i + 1
            dist = math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy))
            if dist < best:
                best = dist
                if vertex is None:
                    sign = 1.0 if dx * (p[1] - a[1]) - dy * (p[0] - a[0]) > 0 else -1.0
                else:
                    sign = self._vertex_sign(p, vertex)
        return sign * best

    def _vertex_sign(self, p: Point, k: int) -> float:
        """Side of ``p`` when its nearest point on the line is the inner vertex ``k``."""
        pts = self.points
        n1 = self._unit_normal(pts[k - 1], pts[k])
        n2 = self._unit_normal(pts[k], pts[k + 1])
        dot = (p[0] - pts[k][0]) * (n1[0] + n2[0]) + (p[1] - pts[k][1]) * (n1[1] + n2[1])
        return 1.0 if dot > 0 else -1.0

    @staticmethod
    def _unit_normal(a: Point, b: Point) -> Point:
        dx, dy = b[0] - a[0], b[1] - a[1]
        length = math.hypot(dx, dy)
        # Screen-right normal of (dx, dy) with y down: (-dy, dx).
        return (-dy / length, dx / length)

    def signed_distance(self, p: Point) -> float:
        """Distance from ``p`` to the line, positive inside, negative outside."""
        return self.inside_side * self._raw_distance(p)

    def crossed_by(self, path: Sequence[Point]) -> bool:
        """True when the path (consecutive anchor points) cuts one of the line's segments."""
        for p1, p2 in itertools.pairwise(path):
            for q1, q2 in zip(self.points, self.points[1:], strict=False):
                if segments_intersect(p1, p2, q1, q2):
                    return True
        return False

    def scaled(self, sx: float, sy: float) -> DoorLine:
        """The same line with x multiplied by ``sx`` and y by ``sy`` (relative to pixel coordinates)."""
        if sx <= 0 or sy <= 0:
            raise ValueError("scale factors must be positive")
        return DoorLine(tuple((x * sx, y * sy) for x, y in self.points), self.inside_side)


def point_in_polygon(p: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd rule; points on an edge may fall either way."""
    x, y = p
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            xin = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < xin:
                inside = not inside
    return inside


def occupancy(tracks: Iterable[Track], region: Sequence[Point] | None, anchor: Anchor = "center") -> int:
    """People whose anchor lies in ``region`` (the whole frame when None)."""
    if region is None:
        return sum(1 for _ in tracks)
    return sum(1 for t in tracks if point_in_polygon(anchor_point(t.box, anchor), region))


@dataclass
class _Person:
    """One person, followed over one or more track fragments."""

    person_id: int
    side: int = 0
    """+1 inside, -1 outside, 0 not yet known (first seen within the hysteresis band)."""
    path: list[Point] = field(default_factory=list)
    """Anchor points since the person last stood beyond the band on their current side."""
    entered: bool = False
    exited: bool = False
    last_counted: int = 0
    """+1 when the last crossing counted for this person was an entry, -1 an exit, 0 none yet."""
    last_seen: int = 0
    seen_at: int = -1
    """The frame this person was last updated in (a person is fed by one track per frame)."""
    box: Box = (0.0, 0.0, 0.0, 0.0)
    history: list[tuple[int, Point]] = field(default_factory=list)
    """Recent ``(frame, anchor)`` for the velocity."""
    heights: list[float] = field(default_factory=list)
    """Box heights of the same recent frames: a person's last box may be a part of them (half hidden by someone
    else as they were lost), so a new track is compared with all of them."""
    boxes: list[Box] = field(default_factory=list)
    """The boxes of the same recent frames."""
    appearance: tuple[float, ...] | None = None
    fragments: int = 1
    odd: int = 0
    """Frames in a row whose track looked unlike this person (a tracker that swapped two people)."""
    whole_height: float = 0.0
    """The height of the person's whole box (see :meth:`LineCounter._body_point`): follows taller boxes at most
    :data:`WHOLE_GROWTH` a frame and shorter ones that are not much shorter slowly."""
    steady: int = 0
    """While the person's box is a part of them: -1 its top edge moves with them, +1 its bottom edge; 0 whole."""
    track_id: int | None = None
    """The track that fed this person last (None: none yet)."""

    def velocity(self) -> Point:
        if len(self.history) < 2:
            return (0.0, 0.0)
        (f0, p0), (f1, p1) = self.history[0], self.history[-1]
        steps = max(1, f1 - f0)
        return ((p1[0] - p0[0]) / steps, (p1[1] - p0[1]) / steps)


def _grown(box: Box, by: float) -> Box:
    """``box`` widened by ``by`` of its width and height on each side."""
    w, h = box[2] - box[0], box[3] - box[1]
    return (box[0] - by * w, box[1] - by * h, box[2] + by * w, box[3] + by * h)


def appearance_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Bhattacharyya coefficient of two L1-normalised histograms: 1 identical, 0 disjoint."""
    return sum(math.sqrt(max(x, 0.0) * max(y, 0.0)) for x, y in zip(a, b, strict=False))


@dataclass(frozen=True)
class Stitching:
    """When a new track is the continuation of a person whose track ended (an identity switch, a person lost
    behind someone else): at most ``max_gap`` frames later, its anchor within ``max_distance`` box heights of
    where the lost person would be by now (``max_distance_per_frame`` more per frame of gap), its box height
    within ``size_ratio`` of theirs, and, where both have one, a colour histogram at least ``min_similarity``
    alike (Bhattacharyya coefficient)."""

    max_gap: int = 25
    max_distance: float = 0.6
    max_distance_per_frame: float = 0.04
    size_ratio: float = 1.5
    min_similarity: float = 0.55
    split_similarity: float = 0.8
    """A track whose colours stay below this likeness to its person's for ``split_after`` frames in a row has
    been handed to someone else by the tracker (two people passing): it is cut off and stitched anew."""
    split_after: int = 2
    merges: bool = True
    """Follow people through a merge (see :class:`LineCounter`): two people who walk into one box are told apart
    by their motion when the box splits again, not by which part the tracker's box overlap gives to whom."""
    merge_cover: float = 0.5
    """A person lost in a frame has walked into another person's box when at least this share of the box their
    motion predicts lies inside it, and that box also covers this share of the other person's prediction."""
    merge_near_line: float = 1.0
    """Merges are followed within this many box heights of the door line (where a swap changes a count)."""
    hidden_reach: float = 0.6
    """Someone hidden in another's box is stitched to a track away from that box only within this many box
    heights of where their own motion takes them (walking on behind the person in front, out of sight; 0:
    never)."""
    handover: bool = True
    """The one box of a merge goes to the hidden person it moves with (see :meth:`LineCounter._hand_over`)."""
    handover_speed: float = 0.015
    """Box heights a frame (across the door line) that the box and both people must move for a hand-over (and
    that two people passing must walk for :attr:`unswap`)."""
    unswap: bool = True
    """Two people passing head on at the line in boxes of their own, whose ids the tracker swapped, get their
    boxes back (see :meth:`LineCounter._unswap_passing`)."""
    unswap_ratio: float = 0.5
    """The swapped boxes must continue the two people's motion at least this much better (the sum of the distances
    to where each would be, across the line) than the tracker's assignment..."""
    unswap_min: float = 0.1
    """... which must miss them by at least this many box heights in all."""
    part_reach: float | None = 0.6
    """A part of a split box is not a person of the merge when it lies more than this many box heights across the
    door line from where their motion takes them (None: any part may be anyone's)."""
    reread: bool = True
    """A person seen only in part so far (a head box: their whole height under :data:`FIRST_WHOLE` of the new box)
    who is found in another track's whole box (holding their part, stitched, or after a swap) takes their side
    from it without a crossing: where the part's centre was is not where they were."""
    body: bool = True
    """A box much shorter than the person's whole one (a part of them, the rest hidden or cut off) is placed by
    the edge that moves with them (see :meth:`LineCounter._body_point`), not by its own centre."""

    @property
    def part_frames(self) -> int:
        """Frames over which the parts of a split box are compared with the people's motion: a quarter of
        ``max_gap`` (6 frames, 0.24 s, at 25 fps; at least 2)."""
        return max(2, round(self.max_gap / 4))


DEFAULT_STITCHING = Stitching()

FRAGMENT_COVER = 0.8
"""A box lying at least this much inside another one of the same frame can be a part of the same person."""

SHRUNK = 0.8
"""A box under this share of the person's whole height is a part of them (see ``LineCounter._body_point``; and
``LineCounter._leap``, with ``Stitching(body=False)``)."""

LEAP = 0.2
"""Box heights across the line that a part of a person may lie from where their motion takes them and still
move them over the line."""

WHOLE = 0.9
"""A box at least this share of the person's whole height shows them whole (for where their edges were going)."""

WHOLE_GROWTH = 1.1
"""A person's whole height grows at most this much a frame (a box round two people is not their height)."""

WHOLE_DECAY = 0.2
"""Share of the gap by which a person's whole height follows a shorter (but not much shorter) box each frame."""

FIRST_WHOLE = 0.7
"""A person whose whole height is under this share of the box a new track gives them has been seen only in part
so far (see :attr:`Stitching.reread`)."""

MAX_MERGE = 4
"""People (and parts) followed in one merge: the parts are matched to the people by trying every assignment."""


def overlap(a: Box, b: Box) -> float:
    """The area two boxes share (0 when they do not overlap)."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    return ix * iy if ix > 0 and iy > 0 else 0.0


def covered(inner: Box, outer: Box) -> float:
    """The share of ``inner``'s area that lies inside ``outer`` (0 when either is empty)."""
    area = max(inner[2] - inner[0], 0.0) * max(inner[3] - inner[1], 0.0)
    return overlap(inner, outer) / area if area > 0 else 0.0


def shifted(box: Box, dx: float, dy: float) -> Box:
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


@dataclass(frozen=True)
class Motion:
    """Where a person was going when they walked into a shared box: their anchor at ``frame``, velocity
    (pixels per frame) and box height then."""

    frame: int
    point: Point
    velocity: Point
    height: float

    def predicted(self, frame: int) -> Point:
        steps = frame - self.frame
        return (self.point[0] + self.velocity[0] * steps, self.point[1] + self.velocity[1] * steps)


def least_cost_assignment(costs: Sequence[Sequence[float]], current: Sequence[int | None]) -> list[int | None]:
    """The assignment of parts (columns) to people (rows), each part to at most one person, with the least
    total cost (``None``: this person gets no part, when there are fewer parts than people). ``current`` is the
    tracker's assignment: it is kept unless another one costs less. An infinite cost rules a pairing out."""

    def total(choice: Sequence[int | None]) -> float:
        return sum(costs[i][k] for i, k in enumerate(choice) if k is not None)

    n = len(costs)
    parts = len(costs[0]) if costs else 0
    best = list(current)
    best_cost = total(best)
    best_used = sum(k is not None for k in best)
    indices: list[int | None] = list(range(parts)) + [None] * n
    for choice in dict.fromkeys(itertools.permutations(indices, n)):
        used = sum(k is not None for k in choice)
        cost = total(choice)
        if math.isinf(cost):
            continue
        # As many people placed as possible first, then the least cost.
        if used > best_used or (used == best_used and cost < best_cost - 1e-9):
            best, best_cost, best_used = list(choice), cost, used
    return best


@dataclass
class _Merge:
    """People who walked into one box, with the motion each had just before."""

    started: int
    motions: dict[int, Motion]
    """Person id -> motion before the merge."""
    box: Box
    """The shared box, as last seen."""
    parted: int = 0
    """The frame the box split again (0: not yet)."""
    parts: list[int] = field(default_factory=list)
    """Track ids of the parts, from the frame it split."""
    costs: dict[tuple[int, int], float] = field(default_factory=dict)
    """(person id, part track id) -> how unlike the person's motion that part has moved since the split."""
    path: list[tuple[int, float]] = field(default_factory=list)
    """``(frame, signed distance to the door line)`` of the one box the people of the merge make."""


@dataclass(frozen=True)
class FrameCount:
    """What one frame adds: people seen, and crossings completed in this frame."""

    people_in_frame: int
    entries: int
    exits: int
    entered_ids: tuple[int, ...] = ()
    exited_ids: tuple[int, ...] = ()


class LineCounter:
    """Counts entries and exits of people over a door line, frame by frame.

    Tracks are followed as *people*: a track that starts near where another ended a moment before (same size,
    same colours, where its motion would have taken it; see :class:`Stitching`) continues that person, so an
    identity switch or a person lost behind another neither loses a crossing nor counts one twice. People who
    walk into one box near the line are followed through it and told apart by their motion when it splits
    (:meth:`_follow_merges`), and a walker seen as a whole and a partial box stays one person
    (:meth:`_adopt_fragments`, :meth:`_whole_of_part`); ``Stitching(merges=False)`` turns both off. A crossing
    is decided on the person's whole trajectory.

    ``repeat``: ``"alternate"`` (default) lets a person's counted crossings alternate, in, out, in, ...: the
    same direction is never counted twice in a row, but someone who went in, out and in again is two entries
    (and a track a tracker hands from a person who left to one coming in still counts them);
    ``"once"``: at most one entry and one exit per person, ever.

    ``hysteresis`` is in pixels; ``max_age`` is how many frames a person who was not seen is remembered.
    ``stitching=None`` turns the stitching off (one person per track, as trackers give them).
    """

    def __init__(
        self,
        line: DoorLine | None,
        hysteresis: float = 10.0,
        anchor: Anchor = "center",
        region: Sequence[Point] | None = None,
        max_age: int = 50,
        max_path: int = 400,
        stitching: Stitching | None = Stitching(),
        repeat: Literal["alternate", "once"] = "alternate",
    ) -> None:
        if hysteresis < 0:
            raise ValueError("hysteresis must be >= 0")
        self.repeat = repeat
        self.line = line
        self.hysteresis = hysteresis
        self.anchor: Anchor = anchor
        self.region = tuple(region) if region is not None else None
        self.stitching = stitching
        self.max_age = max(max_age, stitching.max_gap if stitching else 0)
        self.max_path = max_path
        self.frame = 0
        self.entries = 0
        self.exits = 0
        self.stitched = 0
        """Track fragments joined to an earlier person so far."""
        self.merged = 0
        """Times a person walked into someone else's box (see :meth:`_follow_merges`)."""
        self.unswapped = 0
        """Merges whose parts the tracker had handed to the wrong people, put right by motion."""
        self.handed_over = 0
        """Merged boxes handed from the person in front to the hidden one they moved with (:meth:`_hand_over`)."""
        self.swaps_undone = 0
        """Two people passing head on whose boxes the tracker had swapped, given back (:meth:`_unswap_passing`)."""
        self._merges: list[_Merge] = []
        self._people: dict[int, _Person] = {}
        self._owner: dict[int, int] = {}
        """Track id -> person id."""
        self._next_person = 1

    def person_of(self, track_id: int) -> int | None:
        """The person a track id belongs to now (for drawing)."""
        return self._owner.get(track_id)

    def update(self, tracks: Sequence[Track]) -> FrameCount:
        """Feed the tracks of the next frame; returns the people in it and the crossings it completed."""
        self.frame += 1
        entered: list[int] = []
        exited: list[int] = []
        if self.line is not None:
            assigned = self._assign(tracks)
            if self.stitching is not None and self.stitching.unswap:
                self._unswap_passing(assigned)
            if self.stitching is not None and self.stitching.merges:
                self._adopt_fragments(assigned)
                assigned = self._follow_merges(assigned)
            for track, person in assigned:
                direction = self._step(person, track)
                if direction > 0:
                    entered.append(track.track_id)
                elif direction < 0:
                    exited.append(track.track_id)
        self._forget()
        self.entries += len(entered)
        self.exits += len(exited)
        return FrameCount(
            people_in_frame=occupancy(tracks, self.region, self.anchor),
            entries=len(entered),
            exits=len(exited),
            entered_ids=tuple(entered),
            exited_ids=tuple(exited),
        )

    def _assign(self, tracks: Sequence[Track]) -> list[tuple[Track, _Person]]:
        """Each track's person: its own, a lost person it continues, or a new one."""
        assigned: list[tuple[Track, _Person]] = []
        fresh: list[Track] = []
        for track in tracks:
            pid = self._owner.get(track.track_id)
            person = self._people.get(pid) if pid is not None else None
            if person is None or person.seen_at == self.frame:
                fresh.append(track)
            elif self._swapped(person, track):
                del self._owner[track.track_id]  # the person is lost; this track starts a new fragment
                fresh.append(track)
            else:
                person.seen_at = self.frame
                assigned.append((track, person))
        if fresh and self.stitching is not None:
            for track, person in self._stitch(fresh):
                for tid in [t for t, p in self._owner.items() if p == person.person_id]:
                    del self._owner[tid]  # an old id that comes back later is a new fragment, not this person
                self._owner[track.track_id] = person.person_id
                person.seen_at = self.frame
                person.fragments += 1
                self.stitched += 1
                assigned.append((track, person))
                fresh.remove(track)
        if self.stitching is not None and self.stitching.merges:
            fresh = [t for t in fresh if not self._holds_several(t, tracks)]
            fresh = [t for t in fresh if not self._whole_of_part(t, assigned)]
        for track in fresh:
            person = _Person(self._next_person, seen_at=self.frame)
            self._next_person += 1
            self._people[person.person_id] = person
            self._owner[track.track_id] = person.person_id
            assigned.append((track, person))
        return assigned

    def _motion(self, person: _Person) -> Motion:
        """The person's motion as of their last frame seen (before this frame's box)."""
        frame, point = person.history[-1]
        return Motion(frame, point, person.velocity(), statistics.median(person.heights))

    def _follow_merges(self, assigned: list[tuple[Track, _Person]]) -> list[tuple[Track, _Person]]:
        """Two people who meet (passing each other at the door, or side by side) often become one box for a few
        frames; when it splits, an overlap tracker may give each part to the wrong one, and both then seem to
        turn back at the line. Here a person lost in a frame whose predicted box lies in another person's box
        (near the line) is marked as merged with them, with the motion both had. From the frame the box splits
        (the people of the merge seen apart again, or a new track next to the shared box) and for
        :attr:`Stitching.part_frames` frames, each part is compared with where each person's constant-velocity
        motion takes them across the door line (their distance to the line: the direction of travel, which
        half-hidden boxes blur least), and the parts go to the people they continue best."""
        rules = self.stitching
        assert rules is not None and self.line is not None
        for merge in list(self._merges):
            members = [pid for pid in merge.motions if pid in self._people]
            late = merge.parted and self.frame - merge.parted >= rules.part_frames
            if late or self.frame - merge.started > rules.max_gap or len(members) < 2:
                self._merges.remove(merge)
                continue
            slot_of_person = {p.person_id: k for k, (_t, p) in enumerate(assigned)}
            if not merge.parted:
                seen = [pid for pid in members if pid in slot_of_person]
                if not seen:
                    continue
                # Tracks next to the shared box that the tracker or the stitching made into a new person.
                near = [
                    p.person_id
                    for t, p in assigned
                    if not p.history
                    and len(seen) < len(members)
                    and covered(t.box, _grown(merge.box, 0.5)) >= rules.merge_cover
                ]
                if len(seen) < 2 and not near:
                    merge.box = assigned[slot_of_person[seen[0]]][0].box
                    if rules.handover:
                        self._hand_over(assigned, merge, members, slot_of_person[seen[0]])
                    continue
                # The parts of the split: tracks next to the shared box (someone of the merge seen far from
                # it was found again by stitching, not split from it).
                region = _grown(merge.box, 1.0)
                parts = [
                    assigned[slot_of_person[pid]][0]
                    for pid in seen + near
                    if covered(assigned[slot_of_person[pid]][0].box, region) >= rules.merge_cover
                ]
                if len(parts) < 2:
                    self._merges.remove(merge)
                    continue
                merge.parted = self.frame
                merge.parts = [t.track_id for t in parts[:MAX_MERGE]]
            slot_of_track = {t.track_id: k for k, (t, _p) in enumerate(assigned)}
            present = [tid for tid in merge.parts if tid in slot_of_track]
            if not present:
                continue
            for pid in members:
                motion = merge.motions[pid]
                expected = self.line.signed_distance(motion.predicted(self.frame))
                for tid in present:
                    point = anchor_point(assigned[slot_of_track[tid]][0].box, self.anchor)
                    step = abs(self.line.signed_distance(point) - expected) / max(motion.height, 1.0)
                    if rules.part_reach is not None and step > rules.part_reach:
                        step = math.inf  # someone else, who came from further away than this person could walk
                    merge.costs[pid, tid] = merge.costs.get((pid, tid), 0.0) + step
            costs = [[merge.costs.get((pid, tid), 0.0) for tid in present] for pid in members]
            current: list[int | None] = []
            for pid in members:
                mine = [j for j, tid in enumerate(present) if assigned[slot_of_track[tid]][1].person_id == pid]
                current.append(mine[0] if mine else None)
            choice = least_cost_assignment(costs, current)
            if choice == current:
                continue
            self.unswapped += 1
            self._reassign(assigned, merge, members, [slot_of_track[tid] for tid in present], choice)
        self._find_merges(assigned)
        return assigned

    def _unswap_passing(self, assigned: list[tuple[Track, _Person]]) -> None:
        """Two people who pass each other head on at the door, each seen in a box of their own, can have their
        boxes overlap enough for the tracker to swap their ids: each then seems to turn back at the line. When
        two people seen in the last frame, near the line on opposite sides and each walking towards the other's
        side, both turn back in the same frame, and each box continues the other person's motion far better
        (:attr:`Stitching.unswap_ratio`), their boxes are swapped back."""
        rules = self.stitching
        assert rules is not None and self.line is not None
        walking: list[tuple[int, _Person, float, float, float]] = []
        for k, (track, person) in enumerate(assigned):
            if person.side == 0 or len(person.history) < 3 or person.last_seen != self.frame - 1:
                continue
            height = statistics.median(person.heights)
            (f0, p0), (f1, p1) = person.history[0], person.history[-1]
            before = self.line.signed_distance(p1)
            speed = (before - self.line.signed_distance(p0)) / max(f1 - f0, 1)
            if abs(before) > height or speed * person.side >= 0 or abs(speed) < rules.handover_speed * height:
                continue
            now = self.line.signed_distance(anchor_point(track.box, self.anchor))
            if (now - before) * speed >= 0:
                continue  # still walking on
            walking.append((k, person, before + speed, now, height))
        done: set[int] = set()
        for i, (ka, a, expect_a, now_a, height_a) in enumerate(walking):
            for kb, b, expect_b, now_b, height_b in walking[i + 1 :]:
                if a.side != -b.side or ka in done or kb in done:
                    continue
                keep = abs(now_a - expect_a) + abs(now_b - expect_b)
                swap = abs(now_a - expect_b) + abs(now_b - expect_a)
                if keep < rules.unswap_min * min(height_a, height_b) or swap > rules.unswap_ratio * keep:
                    continue
                (track_a, _pa), (track_b, _pb) = assigned[ka], assigned[kb]
                self._owner[track_a.track_id], self._owner[track_b.track_id] = b.person_id, a.person_id
                assigned[ka], assigned[kb] = (track_a, b), (track_b, a)
                done.update((ka, kb))
                self.swaps_undone += 1

    def _hand_over(
        self, assigned: list[tuple[Track, _Person]], merge: _Merge, members: Sequence[int], slot: int
    ) -> None:
        """While the people of a merge are one box, the box is the person it moves with. Two people who pass
        each other head on behind a pillar (or anyone wider) are one box for a while, and the tracker keeps
        the box's id on the one who was in front as the other walks out of it: the box then turns back at the
        line. When the box moves across the line against its person's motion, at least
        :attr:`Stitching.handover_speed` box heights a frame over :attr:`Stitching.part_frames` frames, and
        the way one of the hidden people was walking, it is handed to that person; its person is lost (with
        the motion they had before the merge) and found again by stitching where that motion takes them."""
        rules, line = self.stitching, self.line
        assert rules is not None and line is not None
        track, person = assigned[slot]
        if person.person_id not in merge.motions:
            return
        merge.path.append((self.frame, line.signed_distance(anchor_point(track.box, self.anchor))))
        if len(merge.path) <= rules.part_frames:
            return
        (f0, d0), (f1, d1) = merge.path[-1 - rules.part_frames], merge.path[-1]
        speed = (d1 - d0) / max(f1 - f0, 1)
        mine = merge.motions[person.person_id]

        def across(motion: Motion) -> float:
            return line.signed_distance(motion.predicted(self.frame)) - line.signed_distance(
                motion.predicted(self.frame - 1)
            )

        limit = rules.handover_speed * mine.height
        own = across(mine)
        if abs(speed) < limit or own * speed >= 0 or abs(own) < limit:
            return
        others = [
            (abs(across(merge.motions[pid]) - speed), pid)
            for pid in members
            if pid != person.person_id
            and across(merge.motions[pid]) * speed > 0
            and abs(across(merge.motions[pid])) >= limit
            and self._people[pid].seen_at < self.frame
        ]
        if not others:
            return
        _cost, pid = min(others)
        self._reassign(assigned, merge, members, [slot], [0 if m == pid else None for m in members])
        # The person the box left: lost where the merge began, moving on as they were.
        keep = [i for i, (f, _p) in enumerate(person.history) if f < merge.started]
        if keep:
            person.history = [person.history[i] for i in keep]
            person.heights = [person.heights[i] for i in keep]
            person.boxes = [person.boxes[i] for i in keep]
            person.last_seen = person.history[-1][0]
            person.box = person.boxes[-1]
            person.path = [person.history[-1][1]]
        self.handed_over += 1
        if merge in self._merges:
            self._merges.remove(merge)

    def _reassign(
        self,
        assigned: list[tuple[Track, _Person]],
        merge: _Merge,
        members: Sequence[int],
        slots: Sequence[int],
        choice: Sequence[int | None],
    ) -> None:
        """Give the tracks in ``slots`` to the people of a merge as ``choice`` says; a track no person of the
        merge takes becomes a new person, a new person whose track was taken is dropped."""
        before = {assigned[slot][1].person_id for slot in slots}
        taken: set[int] = set()
        for pid, k in zip(members, choice, strict=True):
            if k is None:
                continue
            taken.add(k)
            track = assigned[slots[k]][0]
            person = self._people[pid]
            for tid in [t for t, p in self._owner.items() if p == pid]:
                del self._owner[tid]
            self._owner[track.track_id] = pid
            person.seen_at = self.frame
            keep = [i for i, (f, _p) in enumerate(person.history) if f < merge.started]
            person.history = [person.history[i] for i in keep]
            person.heights = [person.heights[i] for i in keep]
            person.boxes = [person.boxes[i] for i in keep]
            assigned[slots[k]] = (track, person)
        for k, slot in enumerate(slots):
            if k in taken:
                continue
            track = assigned[slot][0]
            person = _Person(self._next_person, seen_at=self.frame)
            self._next_person += 1
            self._people[person.person_id] = person
            self._owner[track.track_id] = person.person_id
            assigned[slot] = (track, person)
        live = {p.person_id for _t, p in assigned}
        for pid in before - live - set(members):
            self._people.pop(pid, None)  # a new person whose track went to someone of the merge

    def _adopt_fragments(self, assigned: list[tuple[Track, _Person]]) -> None:
        """The detector sometimes gives a walker a second, partial box (their upper body) that the tracker
        follows as a new track, and then loses the whole box (or the other way round: a new whole box beside the
        partial one it had): the other track is that person going on. A person lost in this frame whose last box
        held, or lay in (at least :data:`FRAGMENT_COVER`), the box of a young person seen with them in that
        frame, who has counted nothing yet, continues in that young person's track."""
        rules = self.stitching
        assert rules is not None
        lost = [p for p in self._people.values() if p.history and p.seen_at < self.frame == p.last_seen + 1]
        if not lost:
            return
        for k, (track, young) in enumerate(assigned):
            if young.last_counted or young.fragments > 1 or not young.history:
                continue
            if len(young.history) > rules.part_frames:
                continue
            owner = next(
                (
                    p
                    for p in lost
                    if self._fragment_of(young, p, at=p.last_seen) or self._fragment_of(p, young, at=p.last_seen)
                ),
                None,
            )
            if owner is None:
                continue
            lost.remove(owner)
            for tid in [t for t, pid in self._owner.items() if pid in (owner.person_id, young.person_id)]:
                del self._owner[tid]
            self._owner[track.track_id] = owner.person_id
            owner.seen_at = self.frame
            owner.fragments += 1
            del self._people[young.person_id]
            assigned[k] = (track, owner)
            self.stitched += 1

    @staticmethod
    def _fragment_of(person: _Person, other: _Person, at: int | None = None) -> bool:
        """True when ``person``'s box of frame ``at`` (default: the last frame they were seen) lay inside
        ``other``'s box of the same frame: a part of the same person (a head box inside a whole one), not
        someone else."""
        frame = person.last_seen if at is None else at
        mine = next((b for (f, _p), b in zip(person.history, person.boxes, strict=True) if f == frame), None)
        theirs = next((b for (f, _p), b in zip(other.history, other.boxes, strict=True) if f == frame), None)
        return mine is not None and theirs is not None and covered(mine, theirs) >= FRAGMENT_COVER

    def _whole_of_part(self, track: Track, assigned: list[tuple[Track, _Person]]) -> bool:
        """A new track whose box holds the much smaller box of one person followed this frame (their upper body,
        say) is that person seen whole again: the person moves to it (and their partial box is left out); someone
        never seen whole before takes their side from it without a crossing (:attr:`Stitching.reread`)."""
        height = max(track.box[3] - track.box[1], 1.0)
        held = [
            k
            for k, (t, _p) in enumerate(assigned)
            if covered(t.box, track.box) >= FRAGMENT_COVER and (t.box[3] - t.box[1]) < 0.75 * height
        ]
        if len(held) != 1:
            return False
        part, person = assigned[held[0]]
        self._owner.pop(part.track_id, None)
        self._owner[track.track_id] = person.person_id
        assigned[held[0]] = (track, person)
        return True

    def _holds_several(self, track: Track, tracks: Sequence[Track]) -> bool:
        """A new track whose box holds the boxes of two or more others of the same frame is a box round several
        people (the detector's non-maximum suppression keeps such boxes when they overlap each person too little):
        it starts no person of its own."""
        assert self.stitching is not None
        inside = sum(1 for t in tracks if t is not track and covered(t.box, track.box) >= self.stitching.merge_cover)
        return inside >= 2

    def _find_merges(self, assigned: Sequence[tuple[Track, _Person]]) -> None:
        rules = self.stitching
        assert rules is not None and self.line is not None
        merging = {pid for m in self._merges for pid in m.motions}
        lost = [
            p
            for p in self._people.values()
            if p.seen_at < self.frame and p.history and self.frame - p.last_seen <= 2 and p.person_id not in merging
        ]
        if not lost:
            return
        for track, carrier in assigned:
            if not carrier.history or carrier.seen_at != self.frame:
                continue
            height = max(track.box[3] - track.box[1], 1.0)
            if abs(self.line.signed_distance(anchor_point(track.box, self.anchor))) > rules.merge_near_line * height:
                continue
            gap = self.frame - carrier.last_seen
            vx, vy = carrier.velocity()
            if covered(shifted(carrier.box, vx * gap, vy * gap), track.box) < rules.merge_cover:
                continue
            hidden = []
            for person in lost:
                if self._fragment_of(person, carrier):
                    continue
                gap = self.frame - person.last_seen
                vx, vy = person.velocity()
                if covered(shifted(person.box, vx * gap, vy * gap), track.box) >= rules.merge_cover:
                    hidden.append(person)
            if not hidden:
                continue
            existing = next((m for m in self._merges if carrier.person_id in m.motions), None)
            if existing is None:
                existing = _Merge(self.frame, {carrier.person_id: self._motion(carrier)}, track.box)
                self._merges.append(existing)
            for person in hidden[: max(0, MAX_MERGE - len(existing.motions))]:
                lost.remove(person)
                existing.motions[person.person_id] = self._motion(person)
                self.merged += 1
            existing.box = track.box
            if not lost:
                return

    def _swapped(self, person: _Person, track: Track) -> bool:
        rules = self.stitching
        if rules is None or track.appearance is None or person.appearance is None:
            return False
        if appearance_similarity(track.appearance, person.appearance) >= rules.split_similarity:
            person.odd = 0
            return False
        person.odd += 1
        if person.odd < rules.split_after:
            return False
        person.odd = 0
        return True

    def _stitch(self, fresh: Sequence[Track]) -> list[tuple[Track, _Person]]:
        rules = self.stitching
        assert rules is not None
        lost = [
            p for p in self._people.values() if p.seen_at < self.frame and self.frame - p.last_seen <= rules.max_gap
        ]
        hidden_in = {pid: m for m in self._merges if not m.parted for pid in m.motions}
        options: list[tuple[float, int, int]] = []
        for ti, track in enumerate(fresh):
            point = anchor_point(track.box, self.anchor)
            height = max(track.box[3] - track.box[1], 1.0)
            for pi, person in enumerate(lost):
                if not person.history:
                    continue
                gap = self.frame - person.last_seen
                heights = person.heights or [max(person.box[3] - person.box[1], 1.0)]
                if not any(1 / rules.size_ratio <= height / h <= rules.size_ratio for h in heights):
                    continue
                last_height = max(heights)
                vx, vy = person.velocity()
                px, py = person.history[-1][1]
                predicted = (px + vx * gap, py + vy * gap)
                merge = hidden_in.get(person.person_id)
                if (
                    merge is not None
                    and covered(track.box, _grown(merge.box, 1.0)) < rules.merge_cover
                    and math.dist(point, predicted) > rules.hidden_reach * last_height
                ):
                    # Someone inside another's box does not come out of it somewhere else, unless where their
                    # own motion takes them (walking on behind the person in front).
                    continue
                reach = (rules.max_distance + rules.max_distance_per_frame * gap) * last_height
                dist = min(math.dist(point, predicted), math.dist(point, (px, py)))
                if dist > reach:
                    continue
                similarity = 1.0
                if track.appearance is not None and person.appearance is not None:
                    similarity = appearance_similarity(track.appearance, person.appearance)
                    if similarity < rules.min_similarity:
                        continue
                options.append((dist / reach + (1.0 - similarity), ti, pi))
        options.sort()
        used_t: set[int] = set()
        used_p: set[int] = set()
        chosen: list[tuple[Track, _Person]] = []
        for _cost, ti, pi in options:
            if ti in used_t or pi in used_p:
                continue
            used_t.add(ti)
            used_p.add(pi)
            chosen.append((fresh[ti], lost[pi]))
        return chosen

    def _step(self, state: _Person, track: Track) -> int:
        assert self.line is not None
        point = self._body_point(state, track.box)
        reread = (
            self.stitching is not None
            and self.stitching.reread
            and state.track_id is not None
            and state.track_id != track.track_id
            and state.whole_height < FIRST_WHOLE * (track.box[3] - track.box[1])
        )
        state.track_id = track.track_id
        state.last_seen = self.frame
        state.box = track.box
        state.history.append((self.frame, anchor_point(track.box, self.anchor)))
        state.heights.append(max(track.box[3] - track.box[1], 1.0))
        state.boxes.append(track.box)
        if len(state.history) > 6:
            del state.history[0]
            del state.heights[0]
            del state.boxes[0]
        if track.appearance is not None and state.odd == 0:  # not from a frame that looked like someone else
            if state.appearance is None:
                state.appearance = track.appearance
            else:  # a slow running mean: a glimpse half hidden by someone else does not replace it
                state.appearance = tuple(
                    0.8 * a + 0.2 * b for a, b in zip(state.appearance, track.appearance, strict=False)
                )
        state.path.append(point)
        if len(state.path) > self.max_path:
            del state.path[: len(state.path) - self.max_path]
        distance = self.line.signed_distance(point)
        if abs(distance) <= self.hysteresis:
            return 0
        side = 1 if distance > 0 else -1
        if side == state.side:
            state.path = [point]
            return 0
        body = self.stitching is not None and self.stitching.body
        if state.side != 0 and not body and self._leap(state, distance, track.box):
            return 0
        if reread:
            state.side, state.path = side, [point]
            return 0
        previous, state.side = state.side, side
        crossed = previous != 0 and self.line.crossed_by(state.path)
        state.path = [point]
        if not crossed:
            return 0
        if self.repeat == "alternate":
            if state.last_counted == side:
                return 0
        elif state.entered if side > 0 else state.exited:
            return 0
        state.last_counted = side
        if side > 0:
            state.entered = True
            return 1
        state.exited = True
        return -1

    def _body_point(self, state: _Person, box: Box) -> Point:
        """The anchor of the person in ``box``. A box under :data:`SHRUNK` of the person's whole height is a part
        of them: the rest is hidden (by someone in front, a pillar) or cut off at the edge of the picture, and
        its centre is not theirs (a half-hidden person turning back would seem to walk on over the line as their
        box shrinks). Of its top and bottom edges, the one that moved as the person was moving (since their last
        box) is where they are; the anchor is placed from it with their whole height. Heights follow the person:
        a taller box raises the whole height (at most :data:`WHOLE_GROWTH` a frame, so a box round two people
        does not), a slightly shorter one lowers it slowly (people seen further away)."""
        point = anchor_point(box, self.anchor)
        rules = self.stitching
        height = box[3] - box[1]
        whole = state.whole_height
        if rules is None or not rules.body or whole <= 0.0 or not state.history:
            state.whole_height = max(height, 1.0)
            return point
        if height >= SHRUNK * whole:
            state.steady = 0
            state.whole_height = (
                min(height, whole * WHOLE_GROWTH) if height > whole else whole + WHOLE_DECAY * (height - whole)
            )
            return point
        if state.steady == 0:
            # The edges of the person's last whole box, moved on as their whole boxes were moving.
            wholes = [
                (f, b) for (f, _p), b in zip(state.history, state.boxes, strict=True) if b[3] - b[1] >= WHOLE * whole
            ]
            if wholes:
                (f0, b0), (f1, b1) = wholes[0], wholes[-1]
                vy = ((b1[1] + b1[3]) - (b0[1] + b0[3])) / 2.0 / max(f1 - f0, 1) * (self.frame - f1)
                top = abs(box[1] - (b1[1] + vy))
                bottom = abs(box[3] - (b1[3] + vy))
                state.steady = -1 if top <= bottom else 1
            else:
                state.steady = -1
        if state.steady < 0:
            y = box[1] + (whole if self.anchor == "bottom" else whole / 2.0)
        else:
            y = box[3] - (0.0 if self.anchor == "bottom" else whole / 2.0)
        return (point[0], y)

    def _leap(self, state: _Person, distance: float, box: Box) -> bool:
        """True when this frame's box is much shorter than the person's usual ones (under :data:`SHRUNK` of their
        median height: a head or an upper body, the rest hidden by someone in front) and its anchor lies more
        than :data:`LEAP` box heights across the line from where the person's motion takes them: the box's
        centre moved, not the person, so it does not change their side. A person walking on while half hidden
        stays where their motion takes them and is counted."""
        assert self.line is not None
        if len(state.history) < 4:
            return False
        usual = statistics.median(state.heights[:-1])
        if box[3] - box[1] >= SHRUNK * usual:
            return False
        # Where the person's whole boxes were going (earlier parts of them left out).
        whole = [fp for fp, h in zip(state.history[:-1], state.heights[:-1], strict=True) if h >= SHRUNK * usual]
        if len(whole) < 2:
            return False
        (f0, p0), (f1, p1) = whole[0], whole[-1]
        before = self.line.signed_distance(p1)
        speed = (before - self.line.signed_distance(p0)) / max(f1 - f0, 1)
        return abs(distance - (before + speed * (self.frame - f1))) > LEAP * usual

    def _forget(self) -> None:
        stale = [pid for pid, p in self._people.items() if self.frame - p.last_seen > self.max_age]
        for pid in stale:
            del self._people[pid]
        if stale:
            gone = set(stale)
            for tid in [t for t, p in self._owner.items() if p in gone]:
                del self._owner[tid]
