"""A small IoU tracker for detectors without their own (MOG2 blobs, or any boxes when ultralytics is absent).

Greedy matching frame to frame: first by intersection over union, then, for boxes that do not overlap any
more (fast movers at a low frame rate), by centre distance relative to the track's size. A detection that
matches nothing starts a new track; a track unmatched for more than ``max_age`` frames ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from producers.camera.counting import Box, Track, overlap


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    inter = overlap(a, b)
    if inter == 0:
        return 0.0
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

    def _match(
        self, predicted: list[Box], boxes: Sequence[Box], matched_t: dict[int, int], used_d: set[int], first: int
    ) -> None:
        """Greedy matching of unmatched tracks to the boxes from index ``first`` on: by IoU, then (boxes that moved
        too far to overlap) by centre distance in track diagonals."""
        pairs: list[tuple[float, int, int]] = []
        for ti, pbox in enumerate(predicted):
            if ti in matched_t:
                continue
            for di in range(first, len(boxes)):
                overlap = iou(pbox, boxes[di])
                if overlap >= self.iou_threshold:
                    pairs.append((overlap, ti, di))
        pairs.sort(reverse=True)
        for _score, ti, di in pairs:
            if ti not in matched_t and di not in used_d:
                matched_t[ti] = di
                used_d.add(di)
        far: list[tuple[float, int, int]] = []
        for ti, pbox in enumerate(predicted):
            if ti in matched_t:
                continue
            diag = math.hypot(pbox[2] - pbox[0], pbox[3] - pbox[1])
            cx, cy = _centre(pbox)
            for di in range(first, len(boxes)):
                if di in used_d:
                    continue
                dx, dy = _centre(boxes[di])
                dist = math.hypot(dx - cx, dy - cy) / max(diag, 1e-6)
                if dist <= self.max_distance:
                    far.append((dist, ti, di))
        far.sort()
        for _dist, ti, di in far:
            if ti not in matched_t and di not in used_d:
                matched_t[ti] = di
                used_d.add(di)

    def update(self, boxes: Sequence[Box], weak: Sequence[Box] = ()) -> list[Track]:
        """``weak`` boxes (low-confidence detections) only continue tracks the ``boxes`` did not, never start one."""
        predicted = [t.predicted() for t in self._live]
        matched_t: dict[int, int] = {}
        used_d: set[int] = set()
        self._match(predicted, boxes, matched_t, used_d, 0)
        everything = list(boxes)
        if weak:
            everything += list(weak)
            self._match(predicted, everything, matched_t, used_d, len(boxes))
        boxes = everything
        strong = len(everything) - len(weak)
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
        for di, box in enumerate(boxes[:strong]):
            if di not in used_d:
                live = _Live(self._next_id, box)
                self._next_id += 1
                survivors.append(live)
                seen.append(Track(live.track_id, box))
        self._live = survivors
        return seen


@dataclass(frozen=True)
class Detection:
    """One detected person: box in pixels, confidence, an optional colour histogram of its crop, and the pose
    head's keypoints where the detector has one (17 COCO keypoints ``(x, y, confidence)`` in pixels)."""

    box: Box
    conf: float
    appearance: tuple[float, ...] | None = None
    keypoints: tuple[tuple[float, float, float], ...] | None = None


class DetectionTracker:
    """Base of the trackers that turn per-frame :class:`Detection` lists into :class:`Track` lists."""

    name = "tracker"

    def update(self, detections: Sequence[Detection], shape: tuple[int, int]) -> list[Track]:
        """Tracks seen in this frame (``shape``: frame height, width)."""
        raise NotImplementedError


class IouDetectionTracker(DetectionTracker):
    """:class:`IouTracker` on detections at or above ``conf``."""

    name = "iou"

    def __init__(self, conf: float = 0.25, weak_conf: float = 0.1, max_age: int = 5, max_distance: float = 0.5) -> None:
        self.conf = conf
        self.weak_conf = weak_conf
        # Half a box diagonal: a lost track must not take over someone else appearing nearby (the line
        # counter's stitching joins fragments, with appearance and motion checks).
        self.tracker = IouTracker(max_age=max_age, max_distance=max_distance)

    def update(self, detections: Sequence[Detection], shape: tuple[int, int]) -> list[Track]:
        strong = [d for d in detections if d.conf >= self.conf]
        weak = [d for d in detections if self.weak_conf <= d.conf < self.conf]
        by_box = {id(d.box): d for d in strong + weak}
        tracks = self.tracker.update([d.box for d in strong], [d.box for d in weak])
        return [Track(t.track_id, t.box, _appearance_of(by_box.get(id(t.box)))) for t in tracks]


def _appearance_of(detection: Detection | None) -> tuple[float, ...] | None:
    return detection.appearance if detection is not None else None


class UltralyticsTracker(DetectionTracker):
    """ultralytics' ByteTrack (``bytetrack``) or BoT-SORT without re-identification weights and without camera
    motion compensation (``botsort``; a door camera does not move), on detections given to it: what
    ``model.track`` does after its detector, with the frame rate actually processed."""

    def __init__(self, kind: str = "bytetrack", fps: float = 25.0, buffer_s: float | None = None) -> None:
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        if kind not in ("bytetrack", "botsort"):
            raise ValueError(f"unknown ultralytics tracker {kind!r}")
        cfg = YAML.load(check_yaml(f"{kind}.yaml"))
        if kind == "botsort":
            cfg.update(with_reid=False, gmc_method="none")
        if buffer_s is not None:  # ultralytics keeps a lost track for track_buffer frames (30 by default)
            cfg["track_buffer"] = max(1, round(buffer_s * fps))
        args = IterableSimpleNamespace(**cfg)
        self.name = kind
        self.tracker: Any = (BOTSORT if kind == "botsort" else BYTETracker)(args)

    def update(self, detections: Sequence[Detection], shape: tuple[int, int]) -> list[Track]:
        from ultralytics.engine.results import Boxes

        data = np.array([[*d.box, d.conf, 0.0] for d in detections], dtype=np.float32).reshape(-1, 6)
        rows = self.tracker.update(Boxes(data, shape), None)
        tracks = []
        for row in rows:
            idx = int(row[-1])
            tracks.append(
                Track(
                    int(row[4]),
                    (float(row[0]), float(row[1]), float(row[2]), float(row[3])),
                    detections[idx].appearance,
                )
            )
        return tracks


class NorfairTracker(DetectionTracker):
    """norfair's tracker with its IoU distance on box corners (no appearance embedding)."""

    name = "norfair"

    def __init__(self, conf: float = 0.25, fps: float = 25.0) -> None:
        import norfair

        self.conf = conf
        self._norfair = norfair
        self.tracker = norfair.Tracker(
            distance_function="iou", distance_threshold=0.8, hit_counter_max=round(fps), initialization_delay=1
        )

    def update(self, detections: Sequence[Detection], shape: tuple[int, int]) -> list[Track]:
        nf = self._norfair
        dets = [
            nf.Detection(
                np.array([[d.box[0], d.box[1]], [d.box[2], d.box[3]]]), scores=np.array([d.conf, d.conf]), data=d
            )
            for d in detections
            if d.conf >= self.conf
        ]
        now = {id(d) for d in dets}
        tracks = []
        for obj in self.tracker.update(detections=dets):
            last: Any = obj.last_detection
            if id(last) not in now or obj.id is None:  # only people seen in this frame
                continue
            x1, y1, x2, y2 = (float(v) for v in np.asarray(last.points).ravel()[:4])
            tracks.append(Track(int(obj.id), (x1, y1, x2, y2), last.data.appearance))
        return tracks


TRACKERS = ("bytetrack", "botsort", "norfair", "iou")


def build_detection_tracker(
    name: str, fps: float, conf: float = 0.25, buffer_s: float | None = None
) -> DetectionTracker:
    """A tracker by name: ``bytetrack``/``botsort`` (ultralytics), ``norfair``, ``iou`` (no dependency);
    ``buffer_s``: how long ultralytics' trackers keep a lost track (default: their 30 frames)."""
    if name in ("bytetrack", "botsort"):
        return UltralyticsTracker(name, fps, buffer_s)
    if name == "norfair":
        try:
            return NorfairTracker(conf, fps)
        except ImportError:
            raise ValueError("tracker norfair needs the norfair package (pip install norfair)") from None
    if name == "iou":
        return IouDetectionTracker(conf)
    raise ValueError(f"unknown tracker {name!r}; use one of {', '.join(TRACKERS)}")
