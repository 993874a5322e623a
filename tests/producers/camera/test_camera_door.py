"""The inside side of a door line: said so that nobody reads it backwards, and refused when it reads two ways."""

from __future__ import annotations

import pytest

from producers.camera.config import CameraConfigError, camera_settings
from producers.camera.counting import AmbiguousDoorError, DoorLine, crossing_directions
from schemas.catalogue import Camera

VERTICAL_DOWN = ((0.5, 0.0), (0.5, 1.0))
VERTICAL_UP = ((0.5, 1.0), (0.5, 0.0))
HORIZONTAL = ((0.05, 0.5), (0.95, 0.5))


def settings_of(**keys: object):  # type: ignore[no-untyped-def]
    return camera_settings(Camera.model_validate({"id": "door", "store_id": "s1", "role": "entrance", **keys}))


def inside_is_right(**keys: object) -> bool:
    line = settings_of(**keys).door(640, 480)
    assert line is not None
    right, left = line.signed_distance((600, 240)), line.signed_distance((40, 240))
    assert (right > 0) != (left > 0)
    return right > 0


def test_entering_names_the_side_people_walk_to_whatever_way_the_line_is_drawn() -> None:
    assert inside_is_right(door_line=VERTICAL_DOWN, entering="right")
    assert inside_is_right(door_line=VERTICAL_UP, entering="right")
    assert not inside_is_right(door_line=VERTICAL_DOWN, entering="left")
    assert not inside_is_right(door_line=VERTICAL_UP, entering="left")
    line = settings_of(door_line=HORIZONTAL, entering="down").door(640, 480)
    assert line is not None and line.signed_distance((320, 400)) > 0 > line.signed_distance((320, 80))


def test_an_inside_point_names_the_side() -> None:
    assert inside_is_right(door_line=VERTICAL_DOWN, inside=[0.75, 0.5])
    assert not inside_is_right(door_line=VERTICAL_UP, inside=[0.25, 0.9])


def test_a_direction_along_the_line_is_refused_with_the_directions_that_work() -> None:
    with pytest.raises(CameraConfigError, match=r"camera 'door': entering: up runs along the door line.*right or left"):
        settings_of(door_line=VERTICAL_DOWN, entering="up")
    # A diagonal 20 degrees off horizontal: "right" runs along it, "down" crosses it.
    diagonal = ((0.0, 0.4), (1.0, 0.4 + 0.364 * 0.75))
    with pytest.raises(CameraConfigError, match="entering: right runs along"):
        settings_of(door_line=diagonal, entering="right")
    assert settings_of(door_line=diagonal, entering="down").door(100, 100) is not None
    # A U round a door crossed both ways by every direction: only a point says it.
    u_shape = ((0.2, 1.0), (0.2, 0.4), (0.8, 0.4), (0.8, 1.0))
    assert crossing_directions(u_shape) == []
    with pytest.raises(CameraConfigError, match=r"bends too much.*inside: \[x, y\]"):
        settings_of(door_line=u_shape, entering="down")
    line = settings_of(door_line=u_shape, inside=[0.5, 0.7]).door(100, 100)
    assert line is not None and line.signed_distance((50, 70)) > 0 > line.signed_distance((50, 20))


def test_a_missing_or_doubled_side_is_refused_with_what_to_write() -> None:
    with pytest.raises(CameraConfigError, match=r"needs its inside side: write `entering: left\|right\|up\|down`"):
        settings_of(door_line=HORIZONTAL)
    with pytest.raises(CameraConfigError, match="give entering or inside, not both"):
        settings_of(door_line=HORIZONTAL, entering="down", inside=[0.5, 0.9])
    with pytest.raises(CameraConfigError, match="lies on the door line"):
        settings_of(door_line=HORIZONTAL, inside=[0.5, 0.5])
    with pytest.raises(CameraConfigError, match="entering"):
        settings_of(door_line=HORIZONTAL, entering="in")


def test_old_left_right_is_read_only_where_it_cannot_be_misread() -> None:
    # Drawn upwards, "right of the line walked first to last" is the right of the picture: one reading.
    assert inside_is_right(door_line=VERTICAL_UP, inside="right")
    assert not inside_is_right(door_line=VERTICAL_UP, inside="left")
    # Drawn downwards, the old rule's "right" is the left of the picture: refused, with the fix that keeps it.
    with pytest.raises(CameraConfigError, match=r"inside: right reads two ways.*`entering: left` keeps the side"):
        settings_of(door_line=VERTICAL_DOWN, inside="right")
    # A horizontal line has no right of the picture: refused, naming the direction it meant.
    with pytest.raises(CameraConfigError, match=r"inside: right reads two ways.*`entering: down` keeps the side"):
        settings_of(door_line=HORIZONTAL, inside="right")


def test_sides_survive_scaling_to_pixels() -> None:
    line = DoorLine.with_entering(((0.1, 0.2), (0.9, 0.3)), "down")
    px = line.scaled(1280, 720)
    assert px.signed_distance((640, 700)) > 0 > px.signed_distance((640, 10))
    with pytest.raises(AmbiguousDoorError):
        DoorLine.with_entering(((0.1, 0.2), (0.9, 0.3)), "right")
