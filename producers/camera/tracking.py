"""A small IoU tracker for detectors without their own (MOG2 blobs, or any boxes when ultralytics is absent).

Greedy matching frame to frame: first by intersection over union, then, for boxes that do not overlap any
more (fast movers at a low frame rate), by centre distance relative to the track's size. A detection that
matches nothing starts a new track; a track unmatched for more than ``max_age`` frames ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from producers.camera.counting import Box, Track


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre(box: Box) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


@dataclass
class _Live:
    track_id: int
    box: Box
    velocity: tuple[float, float] = (0.0, 0.0)
    missed: int = 0
    hits: int = 1

    def predicted(self) -> Box:
        vx, vy = self.velocity
        scale = self.missed + 1
        x1, y1, x2, y2 = self.box
        return (x1 + vx * scale, y1 + vy * scale, x2 + vx * scale, y2 + vy * scale)


class IouTracker:
    """Assigns stable ids to boxes across frames; :meth:`update` returns the tracks seen in this frame."""

    def __init__(self, iou_threshold: float = 0.2, max_distance: float = 1.0, max_age: int = 5) -> None:
        self.iou_threshold = iou_threshold
        self.max_distance = max_distance
        """Centre distance, in track diagonals, within which non-overlapping boxes still match."""
        self.max_age = max_age
        self._next_id = 1
        self._live: list[_Live] = []

    def update(self, boxes: Sequence[Box]) -> list[Track]:
        predicted = [t.predicted() for t in self._live]
        pairs: list[tuple[float, int, int]] = []
        for ti, pbox in enumerate(predicted):
            for di, box in enumerate(boxes):
                overlap = iou(pbox, box)
                if overlap >= self.iou_threshold:
                    pairs.append((overlap, ti, di))
        pairs.sort(reverse=True)
        matched_t: dict[int, int] = {}
        used_d: set[int] = set()
        for _score, ti, di in pairs:
            if ti not in matched_t and di not in used_d:
                matched_t[ti] = di
                used_d.add(di)
        # Second pass: boxes that moved too far to overlap, by centre distance.
        far: list[tuple[float, int, int]] = []
        for ti, pbox in enumerate(predicted):
            if ti in matched_t:
                continue
            diag = math.hypot(pbox[2] - pbox[0], pbox[3] - pbox[1])
            cx, cy = _centre(pbox)
            for di, box in enumerate(boxes):
                if di in used_d:
                    continue
                dx, dy = _centre(box)
                dist = math.hypot(dx - cx, dy - cy) / max(diag, 1e-6)
                if dist <= self.max_distance:
                    far.append((dist, ti, di))
        far.sort()
        for _dist, ti, di in far:
            if ti not in matched_t and di not in used_d:
                matched_t[ti] = di
                used_d.add(di)

        seen: list[Track] = []
        survivors: list[_Live] = []
        for ti, live in enumerate(self._live):
            hit = matched_t.get(ti)
            if hit is None:
                live.missed += 1
                if live.missed <= self.max_age:
                    survivors.append(live)
                continue
            box = boxes[hit]
            (ox, oy), (nx, ny) = _centre(live.box), _centre(box)
            steps = live.missed + 1
            live.velocity = ((nx - ox) / steps, (ny - oy) / steps)
            live.box, live.missed = box, 0
            live.hits += 1
            survivors.append(live)
            seen.append(Track(live.track_id, box))
        for di, box in enumerate(boxes):
            if di not in used_d:
                live = _Live(self._next_id, box)
                self._next_id += 1
                survivors.append(live)
                seen.append(Track(live.track_id, box))
        self._live = survivors
        return seen
