"""The MOG2 path end to end on rendered overhead door videos with known crossings: exact entries and exits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from producers.camera.config import CameraSettings
from producers.camera.detectors import Mog2Tracker
from producers.camera.runner import FrameCounter, JsonlSink, SeqAllocator, run_counts
from producers.camera.stream import Frame, VideoStream
from producers.camera.synthetic import (
    OVERHEAD_EXPECTED,
    OVERHEAD_FRAMES,
    OVERHEAD_LINE,
    OVERHEAD_VIEW,
    overhead_scene,
    render,
    write_video,
)
from schemas.catalogue import Camera
from schemas.models import CameraCount

W, H = OVERHEAD_VIEW
FRAMES = OVERHEAD_FRAMES
EXPECTED = OVERHEAD_EXPECTED
CAMERA = Camera(id="cam-test", store_id="store-1", role="entrance")
DOOR = CameraSettings(door_line=OVERHEAD_LINE, entering="down", detector="mog2")
# Enter, leave, turn back before the line, hover on the line, then two side by side (see overhead_scene).
SCENE = overhead_scene()


def counts_of(frames: Iterable[Frame], settings: CameraSettings = DOOR) -> list[CameraCount]:
    counter = FrameCounter(CAMERA, settings, Mog2Tracker(min_area=settings.min_area, relative=True))
    return [counter.record(f, counter.count(f), i) for i, f in enumerate(frames)]


def as_frames(images: Iterable[np.ndarray], fps: float = 25.0) -> list[Frame]:
    t0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
    return [Frame(img, t0 + timedelta(seconds=i / fps), i) for i, img in enumerate(images)]


def totals(records: list[CameraCount]) -> tuple[int, int]:
    return sum(r.entries for r in records), sum(r.exits for r in records)


def test_every_frame_counts_exactly() -> None:
    records = counts_of(as_frames(render(SCENE, W, H, FRAMES)))
    assert totals(records) == EXPECTED
    assert len(records) == FRAMES
    # The pair crosses together: two entries within a frame or two of each other.
    pair = [r.frame_seq for r in records if r.frame_seq > 250 and r.entries]
    assert sum(r.entries for r in records if r.frame_seq > 250) == 2
    assert max(pair) - min(pair) <= 2
    assert max(r.people_in_frame for r in records) == 2
    assert records[0].people_in_frame == 0 and records[-1].people_in_frame == 0


def test_turning_back_and_hovering_alone_count_nothing() -> None:
    records = counts_of(as_frames(render(SCENE[2:4], W, H, 300)))
    assert totals(records) == (0, 0)
    assert max(r.people_in_frame for r in records) == 1


@pytest.mark.parametrize("fps", [12.5, 5.0])
def test_file_at_a_lower_target_rate_counts_the_same(tmp_path: Path, fps: float) -> None:
    video = tmp_path / "door.avi"
    assert write_video(video, render(SCENE, W, H, FRAMES), 25.0) == FRAMES
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    stream = VideoStream(str(video), target_fps=fps, start=start)
    out = tmp_path / "counts.jsonl"
    counter = FrameCounter(CAMERA, DOOR, Mog2Tracker(min_area=DOOR.min_area, relative=True))
    sink = JsonlSink(out)
    stats = run_counts(stream.frames(), counter, sink, SeqAllocator(tmp_path / "seq.json"))
    sink.close()
    lines = [CameraCount.model_validate_json(line) for line in out.read_text().splitlines()]
    stride = round(25.0 / fps)
    assert len(lines) == stats.frames == -(-FRAMES // stride)
    assert stream.skipped == FRAMES - len(lines)
    assert totals(lines) == EXPECTED
    # Stream clock: frame k of the file is k / 25 s after the start.
    assert lines[0].frame_ts == start
    assert (lines[1].frame_ts - start).total_seconds() == pytest.approx(stride / 25.0)
    assert [r.frame_seq for r in lines] == list(range(len(lines)))
    assert {r.detector for r in lines} == {"mog2"}


VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def test_smoke_on_vtest_pedestrians() -> None:
    """All 795 frames of opencv-doc's vtest.avi (no ground truth): blobs found, crossings both ways."""
    if not VTEST.exists():
        pytest.fail(f"{VTEST} is missing: apt-get install opencv-doc")
    settings = CameraSettings(door_line=((0.5, 0.0), (0.5, 1.0)), entering="right", detector="mog2", min_area=0.002)
    records = counts_of(VideoStream(str(VTEST)).frames(), settings)
    assert len(records) == 795
    entries, exits = totals(records)
    assert entries >= 5 and exits >= 5
    assert 2 <= sum(r.people_in_frame for r in records) / len(records) <= 10
