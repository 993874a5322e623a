"""Rendered test videos with known paths: people (blobs or real person crops) walking over a background.

Used by the tests and the benchmark to get exact ground truth: every walker has keyframed positions, so the
number of door-line crossings is known before the video is made.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Walker:
    """A figure whose centre follows straight segments between keyframes ``(frame, x, y)``."""

    keyframes: tuple[tuple[int, float, float], ...]
    sprite: np.ndarray | None = None
    """A BGR image pasted centred on the position; None draws a textured ellipse (an overhead head)."""
    size: tuple[int, int] = (34, 28)
    """Ellipse width and height in pixels when there is no sprite."""
    colour: tuple[int, int, int] = (40, 40, 160)

    def position(self, frame: int) -> tuple[float, float] | None:
        keys = self.keyframes
        if frame < keys[0][0] or frame > keys[-1][0]:
            return None
        for (f0, x0, y0), (f1, x1, y1) in itertools.pairwise(keys):
            if f0 <= frame <= f1:
                t = (frame - f0) / (f1 - f0) if f1 > f0 else 0.0
                return (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        return (keys[-1][1], keys[-1][2])


def walk(start: int, points: Sequence[tuple[float, float]], speed: float) -> tuple[tuple[int, float, float], ...]:
    """Keyframes for walking through ``points`` at ``speed`` pixels per frame, starting at frame ``start``."""
    keys = [(start, float(points[0][0]), float(points[0][1]))]
    frame = float(start)
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        frame += max(1.0, float(np.hypot(x1 - x0, y1 - y0)) / speed)
        keys.append((round(frame), float(x1), float(y1)))
    return tuple(keys)


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A static floor: smooth random texture with a gradient and tile lines."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    img = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    img = cv2.GaussianBlur(img, (0, 0), 3)
    img = (img.astype(np.float32) * 0.35 + 120).astype(np.uint8)
    for x in range(0, width, 40):
        cv2.line(img, (x, 0), (x, height - 1), (100, 100, 100), 1)
    for y in range(0, height, 40):
        cv2.line(img, (0, y), (width - 1, y), (100, 100, 100), 1)
    return img


def _paste(frame: np.ndarray, sprite: np.ndarray, cx: float, cy: float) -> None:
    h, w = sprite.shape[:2]
    x0, y0 = round(cx - w / 2), round(cy - h / 2)
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(frame.shape[1], x0 + w), min(frame.shape[0], y0 + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    frame[fy0:fy1, fx0:fx1] = sprite[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]


def render(
    walkers: Sequence[Walker], width: int, height: int, frames: int, seed: int = 0, noise: float = 2.0
) -> Iterator[np.ndarray]:
    """Yield ``frames`` BGR frames: the background, sensor noise, and every walker visible at that frame."""
    base = background(width, height, seed)
    rng = np.random.default_rng(seed + 1)
    for index in range(frames):
        frame = base.copy()
        for walker in walkers:
            pos = walker.position(index)
            if pos is None:
                continue
            if walker.sprite is not None:
                _paste(frame, walker.sprite, *pos)
            else:
                centre = (round(pos[0]), round(pos[1]))
                axes = (walker.size[0] // 2, walker.size[1] // 2)
                cv2.ellipse(frame, centre, axes, 0, 0, 360, walker.colour, -1)
                cv2.ellipse(frame, centre, (axes[0] // 2, axes[1] // 2), 0, 0, 360, (30, 20, 20), -1)
        if noise:
            jitter = rng.normal(0, noise, frame.shape).astype(np.int16)
            frame = np.clip(frame.astype(np.int16) + jitter, 0, 255).astype(np.uint8)
        yield frame


def write_video(path: Path, frames: Iterator[np.ndarray] | Sequence[np.ndarray], fps: float) -> int:
    """Write frames to an MJPG .avi (always available in OpenCV builds); returns the frame count."""
    writer: cv2.VideoWriter | None = None
    count = 0
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
                if not writer.isOpened():
                    raise RuntimeError(f"cannot write video {path}")
            writer.write(frame)
            count += 1
    finally:
        if writer is not None:
            writer.release()
    return count


# (image, x1, y1, x2, y2) in ultralytics' assets: two people standing in bus.jpg and the man on the right in
# zidane.jpg. Read off the images once and fixed here. (The third person in bus.jpg is cut by the picture's
# edge and is not found once cropped.)
ASSET_PEOPLE = (
    ("bus.jpg", 48, 400, 244, 906),
    ("bus.jpg", 223, 405, 344, 859),
    ("zidane.jpg", 744, 37, 1142, 710),
)


def asset_person(index: int, height: int) -> np.ndarray:
    """A real person cropped from ultralytics' assets, scaled to ``height`` pixels."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("ultralytics is not installed; its assets hold the person images")
    name, x1, y1, x2, y2 = ASSET_PEOPLE[index]
    image = cv2.imread(str(Path(next(iter(spec.submodule_search_locations))) / "assets" / name))
    if image is None:
        raise RuntimeError(f"cannot read ultralytics asset {name}")
    crop = image[y1:y2, x1:x2]
    return cv2.resize(crop, (round(crop.shape[1] * height / crop.shape[0]), height), interpolation=cv2.INTER_AREA)


SIDE_VIEW = (640, 480)
SIDE_VIEW_LINE = ((0.5, 0.0), (0.5, 1.0))
SIDE_VIEW_INSIDE = (0.9, 0.5)
"""A vertical door in the middle of a 640x480 side view (relative coordinates); inside is the right half."""
SIDE_VIEW_EXPECTED = (3, 1)


def side_view_scene(speed: float) -> tuple[list[Walker], int]:
    """Real people in a side view: one enters, one leaves, one turns back 45 px before the door, then two
    enter together (one above the other). Returns the walkers and the frame count; 3 entries, 1 exit."""
    a, b, c = asset_person(0, 220), asset_person(2, 220), asset_person(1, 220)
    top, bottom = asset_person(2, 200), asset_person(0, 200)
    gap = 8
    walkers = [Walker(walk(0, [(60, 240), (580, 240)], speed), sprite=a)]
    t = walkers[-1].keyframes[-1][0] + gap
    walkers.append(Walker(walk(t, [(580, 240), (60, 240)], speed), sprite=b))
    t = walkers[-1].keyframes[-1][0] + gap
    walkers.append(Walker(walk(t, [(60, 240), (250, 240), (60, 240)], speed), sprite=c))
    t = walkers[-1].keyframes[-1][0] + gap
    walkers.append(Walker(walk(t, [(60, 115), (580, 115)], speed), sprite=top))
    walkers.append(Walker(walk(t, [(100, 365), (600, 365)], speed), sprite=bottom))
    return walkers, walkers[-1].keyframes[-1][0] + gap


OVERHEAD_VIEW = (320, 240)
OVERHEAD_LINE = ((0.05, 0.5), (0.95, 0.5))
"""A door across the middle of an overhead view; inside is down the screen (right of the line walked west-east)."""
OVERHEAD_FRAMES = 330
OVERHEAD_EXPECTED = (3, 1)


def overhead_scene() -> list[Walker]:
    """Heads seen from above crossing a door at y=120 (hysteresis band 7 px at 0.03): one enters, one leaves,
    one turns back 14 px before the line, one hovers over the line inside the band and goes back out, then two
    enter side by side (46 px apart). 330 frames; 3 entries, 1 exit."""
    return [
        Walker(walk(5, [(80, -20), (80, 260)], 4)),
        Walker(walk(20, [(240, 260), (240, -20)], 4), colour=(160, 60, 30)),
        Walker(walk(95, [(160, -20), (160, 106), (160, -20)], 4), colour=(30, 140, 30)),
        Walker(walk(160, [(100, -20), (100, 117), (100, 124), (100, 116), (100, 125), (100, -20)], 3)),
        Walker(walk(250, [(120, -20), (120, 260)], 4)),
        Walker(walk(250, [(200, -20), (200, 260)], 4), colour=(20, 120, 160)),
    ]
