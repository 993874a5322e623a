"""Where the door-count errors come from: the detector, or tracking and counting.

The door set's truth is geometric, so every walker's box is known in every frame (:func:`truth_boxes`: the
pasted cut-out's rectangle, with the share of it left visible by the people drawn in front and the pillar).
That gives two things the accuracy bench prints with ``--explain``:

- an *oracle* run (``--oracle``): the counters fed the true boxes of everyone at least ``ORACLE_VISIBLE``
  visible, instead of the detector's. The visible share is of rectangles, which overstates what people in front
  hide (a cut-out's rectangle is partly transparent), so the oracle drops boxes the detector does see: read it
  as a rough check, not as the best counting could do;
- for each crossing a counter missed, whether the detector saw that walker on both sides of the door
  (beyond the hysteresis band, within a second of the crossing, without a gap longer than a second in
  between): if not, it is a *detector* miss, otherwise a *tracking/counting* one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from producers.camera.audit import Crossing
from producers.camera.counting import Box
from producers.camera.doorset import FPS, SIZE, DoorVideo, _styled, person_height
from producers.camera.tracking import Detection, iou

ORACLE_VISIBLE = 0.35
"""True boxes at least this visible are given to the counters in the oracle run."""


@dataclass(frozen=True)
class TrueBox:
    walker: int
    box: Box
    visible: float
    """Share of the box not hidden by people in front, the pillar, or the picture's edge (rectangles)."""


def _box_of(video: DoorVideo, walker: int, point: tuple[float, float]) -> Box:
    w = video.walkers[walker]
    image, _alpha = _styled(w.look)
    height = round(person_height(video.view, point[1]))
    width = max(2, round(image.shape[1] * height / image.shape[0]))
    x0, y0 = round(point[0] - width / 2), round(point[1] - height / 2)
    return (float(x0), float(y0), float(x0 + width), float(y0 + height))


def truth_boxes(video: DoorVideo, frame: int) -> list[TrueBox]:
    """Every walker in ``frame`` with its box and visible share (drawn far first, as the renderer does)."""
    present = [(i, w.at(frame)) for i, w in enumerate(video.walkers)]
    people = sorted(((i, p) for i, p in present if p is not None), key=lambda ip: ip[1][1])
    boxes = [(i, _box_of(video, i, p)) for i, p in people]
    out = []
    scale = 4
    w, h = SIZE[0] // scale, SIZE[1] // scale
    for k, (i, box) in enumerate(boxes):
        x1, y1, x2, y2 = (round(v / scale) for v in box)
        area = max(1, (x2 - x1) * (y2 - y1))
        cx1, cy1, cx2, cy2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if cx2 <= cx1 or cy2 <= cy1:
            out.append(TrueBox(i, box, 0.0))
            continue
        mask = np.ones((cy2 - cy1, cx2 - cx1), bool)
        covers = [b for _j, b in boxes[k + 1 :]] + [
            (float(o.x1), float(o.y1), float(o.x2), float(o.y2)) for o in video.occluders
        ]
        for c in covers:
            a1, b1, a2, b2 = (round(v / scale) for v in c)
            a1, b1, a2, b2 = max(a1, cx1), max(b1, cy1), min(a2, cx2), min(b2, cy2)
            if a2 > a1 and b2 > b1:
                mask[b1 - cy1 : b2 - cy1, a1 - cx1 : a2 - cx1] = False
        out.append(TrueBox(i, box, float(mask.sum()) / area))
    return out


def oracle_detections(video: DoorVideo, frames: Sequence[int]) -> list[list[Detection]]:
    """The true boxes of everyone at least :data:`ORACLE_VISIBLE` visible, clipped to the picture, as
    detections of confidence 0.9 (no colours)."""
    out = []
    for f in frames:
        dets = []
        for tb in truth_boxes(video, f):
            if tb.visible < ORACLE_VISIBLE:
                continue
            x1, y1, x2, y2 = tb.box
            dets.append(Detection((max(0.0, x1), max(0.0, y1), min(SIZE[0], x2), min(SIZE[1], y2)), 0.9, None))
        out.append(dets)
    return out


def _matched(det: Detection, tb: TrueBox) -> bool:
    """A detection is of this walker when it overlaps their box, or lies mostly inside it (a person seen in
    part, over a pillar)."""
    if iou(det.box, tb.box) >= 0.3:
        return True
    x1, y1, x2, y2 = det.box
    area = max((x2 - x1) * (y2 - y1), 1.0)
    ix = min(x2, tb.box[2]) - max(x1, tb.box[0])
    iy = min(y2, tb.box[3]) - max(y1, tb.box[1])
    return ix > 0 and iy > 0 and ix * iy / area >= 0.8 and (y2 - y1) >= 0.3 * (tb.box[3] - tb.box[1])


@dataclass
class Explained:
    detector: Counter[str]
    tracking: Counter[str]
    false_by_view: Counter[str]


def explain(
    video: DoorVideo,
    frames: Sequence[int],
    detections: Sequence[Sequence[Detection]],
    missed: Sequence[Crossing],
    false: Sequence[Crossing],
    hysteresis: float,
    conf: float = 0.25,
) -> Explained:
    """Each missed crossing (by time and direction) put down to the detector or to tracking/counting, by the
    walker's kind (``single``, ``group``, ``pair``, ...)."""
    door = video.geometry.door()
    truth = video.truth()
    by_frame = {f: k for k, f in enumerate(frames)}
    result = Explained(Counter(), Counter(), Counter())
    used: set[int] = set()
    for m in missed:
        # The true crossing this miss is (nearest in time, same direction, not taken yet).
        options = [
            (abs(c.seconds - m.seconds), n) for n, c in enumerate(truth) if c.direction == m.direction and n not in used
        ]
        if not options:
            continue
        _gap, n = min(options)
        used.add(n)
        crossing = truth[n]
        walker = video.walkers[crossing.walker]
        old = -1 if crossing.direction == "in" else 1
        seen_before = seen_after = False
        run = longest = 0
        window = round(FPS)
        for f in range(crossing.frame - window, crossing.frame + window + 1):
            k = by_frame.get(f)
            point = walker.at(f)
            if k is None or point is None:
                continue
            mine = next(tb for tb in truth_boxes(video, f) if tb.walker == crossing.walker)
            hit = any(d.conf >= conf and _matched(d, mine) for d in detections[k])
            hit_weak = hit or any(_matched(d, mine) for d in detections[k])
            d = door.signed_distance(point)
            if hit and f < crossing.frame and d * old > hysteresis:
                seen_before = True
            if hit and f >= crossing.frame and d * -old > hysteresis:
                seen_after = True
            if seen_before and not seen_after:
                run = 0 if hit_weak else run + 1
                longest = max(longest, run)
        kind = f"{video.view}/{walker.kind}"
        if seen_before and seen_after and longest * (frames[1] - frames[0] if len(frames) > 1 else 1) <= FPS:
            result.tracking[kind] += 1
        else:
            result.detector[kind] += 1
    for _f in false:
        result.false_by_view[video.view] += 1
    return result


def merge(parts: Sequence[Explained]) -> Explained:
    out = Explained(Counter(), Counter(), Counter())
    for p in parts:
        out.detector.update(p.detector)
        out.tracking.update(p.tracking)
        out.false_by_view.update(p.false_by_view)
    return out


def describe(e: Explained) -> str:
    def fmt(c: Counter[str]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])) or "none"

    d, t = sum(e.detector.values()), sum(e.tracking.values())
    return (
        f"missed {d + t}: detector {d} ({fmt(e.detector)}); tracking/counting {t} ({fmt(e.tracking)}); "
        f"false by view: {fmt(e.false_by_view)}"
    )
