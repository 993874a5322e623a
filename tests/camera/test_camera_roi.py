"""Detecting only in the band round the door line: the rectangle, and boxes back in the frame's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from producers.camera.detectors import door_roi
from producers.camera.doorset import SIZE, _paste, _sprite, floor, make_video


def test_roi_of_a_vertical_line_is_a_band_of_the_margin_each_side() -> None:
    # 640x480, line x=320 from y=24 to y=456, margin 0.3 of 480 = 144 px.
    assert door_roi([(320.0, 24.0), (320.0, 456.0)], 640, 480, 0.3) == (176, 0, 464, 480)


def test_roi_of_a_horizontal_line_spans_the_width_and_is_clipped_to_the_frame() -> None:
    assert door_roi([(19.2, 240.0), (620.8, 240.0)], 640, 480, 0.2) == (0, 144, 640, 336)


def test_roi_of_a_bent_line_covers_every_point() -> None:
    roi = door_roi([(100.0, 300.0), (320.0, 250.0), (540.0, 310.5)], 640, 480, 0.1)
    assert roi == (52, 202, 588, 359)


def test_roi_outside_the_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the 640x480 frame"):
        door_roi([(700.0, 10.0), (800.0, 20.0)], 640, 480, 0.05)


@pytest.mark.camera
def test_detection_in_the_roi_gives_boxes_in_frame_pixels(tmp_path: Path) -> None:
    from producers.camera.detectors import YoloDetector

    video = make_video("roi", "side", 5, 8.0, occluded=False, lights=False)
    image = floor("side", 5).copy()
    look = video.walkers[0].look
    sprite, alpha = _sprite(look, 200)
    _paste(image, sprite, alpha, 300.0, 250.0)  # a person standing on the door line
    _paste(image, sprite, alpha, 580.0, 250.0)  # and one far from it, outside the band
    frame = np.clip(image, 0, 255).astype(np.uint8)
    detector = YoloDetector(None, tmp_path / "ultralytics", imgsz=480)
    everywhere = [d for d in detector.detect(frame) if d.conf >= 0.25]
    detector.roi = door_roi([(320.0, 24.0), (320.0, 456.0)], SIZE[0], SIZE[1], 0.3)
    in_band = [d for d in detector.detect(frame) if d.conf >= 0.25]
    assert len(everywhere) == 2
    assert len(in_band) == 1  # the person outside the band is not looked for
    (box,) = [d.box for d in in_band]
    near = min(everywhere, key=lambda d: abs((d.box[0] + d.box[2]) / 2 - 300))
    assert all(abs(a - b) < 6 for a, b in zip(box, near.box, strict=True))
    assert 280 < (box[0] + box[2]) / 2 < 320 and 230 < (box[1] + box[3]) / 2 < 270
    assert in_band[0].appearance is not None


def test_camera_setting_detect_band_gives_the_rectangle_in_the_frames_pixels() -> None:
    from pydantic import ValidationError

    from producers.camera.config import CameraSettings

    door = {"door_line": ((0.5, 0.05), (0.5, 0.95)), "entering": "right"}
    assert CameraSettings(**door).detect_roi(640, 480) == (176, 0, 464, 480)  # the default band, 0.3
    assert CameraSettings(**door, detect_band=0.3).detect_roi(1280, 960) == (352, 0, 928, 960)
    assert CameraSettings(**door, detect_band=0.1).detect_roi(640, 480) == (272, 0, 368, 480)
    assert CameraSettings(**door, detect_band=0).detect_roi(640, 480) is None  # 0: the whole frame
    assert CameraSettings(detect_band=0.3).detect_roi(640, 480) is None  # no door line: nothing to crop round
    with pytest.raises(ValidationError, match="detect_band"):
        CameraSettings(**door, detect_band=-0.1)


def test_the_band_is_detected_at_480_px_and_the_whole_frame_at_camera_imgsz() -> None:
    from producers.camera.config import CameraSettings

    door = {"door_line": ((0.5, 0.05), (0.5, 0.95)), "entering": "right"}
    assert CameraSettings(**door).default_imgsz(320) == 480
    assert CameraSettings(**door, detect_band=0).default_imgsz(320) == 320
    assert CameraSettings().default_imgsz(320) == 320  # a zone camera: the whole frame
