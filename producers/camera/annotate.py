"""Pictures for installers: the door line on a frame (inside shaded, an arrow for "entry"), and frames with
boxes, person ids, trajectories and each counted crossing. Drawing only; nothing here decides a count.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from producers.camera.counting import DoorLine, FrameCount, Point, Track, anchor_point

LINE_COLOUR = (0, 0, 255)  # BGR red
INSIDE_COLOUR = (0, 200, 0)  # BGR green
ARROW_COLOUR = (255, 255, 255)
INSIDE_ALPHA = 0.35


def inside_mask(line: DoorLine, width: int, height: int, step: int = 4) -> np.ndarray:
    """Boolean ``height x width`` mask of the inside side (computed on a ``step``-pixel grid, then enlarged)."""
    cols, rows = math.ceil(width / step), math.ceil(height / step)
    small = np.zeros((rows, cols), np.uint8)
    for r in range(rows):
        y = min(height - 1, r * step + step / 2)
        for c in range(cols):
            small[r, c] = line.signed_distance((min(width - 1, c * step + step / 2), y)) > 0
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def midpoint_and_normal(line: DoorLine) -> tuple[Point, Point]:
    """The point halfway along the line and the unit normal there pointing inside."""
    half = line.length() / 2
    walked = 0.0
    for a, b in itertools.pairwise(line.points):
        seg = math.hypot(b[0] - a[0], b[1] - a[1])
        if walked + seg >= half:
            t = (half - walked) / seg
            mid = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
            nx, ny = -(b[1] - a[1]) / seg, (b[0] - a[0]) / seg  # screen-right of a->b (y down)
            return mid, (nx * line.inside_side, ny * line.inside_side)
        walked += seg
    raise AssertionError("unreachable: a door line has length")


@dataclass
class DoorOverlay:
    """The door drawn over frames of one size: the shaded inside is computed once."""

    line: DoorLine
    width: int
    height: int
    mask: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mask = inside_mask(self.line, self.width, self.height)

    def draw(self, image: np.ndarray) -> np.ndarray:
        out = image.copy()
        tint = np.array(INSIDE_COLOUR, np.float32)
        region = out[self.mask].astype(np.float32)
        out[self.mask] = (region * (1 - INSIDE_ALPHA) + tint * INSIDE_ALPHA).astype(np.uint8)
        pts = np.array([[round(x), round(y)] for x, y in self.line.points], np.int32)
        thickness = max(2, round(min(self.width, self.height) / 160))
        cv2.polylines(out, [pts], False, LINE_COLOUR, thickness, cv2.LINE_AA)
        (mx, my), (nx, ny) = midpoint_and_normal(self.line)
        length = min(self.width, self.height) * 0.12
        start = (round(mx - nx * length), round(my - ny * length))
        end = (round(mx + nx * length), round(my + ny * length))
        cv2.arrowedLine(out, start, end, ARROW_COLOUR, thickness + 1, cv2.LINE_AA, tipLength=0.3)
        label = (round(mx + nx * length * 1.25) - 30, round(my + ny * length * 1.25) + 8)
        cv2.putText(out, "entry", label, cv2.FONT_HERSHEY_SIMPLEX, 0.7, ARROW_COLOUR, 2, cv2.LINE_AA)
        return out


def _colour(person: int) -> tuple[int, int, int]:
    hue = (person * 47) % 180
    bgr = cv2.cvtColor(np.array([[[hue, 200, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return (int(bgr[0]), int(bgr[1]), int(bgr[2]))


@dataclass
class Annotator:
    """Draws boxes, person ids, trajectories and counted crossings over frames, one frame after another."""

    overlay: DoorOverlay
    trail: int = 40
    flash_frames: int = 12
    _paths: dict[int, deque[Point]] = field(default_factory=dict)
    _flashes: list[tuple[int, Point, str]] = field(default_factory=list)
    entries: int = 0
    exits: int = 0

    def draw(
        self, image: np.ndarray, tracks: Sequence[Track], counted: FrameCount, people: dict[int, int] | None = None
    ) -> np.ndarray:
        """``people`` maps a track id to the person it was stitched to (the id drawn); default: the track id."""
        out = self.overlay.draw(image)
        people = people or {}
        for track in tracks:
            person = people.get(track.track_id, track.track_id)
            colour = _colour(person)
            x1, y1, x2, y2 = (round(v) for v in track.box)
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
            cv2.putText(out, f"#{person}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2)
            path = self._paths.setdefault(person, deque(maxlen=self.trail))
            path.append(anchor_point(track.box))
            if len(path) > 1:
                pts = np.array([[round(x), round(y)] for x, y in path], np.int32)
                cv2.polylines(out, [pts], False, colour, 2)
            if track.track_id in counted.entered_ids:
                self._flashes.append((self.flash_frames, anchor_point(track.box), "IN +1"))
            if track.track_id in counted.exited_ids:
                self._flashes.append((self.flash_frames, anchor_point(track.box), "OUT +1"))
        self.entries += counted.entries
        self.exits += counted.exits
        kept = []
        for left, (x, y), text in self._flashes:
            colour = (0, 255, 0) if text.startswith("IN") else (0, 128, 255)
            cv2.putText(out, text, (round(x) - 25, round(y)), cv2.FONT_HERSHEY_SIMPLEX, 0.8, colour, 2, cv2.LINE_AA)
            if left > 1:
                kept.append((left - 1, (x, y), text))
        self._flashes = kept
        cv2.putText(
            out, f"in {self.entries}  out {self.exits}", (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2
        )
        return out


class FrameWriter:
    """Annotated frames to an ``.mp4``/``.avi`` file, or numbered PNGs into a folder (any other path)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self.video = path.suffix.lower() in (".mp4", ".avi", ".mkv")
        self._writer: cv2.VideoWriter | None = None
        self.count = 0
        if not self.video:
            path.mkdir(parents=True, exist_ok=True)

    def write(self, image: np.ndarray) -> None:
        if self.video:
            if self._writer is None:
                fourcc = cv2.VideoWriter.fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
                height, width = image.shape[:2]
                self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
                if not self._writer.isOpened():
                    raise OSError(f"cannot write video {self.path}")
            self._writer.write(image)
        elif not cv2.imwrite(str(self.path / f"frame-{self.count:06d}.png"), image):
            raise OSError(f"cannot write {self.path / f'frame-{self.count:06d}.png'}")
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
