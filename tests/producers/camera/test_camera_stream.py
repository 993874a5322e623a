"""Frame skipping, stream health, reconnects and a slow detector against a real HTTP MJPEG stream, the health
file, frame_seq, settings, command-line checks, /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
import yaml
from prometheus_client import REGISTRY
from pydantic import ValidationError
from typer.testing import CliRunner

from producers.camera.config import CameraConfigError, CameraSettings, camera_settings
from producers.camera.counting import Track
from producers.camera.detectors import DetectorError, Mog2Tracker, build_tracker
from producers.camera.runner import (
    FrameCounter,
    HealthFile,
    JsonlSink,
    SeqAllocator,
    counted_frames,
    run_counts,
    watch_health,
)
from producers.camera.stream import FrameSkipper, StreamHealth, VideoStream, is_live
from producers.camera.synthetic import Walker, render, walk
from schemas.catalogue import Camera
from schemas.models import CameraCount
from tillflow.metrics import serve_metrics


def kept(target: float | None, fps: float, frames: int) -> list[int]:
    skipper = FrameSkipper(target)
    return [i for i in range(frames) if skipper.keep(round(i / fps, 3))]


def test_frame_skipper_keeps_an_even_stride() -> None:
    assert kept(12.5, 25, 10) == [0, 2, 4, 6, 8]
    assert kept(5, 25, 16) == [0, 5, 10, 15]
    assert kept(10, 30, 10) == [0, 3, 6, 9]
    assert kept(12.5, 10, 5) == [0, 1, 2, 3, 4]  # a slower source keeps every frame
    assert kept(None, 25, 4) == [0, 1, 2, 3]


def test_frame_skipper_follows_a_jittery_live_clock() -> None:
    skipper = FrameSkipper(5)
    times = [0.0, 0.04, 0.21, 0.26, 0.39, 0.43, 0.61, 1.5, 1.52, 1.71]
    assert [t for t in times if skipper.keep(t)] == [0.0, 0.21, 0.39, 0.61, 1.5, 1.71]


def test_stream_health_goes_down_after_the_silence_and_back_up() -> None:
    changes: list[tuple[str, str]] = []
    health = StreamHealth(down_after=10.0, on_change=lambda old, new: changes.append((old, new)))
    health.frame(100.0)
    health.frame(101.0)
    health.failed(102.0)
    assert health.state == "reconnecting"
    health.reconnecting(105.0)
    health.failed(106.0)
    assert health.state == "reconnecting"
    health.reconnecting(111.5)  # 10.5 s since the last frame
    assert health.state == "down" and health.down_for(111.5) == pytest.approx(10.5)
    health.frame(120.0)
    assert health.state == "up" and health.reconnects == 2
    assert changes == [("starting", "up"), ("up", "reconnecting"), ("reconnecting", "down"), ("down", "up")]


def test_sources() -> None:
    assert is_live("rtsp://10.0.0.2/stream1") and is_live("http://cam/video.mjpg") and is_live("0")
    assert is_live("/dev/video0") and not is_live("recordings/door.mp4")


def test_frame_seq_keeps_increasing_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "cam.seq.json"
    first = SeqAllocator(path, block=5)
    assert [first.take() for _ in range(7)] == list(range(7))
    # A crash after 7 numbers: the next process starts after the reserved block, never below.
    second = SeqAllocator(path, block=5)
    taken = [second.take() for _ in range(3)]
    assert taken == [10, 11, 12]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    from producers.camera.stream import SourceError

    with pytest.raises(SourceError, match="does not exist"):
        next(VideoStream(str(tmp_path / "none.mp4")).frames())


def stamp(image: np.ndarray, number: int) -> np.ndarray:
    """A copy of ``image`` carrying ``number`` (below 2,500) as the grey levels of two 32 px squares."""
    out = image.copy()
    out[0:32, 0:32] = (number % 50) * 5
    out[0:32, 32:64] = (number // 50) * 5
    return out


def stamp_of(image: np.ndarray) -> int:
    """The number :func:`stamp` put in a frame (JPEG-safe: the squares' inner means)."""
    return round(float(image[4:28, 36:60].mean()) / 5) * 50 + round(float(image[4:28, 4:28].mean()) / 5)


class _Camera(BaseHTTPRequestHandler):
    """An IP camera's MJPEG endpoint: ``frames_per_connection`` JPEG parts, then the connection drops."""

    server: _CameraServer

    def do_GET(self) -> None:
        if not self.server.available.is_set():
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        server = self.server
        started = time.time()
        try:
            for i in range(server.frames_per_connection):
                if server.stamped:
                    time.sleep(max(0.0, started + i * server.interval - time.time()))
                    jpeg = cv2.imencode(".jpg", stamp(server.images[0], server.sent_count))[1].tobytes()
                    server.sent[server.sent_count] = time.time()
                    server.sent_count += 1
                else:
                    jpeg = server.jpegs[i % len(server.jpegs)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg))
                self.wfile.write(jpeg + b"\r\n")
                if not server.stamped:
                    time.sleep(server.interval)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


class _CameraServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Camera)
        self.available = threading.Event()
        self.available.set()
        self.frames_per_connection = 15
        self.interval = 0.02
        self.images = list(render([], 160, 120, 5))
        self.jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in self.images]
        self.stamped = False
        """Number every frame sent (see :func:`stamp`), on a steady 1 / interval clock, and note when it went."""
        self.sent: dict[int, float] = {}
        self.sent_count = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/video.mjpg"


@pytest.fixture
def ip_camera() -> Iterator[_CameraServer]:
    server = _CameraServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_live_stream_reconnects_and_reports_down_then_up(ip_camera: _CameraServer, tmp_path: Path) -> None:
    health = StreamHealth(down_after=0.6)
    health_file = HealthFile(tmp_path / "cam.health.json", "cam-live")
    states: list[str] = []
    watch_health(health, "cam-live", health_file)
    wired = health.on_change
    assert wired is not None

    def record(old: str, new: str) -> None:
        wired(old, new)  # type: ignore[arg-type]
        states.append(new)
        if new == "down":
            # While down, the file says so; then the camera comes back.
            assert '"state": "down"' in health_file.path.read_text()
            ip_camera.available.set()

    health.on_change = record  # type: ignore[assignment]
    stream = VideoStream(ip_camera.url, health=health, reconnect_initial=0.05, reconnect_max=0.2)
    assert stream.live
    started = time.time()
    got = 0
    for frame in stream.frames():
        got += 1
        assert frame.image.shape == (120, 160, 3)
        assert started - 1 <= frame.ts.timestamp() <= time.time() + 1  # wall clock for live streams
        if got == 20:
            ip_camera.available.clear()  # the second connection drops at 30 and the camera stays away
        if got == 40:
            stream.stop()
    assert got == 40
    assert states[:3] == ["up", "reconnecting", "up"]  # a short drop: reconnected at once
    assert "down" in states and states[-1] == "up"
    assert health.reconnects >= 3
    assert '"state": "up"' in health_file.path.read_text()
    sample = REGISTRY.get_sample_value
    assert sample("tillflow_camera_reconnects_total", {"camera": "cam-live"}) == health.reconnects
    assert sample("tillflow_camera_up", {"camera": "cam-live"}) == 1


def test_camera_settings_from_the_catalogue() -> None:
    cam = Camera.model_validate(
        {
            "id": "c1",
            "store_id": "s1",
            "role": "entrance",
            "door_line": [[0.1, 0.5], [0.9, 0.5]],
            "inside": [0.5, 0.9],
            "region": [[0, 0], [1, 0], [1, 1]],
        }
    )
    settings = camera_settings(cam)
    line = settings.door(200, 100)
    assert line is not None and line.points == ((20.0, 50.0), (180.0, 50.0))
    assert line.signed_distance((100, 90)) == pytest.approx(40)
    assert settings.hysteresis_px(100) == pytest.approx(3)
    with pytest.raises(CameraConfigError, match=r"camera 'c2': door_line: an entrance camera needs a door line"):
        camera_settings(Camera(id="c2", store_id="s1", role="entrance"))
    bad = Camera.model_validate({"id": "c3", "store_id": "s1", "role": "entrance", "door_line": [[0, 0]]})
    with pytest.raises(CameraConfigError, match=r"camera 'c3': door_line: .*at least two points"):
        camera_settings(bad)
    with pytest.raises(ValidationError, match=r"unknown key\(s\) 'detectr' \(did you mean 'detector'\?\)"):
        Camera.model_validate({"id": "c4", "store_id": "s1", "zone_id": "z", "role": "zone", "detectr": "yolo"})
    zone = Camera(id="c5", store_id="s1", zone_id="z", role="zone")
    assert camera_settings(zone).door(10, 10) is None


def test_camera_check_command_names_each_bad_camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tillflow.cli import app

    catalogue = tmp_path / "cat.yaml"
    catalogue.write_text(
        yaml.safe_dump(
            {
                "stores": [{"id": "s1", "name": "S", "timezone": "UTC", "area_m2": 10, "category": "x"}],
                "cameras": [
                    {
                        "id": "ok",
                        "store_id": "s1",
                        "role": "entrance",
                        "door_line": [[0, 0.5], [1, 0.5]],
                        "entering": "up",
                    },
                    {"id": "bad", "store_id": "s1", "role": "entrance", "imgsz": 8},
                    # Drawn downwards: "right of the line walked first to last" is the left of the picture.
                    {
                        "id": "old",
                        "store_id": "s1",
                        "role": "entrance",
                        "door_line": [[0.5, 0], [0.5, 1]],
                        "inside": "right",
                    },
                ],
            }
        )
    )
    monkeypatch.setenv("TILLFLOW_CATALOGUE", str(catalogue))
    result = CliRunner().invoke(app, ["camera", "check"])
    assert result.exit_code == 1
    assert "camera 'bad': imgsz: Input should be greater than or equal to 32" in result.output
    flat = " ".join(result.output.split())
    assert "camera 'old': inside: right reads two ways" in flat
    assert "or `inside: [x, y]`" in flat and "(`entering: left` keeps the side it was read as so far)" in flat
    assert "camera 'ok'" not in result.output


def test_metrics_are_served(tmp_path: Path) -> None:
    camera = Camera(id="cam-metrics", store_id="s1", role="entrance")
    settings = CameraSettings(door_line=((0.05, 0.5), (0.95, 0.5)), entering="down", detector="mog2")
    walker = Walker(walk(3, [(160, -20), (160, 260)], 4))
    from datetime import timedelta

    from producers.camera.stream import Frame

    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    frames = [Frame(img, t0 + timedelta(seconds=i / 25), i) for i, img in enumerate(render([walker], 320, 240, 80))]
    sink = JsonlSink(tmp_path / "c.jsonl")
    counter = FrameCounter(camera, settings, Mog2Tracker(min_area=settings.min_area, relative=True))
    stats = run_counts(frames, counter, sink, SeqAllocator(tmp_path / "seq.json"), fps_window=0.01)
    sink.close()
    assert (stats.frames, stats.entries, stats.exits) == (80, 1, 0)
    rows = [CameraCount.model_validate_json(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert sum(r.entries for r in rows) == 1
    port = serve_metrics(0)
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'tillflow_camera_frames_total{camera="cam-metrics"} 80.0' in text
    assert 'tillflow_camera_entries_total{camera="cam-metrics"} 1.0' in text
    assert 'tillflow_camera_inference_seconds_count{camera="cam-metrics"} 80.0' in text
    fps = [
        line.split()[-1] for line in text.splitlines() if line.startswith('tillflow_camera_fps{camera="cam-metrics"}')
    ]
    assert len(fps) == 1 and float(fps[0]) > 0


def test_command_on_a_live_stream_stops_cleanly_on_sigterm(ip_camera: _CameraServer, tmp_path: Path) -> None:
    """`tillflow camera run` on a live HTTP camera: wall-clock counts until SIGTERM, then every line is whole."""
    import os
    import signal
    import subprocess
    import sys

    ip_camera.frames_per_connection = 100_000
    catalogue = tmp_path / "cat.yaml"
    catalogue.write_text(
        yaml.safe_dump(
            {
                "stores": [
                    {
                        "id": "s1",
                        "name": "S",
                        "timezone": "UTC",
                        "area_m2": 10,
                        "category": "x",
                        "zones": [{"id": "z1", "area_m2": 5}],
                    }
                ],
                "cameras": [
                    {
                        "id": "cam-live",
                        "store_id": "s1",
                        "zone_id": "z1",
                        "role": "zone",
                        "source": ip_camera.url,
                        "detector": "mog2",
                    }
                ],
            }
        )
    )
    out = tmp_path / "counts.jsonl"
    env = {**os.environ, "TILLFLOW_CATALOGUE": str(catalogue), "TILLFLOW_STATE_DIR": str(tmp_path / "state")}
    cmd = [sys.executable, "-m", "tillflow", "camera", "run", "--camera", "cam-live", "--out", str(out)]
    started = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        health = tmp_path / "state" / "camera" / "cam-live.health.json"
        deadline = time.monotonic() + 60
        while not (health.exists() and '"up"' in health.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    records = [CameraCount.model_validate_json(line) for line in out.read_text().splitlines()]
    assert len(records) >= 5
    assert all(r.zone_id == "z1" and r.people_in_frame == 0 for r in records)
    assert started <= records[0].frame_ts.timestamp() <= records[-1].frame_ts.timestamp() <= time.time()
    assert [r.frame_seq for r in records] == list(range(len(records)))
    # The interrupted exit (130), not a crash of the reader thread at interpreter exit (SIGABRT, "terminate called").
    assert proc.returncode == 130 and "terminate called" not in stderr, stderr
    assert '"state": "stopped"' in health.read_text()


def _catalogue(tmp_path: Path, camera: Mapping[str, object]) -> Path:
    path = tmp_path / "cat.yaml"
    store = {"id": "s1", "name": "S", "timezone": "UTC", "area_m2": 10, "category": "x"}
    path.write_text(yaml.safe_dump({"stores": [store], "cameras": [{"store_id": "s1", **camera}]}))
    return path


def test_command_options_override_the_catalogue(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from producers.camera.synthetic import write_video

    video = tmp_path / "v.avi"
    write_video(video, render([Walker(walk(2, [(80, -20), (80, 260)], 4))], 320, 240, 80), 25.0)
    door = {
        "id": "c1",
        "role": "entrance",
        "door_line": [[0, 0.5], [1, 0.5]],
        "entering": "down",
        "detector": "yolo",
        "imgsz": 32,
    }
    env = {**os.environ, "TILLFLOW_CATALOGUE": str(_catalogue(tmp_path, door))}
    env["TILLFLOW_STATE_DIR"] = str(tmp_path / "state")
    out = tmp_path / "c.jsonl"
    cmd = [sys.executable, "-m", "tillflow", "camera", "run", "--camera", "c1", "--source", str(video)]
    cmd += ["--detector", "mog2", "--target-fps", "0", "--max-frames", "60", "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [CameraCount.model_validate_json(x) for x in out.read_text().splitlines()]
    assert len(rows) == 60 and rows[0].detector == "mog2"
    assert sum(r.entries for r in rows) == 1
    assert "c1: 60 frames (0 skipped)" in " ".join(done.stdout.split())
    assert '"state": "stopped"' in (tmp_path / "state" / "camera" / "c1.health.json").read_text()


def test_command_errors_name_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tillflow.cli import app

    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TILLFLOW_CATALOGUE", str(_catalogue(tmp_path, {"id": "c1", "role": "zone", "zone_id": None})))
    result = CliRunner().invoke(app, ["camera", "run", "--camera", "c1"])
    assert result.exit_code == 1 and "a zone camera needs a zone_id" in result.output
    door = {"id": "c1", "role": "entrance", "door_line": [[0, 0.5], [1, 0.5]], "entering": "down"}
    monkeypatch.setenv("TILLFLOW_CATALOGUE", str(_catalogue(tmp_path, door)))
    result = CliRunner().invoke(app, ["camera", "run", "--camera", "nope"])
    assert result.exit_code == 1 and "no camera 'nope' in the catalogue" in result.output
    result = CliRunner().invoke(app, ["camera", "run", "--camera", "c1"])
    assert result.exit_code == 1 and "camera 'c1' has no source in the catalogue; give --source" in result.output
    result = CliRunner().invoke(app, ["camera", "run", "--camera", "c1", "--source", str(tmp_path / "none.mp4")])
    assert result.exit_code == 1 and "does not exist" in result.output
    video = tmp_path / "v.avi"
    video.write_bytes(b"")
    result = CliRunner().invoke(app, ["camera", "run", "--camera", "c1", "--source", str(video)])
    assert result.exit_code == 1 and "no Kafka configured and no local stack" in result.output
    assert not (tmp_path / "state" / "camera" / "ultralytics").exists()  # failed before loading any model


class _SlowTracker:
    """MOG2 behind a detector that takes ``delay`` seconds a frame; notes how old each frame is when it arrives."""

    name = "mog2"

    def __init__(self, camera: _CameraServer, delay: float) -> None:
        self.camera = camera
        self.delay = delay
        self.inner = Mog2Tracker(min_area=0.004, relative=True)
        self.ages: list[float] = []
        self.numbers: list[int] = []

    def track(self, frame: np.ndarray) -> list[Track]:
        number = stamp_of(frame)
        self.numbers.append(number)
        self.ages.append(time.time() - self.camera.sent[number])
        time.sleep(self.delay)
        return self.inner.track(frame)


def test_a_slow_detector_on_a_live_stream_gets_the_newest_frame(ip_camera: _CameraServer, tmp_path: Path) -> None:
    """A 25 fps camera, a detector at 8 fps, target 12.5 fps: frames stay fresh; the ones passed over count."""
    ip_camera.frames_per_connection = 100_000
    ip_camera.interval = 0.04
    ip_camera.stamped = True
    camera = Camera(id="cam-slow", store_id="s1", zone_id="z1", role="zone")
    tracker = _SlowTracker(ip_camera, delay=0.125)
    stream = VideoStream(ip_camera.url, target_fps=12.5, health=StreamHealth(down_after=60))
    sink = JsonlSink(tmp_path / "c.jsonl")
    started = time.time()
    stats = run_counts(
        counted_frames(stream, camera.id),
        FrameCounter(camera, CameraSettings(), tracker),
        sink,
        SeqAllocator(tmp_path / "seq.json"),
        max_frames=32,  # 4 s: reading every buffered frame in order would fall ~3 s behind by the end
    )
    stream.stop()
    sink.close()
    assert stats.frames == 32
    assert max(tracker.ages) < 1.0, tracker.ages
    assert tracker.numbers == sorted(tracker.numbers) and tracker.numbers[-1] >= 0.8 * (time.time() - started) * 25
    rows = [CameraCount.model_validate_json(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    for row, number in zip(rows, tracker.numbers, strict=True):  # frame_ts: when the frame was read, not later
        assert abs(row.frame_ts.timestamp() - ip_camera.sent[number]) < 0.5
    # About two of every three frames were replaced while the detector was busy: counted as skipped.
    assert stream.dropped >= 0.4 * stream.read and stream.skipped >= stream.dropped
    assert stream.read >= stats.frames + stream.skipped - 1  # at most the newest frame is still waiting
    assert REGISTRY.get_sample_value("tillflow_camera_frames_skipped_total", {"camera": "cam-slow"}) == stream.skipped


def test_health_file_is_rewritten_while_up_and_says_stopped(tmp_path: Path) -> None:
    path = tmp_path / "cam.health.json"
    health = StreamHealth(down_after=10.0)
    health_file = HealthFile(path, "cam-h", every=10.0)

    def written() -> dict[str, object]:
        import json

        data: dict[str, object] = json.loads(path.read_text())
        return data

    health.frame(1000.0)
    health_file.beat(health, 1000.0)
    assert written()["updated_at"] == "1970-01-01T00:16:40+00:00" and written()["refresh_s"] == 10.0
    health.frame(1009.0)
    health_file.beat(health, 1009.0)  # not yet due
    assert written()["updated_at"] == "1970-01-01T00:16:40+00:00"
    health.frame(1010.5)
    health_file.beat(health, 1010.5)
    assert written()["updated_at"] == "1970-01-01T00:16:50.500000+00:00"
    assert written()["last_frame_at"] == "1970-01-01T00:16:50.500000+00:00" and written()["state"] == "up"
    health_file.stopped(health, 1011.0)
    assert written()["state"] == "stopped"

    # Wired by watch_health: a frame rewrites it when the last write is `every` seconds old.
    live = StreamHealth(down_after=10.0)
    watch_health(live, "cam-h", HealthFile(path, "cam-h", every=0.1))
    stamps = set()
    started = time.time()
    while time.time() - started < 0.45:
        live.frame(time.time())
        stamps.add(written()["updated_at"])
        time.sleep(0.01)
    assert 3 <= len(stamps) <= (time.time() - started) / 0.1 + 1


def _door_video(tmp_path: Path) -> Path:
    from producers.camera.synthetic import write_video

    video = tmp_path / "v.avi"
    write_video(video, render([Walker(walk(2, [(80, -20), (80, 260)], 4))], 320, 240, 80), 25.0)
    return video


def test_command_rejects_bad_numbers_and_start_on_a_live_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tillflow.cli import app

    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    door = {"id": "c1", "role": "entrance", "door_line": [[0, 0.5], [1, 0.5]], "entering": "down", "detector": "mog2"}
    monkeypatch.setenv("TILLFLOW_CATALOGUE", str(_catalogue(tmp_path, door)))
    video = str(_door_video(tmp_path))
    base = ["camera", "run", "--camera", "c1", "--source", video, "--out", str(tmp_path / "c.jsonl")]
    for option, value, bound in (
        ("--max-frames", "0", "greater than or equal to 1"),
        ("--target-fps", "-1", "greater than or equal to 0"),
        ("--imgsz", "0", "greater than or equal to 32"),
    ):
        result = CliRunner().invoke(app, [*base, option, value])
        assert result.exit_code == 2, (option, result.output)
        text = " ".join(result.output.split())
        assert f"Invalid value for '{option}'" in text and bound in text, text
    result = CliRunner().invoke(
        app,
        [
            "camera",
            "run",
            "--camera",
            "c1",
            "--source",
            "http://127.0.0.1:9/video.mjpg",
            "--start",
            "2026-11-23T09:00:00+01:00",
        ],
    )
    assert result.exit_code == 1
    assert "--start is for video files; http://127.0.0.1:9/video.mjpg is a live source" in " ".join(
        result.output.split()
    )
    assert not (tmp_path / "c.jsonl").exists()
    # The lower bounds themselves are accepted: one frame, every frame.
    result = CliRunner().invoke(app, [*base, "--max-frames", "1", "--target-fps", "0"])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 1


def test_auto_detector_falls_back_to_mog2_without_ultralytics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import producers.camera.detectors as detectors
    from tillflow.cli import app

    monkeypatch.setattr(detectors, "ultralytics_available", lambda: False)
    tracker = build_tracker(
        "auto", min_area=0.004, relative=True, weights=None, config_dir=tmp_path, imgsz=320, conf=0.25
    )
    assert isinstance(tracker, Mog2Tracker)
    with pytest.raises(DetectorError, match="the yolo detector needs ultralytics"):
        build_tracker("yolo", min_area=0.004, relative=True, weights=None, config_dir=tmp_path, imgsz=320, conf=0.25)

    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    door = {"id": "c1", "role": "entrance", "door_line": [[0, 0.5], [1, 0.5]], "entering": "down", "detector": "auto"}
    monkeypatch.setenv("TILLFLOW_CATALOGUE", str(_catalogue(tmp_path, door)))
    out = tmp_path / "c.jsonl"
    result = CliRunner().invoke(
        app, ["camera", "run", "--camera", "c1", "--source", str(_door_video(tmp_path)), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = [CameraCount.model_validate_json(x) for x in out.read_text().splitlines()]
    assert rows and {r.detector for r in rows} == {"mog2"}
    assert sum(r.entries for r in rows) == 1


def test_missing_weights_are_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tillflow.cli import app

    missing = tmp_path / "models" / "door.pt"
    with pytest.raises(DetectorError, match=f"YOLO weights {missing} do not exist"):
        build_tracker("yolo", min_area=0.004, relative=True, weights=missing, config_dir=tmp_path, imgsz=320, conf=0.25)
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    door = {
        "id": "c1",
        "role": "entrance",
        "door_line": [[0, 0.5], [1, 0.5]],
        "entering": "down",
        "detector": "yolo",
        "weights": str(missing),
    }
    monkeypatch.setenv("TILLFLOW_CATALOGUE", str(_catalogue(tmp_path, door)))
    out = tmp_path / "c.jsonl"
    result = CliRunner().invoke(
        app, ["camera", "run", "--camera", "c1", "--source", str(_door_video(tmp_path)), "--out", str(out)]
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"YOLO weights {missing} do not exist (set by the camera's weights key or camera_weights)" in text, text
    assert not out.read_text()
