"""The ultralytics path on real people: crops of ultralytics' bus.jpg and zidane.jpg walked over a floor.

The crop boxes are fixed in producers/camera/synthetic.py, so the paths, and with them the crossings, are
known before any detection runs. The door is a vertical line in the middle of a side view; inside is the
right half.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from producers.camera.config import CameraSettings
from producers.camera.detectors import YoloTracker, default_weights
from producers.camera.runner import FrameCounter
from producers.camera.stream import Frame, VideoStream
from producers.camera.synthetic import (
    SIDE_VIEW,
    SIDE_VIEW_EXPECTED,
    SIDE_VIEW_INSIDE,
    SIDE_VIEW_LINE,
    render,
    side_view_scene,
    write_video,
)
from schemas.catalogue import Camera
from schemas.models import CameraCount

pytestmark = pytest.mark.camera

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
W, H = SIDE_VIEW
CAMERA = Camera(id="cam-yolo", store_id="store-1", role="entrance")
DOOR = CameraSettings(door_line=SIDE_VIEW_LINE, inside=SIDE_VIEW_INSIDE, detector="yolo")


def run(tmp_path: Path, speed: float, imgsz: int) -> tuple[list[tuple[int, int, int]], float]:
    """Crossing events ``(frame, entries, exits)``, and the share of frames whose head count is right."""
    walkers, frames = side_view_scene(speed)
    tracker = YoloTracker(default_weights(), tmp_path / "ultralytics", imgsz=imgsz)
    counter = FrameCounter(CAMERA, DOOR, tracker)
    t0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
    events = []
    right = 0
    for i, image in enumerate(render(walkers, W, H, frames, seed=3)):
        counted = counter.count(Frame(image, t0 + timedelta(seconds=i / 25), i))
        right += counted.people_in_frame == sum(w.position(i) is not None for w in walkers)
        if counted.entries or counted.exits:
            events.append((i, counted.entries, counted.exits))
    return events, right / frames


def test_real_people_crossing_every_frame_count_exactly(tmp_path: Path) -> None:
    # 12 px a frame is a normal walk (1.4 m/s over a 3 m wide view) at 25 frames per second.
    events, right = run(tmp_path, 12.0, 416)
    assert (sum(e for _, e, _ in events), sum(x for _, _, x in events)) == SIDE_VIEW_EXPECTED, events
    # People are tracked, the one turning back included, in nearly every frame.
    assert right >= 0.9


def test_command_on_a_25fps_file_with_default_settings(tmp_path: Path) -> None:
    """`tillflow camera run` end to end: catalogue settings, a file at 25 fps, default stride and size."""
    walkers, frames = side_view_scene(12.0)
    video = tmp_path / "door.avi"
    write_video(video, render(walkers, W, H, frames, seed=3), 25.0)
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(
        yaml.safe_dump(
            {
                "stores": [{"id": "s1", "name": "S", "timezone": "Europe/Berlin", "area_m2": 100, "category": "x"}],
                "cameras": [
                    {
                        "id": "cam-door",
                        "store_id": "s1",
                        "role": "entrance",
                        "source": str(video),
                        "detector": "yolo",
                        "door_line": [[0.5, 0.0], [0.5, 1.0]],
                        "inside": [0.9, 0.5],
                    }
                ],
            }
        )
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "TILLFLOW_CATALOGUE": str(catalogue),
        "TILLFLOW_STATE_DIR": str(tmp_path / "state"),
        "TILLFLOW_CAMERA_THREADS": "1",
    }
    env.pop("TILLFLOW_CONFIG", None)
    out = tmp_path / "counts.jsonl"
    cmd = [sys.executable, "-m", "tillflow", "camera", "run", "--camera", "cam-door", "--out", str(out)]
    cmd += ["--start", "2026-11-23T10:00:00+01:00"]
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    records = [CameraCount.model_validate_json(line) for line in out.read_text().splitlines()]
    assert len(records) == -(-frames // 2)  # 12.5 of 25 fps: every other frame
    assert (sum(r.entries for r in records), sum(r.exits for r in records)) == SIDE_VIEW_EXPECTED
    assert records[0].frame_ts == datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert records[1].frame_ts - records[0].frame_ts == timedelta(milliseconds=80)
    assert {r.detector for r in records} == {"yolo"}
    assert "3 entries, 1 exits" in done.stdout
    # Nothing but counts and state came out: no frames, crops or ultralytics run folders.
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert not [p for p in written if p.rsplit(".", 1)[-1] in {"jpg", "jpeg", "png", "bmp"}]
    assert not list(work.iterdir())
    health = json.loads((tmp_path / "state" / "camera" / "cam-door.health.json").read_text())
    assert health["state"] == "stopped" and health["last_frame_at"] is not None


def test_smoke_on_vtest_pedestrians(tmp_path: Path) -> None:
    """Debian's opencv-doc vtest.avi (768x576, 10 fps, 60-90 px pedestrians, no ground truth): 3 s at 960 px."""
    if not VTEST.exists():
        pytest.fail(f"{VTEST} is missing: apt-get install opencv-doc")
    settings = CameraSettings(door_line=((0.5, 0.0), (0.5, 1.0)), entering="right", detector="yolo")
    counter = FrameCounter(CAMERA, settings, YoloTracker(default_weights(), tmp_path / "ultralytics", imgsz=960))
    people = []
    for frame in VideoStream(str(VTEST)).frames():
        people.append(counter.count(frame).people_in_frame)
        if frame.index >= 29:
            break
    # Three to five people walk in view during these seconds; the small ones need 960 px.
    assert len(people) == 30
    assert min(people) >= 2 and max(people) <= 6, people
    assert sum(p >= 3 for p in people) >= 20, people
