"""`tillflow camera preview` and `camera audit`: the door drawn where it is (pixels checked), annotated frames,
and a hand tally compared with the counter (MOG2 on a rendered overhead door with known crossings)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from producers.camera.annotate import (
    INSIDE_ALPHA,
    INSIDE_COLOUR,
    Annotator,
    DoorOverlay,
    FrameWriter,
    midpoint_and_normal,
)
from producers.camera.counting import DoorLine, FrameCount, Track
from producers.camera.synthetic import OVERHEAD_FRAMES, OVERHEAD_LINE, overhead_scene, render, write_video
from tillflow.cli import app

GREY = 120


def grey(width: int = 200, height: int = 160) -> np.ndarray:
    return np.full((height, width, 3), GREY, np.uint8)


def shaded(pixel: np.ndarray) -> bool:
    expected = np.array(GREY * (1 - INSIDE_ALPHA) + np.array(INSIDE_COLOUR) * INSIDE_ALPHA)
    return bool(np.all(np.abs(pixel.astype(float) - expected) <= 2))


@pytest.mark.parametrize("entering", ["right", "left"])
def test_the_inside_is_shaded_and_the_line_drawn_where_they_are(entering: str) -> None:
    line = DoorLine.with_entering(((0.5, 0.0), (0.5, 1.0)), entering).scaled(200, 160)  # type: ignore[arg-type]
    image = DoorOverlay(line, 200, 160).draw(grey())
    right, left = image[20, 180], image[20, 20]
    assert shaded(right) == (entering == "right")
    assert shaded(left) == (entering == "left")
    untouched = left if entering == "right" else right
    assert untouched.tolist() == [GREY, GREY, GREY]
    # The line: red (BGR) down the middle of the picture, away from the arrow and its label.
    for y in (5, 30, 130, 155):
        b, g, r = image[y, 100].tolist()
        assert r > 200 and g < 60 and b < 60, (y, image[y, 100])
    # The arrow points inwards from the middle of the line: white pixels on both sides of it, the tip inside.
    (mx, my), (nx, _ny) = midpoint_and_normal(line)
    assert nx == (1.0 if entering == "right" else -1.0)
    tip = image[round(my), round(mx + nx * 14)]
    tail = image[round(my), round(mx - nx * 14)]
    assert tip.tolist() == [255, 255, 255] and tail.tolist() == [255, 255, 255]


def test_a_diagonal_polyline_shades_the_side_of_its_inside_point() -> None:
    line = DoorLine.with_inside_point(((0.0, 0.2), (0.6, 0.5), (1.0, 1.0)), (0.2, 0.9)).scaled(200, 160)
    image = DoorOverlay(line, 200, 160).draw(grey())
    assert shaded(image[150, 20])  # bottom left: inside
    assert image[10, 190].tolist() == [GREY, GREY, GREY]  # top right: outside


def test_annotated_frames_show_boxes_ids_and_counted_crossings(tmp_path: Path) -> None:
    line = DoorLine.with_entering(((0.0, 80.0), (200.0, 80.0)), "down")
    annotator = Annotator(DoorOverlay(line, 200, 160))
    writer = FrameWriter(tmp_path / "frames", 25.0)
    box = (40.0, 90.0, 80.0, 150.0)
    first = annotator.draw(grey(), [Track(7, box)], FrameCount(1, 1, 0, entered_ids=(7,)), {7: 3})
    writer.write(first)
    writer.write(annotator.draw(grey(), [Track(7, (42.0, 95.0, 82.0, 155.0))], FrameCount(1, 0, 0), {7: 3}))
    writer.close()
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["frame-000000.png", "frame-000001.png"]
    # The box outline is drawn in the person's colour (not grey, not the shading) along its left edge.
    edge = first[120, 40]
    assert not shaded(edge) and edge.tolist() != [GREY, GREY, GREY]
    assert annotator.entries == 1 and annotator.exits == 0


def overhead_catalogue(tmp_path: Path, video: Path) -> Path:
    camera = {
        "id": "cam-door",
        "store_id": "s1",
        "role": "entrance",
        "source": str(video),
        "detector": "mog2",
        "door_line": [list(p) for p in OVERHEAD_LINE],
        "entering": "down",
        "target_fps": 25,
    }
    store = {"id": "s1", "name": "S", "timezone": "UTC", "area_m2": 10, "category": "x"}
    path = tmp_path / "cat.yaml"
    path.write_text(yaml.safe_dump({"stores": [store], "cameras": [camera]}))
    return path


@pytest.fixture
def overhead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    video = tmp_path / "door.avi"
    write_video(video, render(overhead_scene(), 320, 240, OVERHEAD_FRAMES), 25.0)
    monkeypatch.setenv("TILLFLOW_CATALOGUE", str(overhead_catalogue(tmp_path, video)))
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")
    return video


def test_preview_command_writes_the_door_picture_and_annotated_frames(overhead: Path, tmp_path: Path) -> None:
    png, frames = tmp_path / "door.png", tmp_path / "annotated"
    result = CliRunner().invoke(
        app, ["camera", "preview", "--camera", "cam-door", "--out", str(png), "--annotate", str(frames)]
    )
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(png))
    assert image is not None and image.shape == (240, 320, 3)
    # Line at y = 120 (red), inside (down) shaded green, outside (up) as the source.
    b, g, r = image[120, 30].tolist()
    assert r > 200 and g < 80 and b < 80
    below, above = image[200, 30].astype(int), image[40, 30].astype(int)
    assert below[1] - below[2] > 40  # green over red: shaded
    assert abs(above[1] - above[2]) < 40  # the floor's own grey-ish colour
    written = sorted(frames.iterdir())
    assert len(written) == OVERHEAD_FRAMES
    assert "3 entries, 1 exits" in result.output


def test_audit_prints_accuracy_per_direction_and_the_mismatched_moments(overhead: Path, tmp_path: Path) -> None:
    right = tmp_path / "tally.csv"
    runner = CliRunner()
    first = runner.invoke(
        app, ["camera", "audit", "--camera", "cam-door", "--source", str(overhead), "--truth", str(right)]
    )
    assert first.exit_code == 1 and "cannot read" in first.output
    # The tally, as a person would note it: the moment a walker is clearly (8 px) over the line at y = 120
    # after being clearly on the other side (the one hovering on the line is not a crossing).
    tally = ["time_s,direction"]
    for walker in overhead_scene():
        side = 0
        for f in range(OVERHEAD_FRAMES):
            at = walker.position(f)
            if at is None or abs(at[1] - 120) <= 8:
                continue
            now = 1 if at[1] > 120 else -1
            if side and now != side:
                tally.append(f"{f / 25:.2f},{'in' if now > 0 else 'out'}")
            side = now
    entries = [row for row in tally[1:] if row.endswith(",in")]
    assert len(entries) >= 3
    right.write_text("\n".join(tally) + "\n")
    good = runner.invoke(
        app, ["camera", "audit", "--camera", "cam-door", "--source", str(overhead), "--truth", str(right)]
    )
    assert good.exit_code == 0, good.output
    assert "entries     3 of 3    right, 0 false, 0 missed: accuracy 100.0 %" in good.output
    assert "exits       1 of 1    right, 0 false, 0 missed: accuracy 100.0 %" in good.output

    # A tally with an exit nobody made at 0:07.0 and without the first entry.
    wrong = tmp_path / "wrong.csv"
    first_entry = entries[0].split(",")[0]
    rows = [r for r in tally if r != entries[0]] + ["7.0,out"]
    wrong.write_text("\n".join(rows) + "\n")
    bad = runner.invoke(
        app, ["camera", "audit", "--camera", "cam-door", "--source", str(overhead), "--truth", str(wrong)]
    )
    assert bad.exit_code == 1
    assert "entries     2 of 2    right, 1 false, 0 missed: accuracy 50.0 %" in bad.output
    assert "exits       1 of 2    right, 0 false, 1 missed: accuracy 50.0 %" in bad.output
    counted_only = [line.split()[0] for line in bad.output.splitlines() if "counted, not in the tally" in line]
    assert len(counted_only) == 1
    minutes, seconds = counted_only[0].split(":")
    assert abs(60 * int(minutes) + float(seconds) - float(first_entry)) < 0.5
    assert "0:07.0  in the tally, not counted" in bad.output
