"""The camera producer: frames -> tracked people -> door-line counts -> one ``CameraCount`` per frame.

Only counts leave this process: frames, crops and boxes stay in memory and are dropped after each frame.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from prometheus_client import Counter, Gauge, Histogram

from producers.camera.config import CameraSettings
from producers.camera.counting import FrameCount, LineCounter, Stitching, Track
from producers.camera.detectors import PersonTracker
from producers.camera.stream import Frame, State, StreamHealth, VideoStream
from schemas.catalogue import Camera
from schemas.models import CameraCount
from schemas.topics import CAMERA_COUNTS
from tillflow.sender import RecordSender

log = logging.getLogger(__name__)

FRAMES = Counter("tillflow_camera_frames_total", "Frames processed (after skipping).", ["camera"])
SKIPPED = Counter(
    "tillflow_camera_frames_skipped_total",
    "Frames not processed: skipped to meet the target rate, or (live) replaced by a newer one while busy.",
    ["camera"],
)
FPS = Gauge("tillflow_camera_fps", "Frames processed per second over the last few seconds.", ["camera"])
INFERENCE = Histogram(
    "tillflow_camera_inference_seconds",
    "Time to detect and track people in one frame.",
    ["camera"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)
RECONNECTS = Counter("tillflow_camera_reconnects_total", "Attempts to reopen a dropped stream.", ["camera"])
UP = Gauge("tillflow_camera_up", "1 while frames arrive, 0 once the stream is down.", ["camera"])
ENTRIES = Counter("tillflow_camera_entries_total", "Inward door-line crossings.", ["camera"])
EXITS = Counter("tillflow_camera_exits_total", "Outward door-line crossings.", ["camera"])
PEOPLE = Gauge("tillflow_camera_people_in_frame", "People in the last processed frame.", ["camera"])
LAST_FRAME = Gauge(
    "tillflow_camera_last_frame_timestamp_seconds", "Wall-clock time the last frame was processed.", ["camera"]
)


class FrameCounter:
    """Tracker plus line counter for one camera; turns frames into :class:`CameraCount` records."""

    def __init__(self, camera: Camera, settings: CameraSettings, tracker: PersonTracker, fps: float = 25.0) -> None:
        """``fps``: frames processed per second of stream time (the time limits of stitching are in frames)."""
        self.camera = camera
        self.settings = settings
        self.tracker = tracker
        self.fps = fps
        self._counter: LineCounter | None = None
        self._size: tuple[int, int] | None = None
        self.tracks: list[Track] = []
        """The tracks of the last frame counted (for drawing)."""

    def _counter_for(self, width: int, height: int) -> LineCounter:
        if self._counter is None or self._size != (width, height):
            s = self.settings
            gap = max(2, round(s.stitch_s * self.fps)) if s.stitch_s > 0 else 0
            self._counter = LineCounter(
                s.door(width, height),
                hysteresis=s.hysteresis_px(height),
                anchor=s.anchor,
                region=s.region_px(width, height),
                max_age=max(gap, round(2 * self.fps)),
                stitching=Stitching(max_gap=gap) if gap else None,
            )
            self._size = (width, height)
        return self._counter

    @property
    def counter(self) -> LineCounter | None:
        return self._counter

    def count(self, frame: Frame) -> FrameCount:
        height, width = frame.image.shape[:2]
        counter = self._counter_for(width, height)
        self.tracks = self.tracker.track(frame.image)
        return counter.update(self.tracks)

    def record(self, frame: Frame, counted: FrameCount, frame_seq: int) -> CameraCount:
        return CameraCount(
            camera_id=self.camera.id,
            store_id=self.camera.store_id,
            zone_id=self.camera.zone_id,
            frame_ts=frame.ts,
            frame_seq=frame_seq,
            people_in_frame=counted.people_in_frame,
            entries=counted.entries,
            exits=counted.exits,
            detector=self.tracker.name,
        )


class SeqAllocator:
    """``frame_seq`` that keeps increasing across restarts: blocks of numbers are reserved in a file first."""

    def __init__(self, path: Path, block: int = 10_000) -> None:
        self.path = path
        self.block = block
        try:
            self.next = int(json.loads(path.read_text())["reserved_until"])
        except (OSError, ValueError, KeyError):
            self.next = 0
        self._limit = self.next

    def take(self) -> int:
        if self.next >= self._limit:
            self._limit = self.next + self.block
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"reserved_until": self._limit}))
            os.replace(tmp, self.path)
        seq = self.next
        self.next += 1
        return seq


class CountSink(Protocol):
    def write(self, record: CameraCount) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """Counts as JSON lines (the Avro field names, ISO timestamps), one per processed frame."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] = path.open("a", encoding="utf-8")

    def write(self, record: CameraCount) -> None:
        self._fh.write(json.dumps(record.to_json(), separators=(",", ":")) + "\n")
        self._fh.flush()  # whole lines only, even if the process is killed

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class KafkaSink:
    """Counts to ``camera.counts`` through :class:`~tillflow.sender.RecordSender`, flushed every interval."""

    def __init__(self, sender: RecordSender, flush_interval: float = 1.0) -> None:
        self.sender = sender
        self.flush_interval = flush_interval
        self._last_flush = time.monotonic()

    def write(self, record: CameraCount) -> None:
        self.sender.send(CAMERA_COUNTS, record)
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        self.sender.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()


class HealthFile:
    """``<state_dir>/camera/<id>.health.json``: the stream's state for probes and operators.

    Written on every change and reconnect attempt, and at least every ``every`` seconds while frames arrive,
    so an ``updated_at`` that stops moving means the producer is gone; ``stopped`` marks a clean exit.
    """

    def __init__(self, path: Path, camera_id: str, every: float = 10.0) -> None:
        self.path = path
        self.camera_id = camera_id
        self.every = every
        self._written_at: float | None = None

    def write(self, health: StreamHealth, now: float, state: str | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "camera_id": self.camera_id,
            "state": state or health.state,
            "updated_at": datetime.fromtimestamp(now, tz=UTC).isoformat(),
            "refresh_s": self.every,
            "last_frame_at": (
                datetime.fromtimestamp(health.last_frame_at, tz=UTC).isoformat() if health.last_frame_at else None
            ),
            "down_for_s": round(health.down_for(now), 1),
            "reconnects": health.reconnects,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)
        self._written_at = now

    def beat(self, health: StreamHealth, now: float) -> None:
        """Rewrite the file if the last write is ``every`` seconds old."""
        if self._written_at is None or now - self._written_at >= self.every:
            self.write(health, now)

    def stopped(self, health: StreamHealth, now: float) -> None:
        """The producer exits cleanly: state ``stopped``."""
        self.write(health, now, "stopped")


def watch_health(health: StreamHealth, camera_id: str, health_file: HealthFile | None) -> None:
    """Wire a stream's state to the log, the metrics and the health file (rewritten on every change, every
    reconnect attempt, so ``down_for_s`` stays current while the camera is away, and every ``every`` seconds
    while frames arrive)."""

    def changed(old: State, new: State) -> None:
        now = time.time()
        UP.labels(camera_id).set(1 if new == "up" else 0)
        if new == "down":
            log.error("camera %s: no frames for %.0f s; stream is down", camera_id, health.down_for(now))
        elif new == "up" and old != "starting":
            log.warning("camera %s: stream is back after %d reconnects", camera_id, health.reconnects)
        if health_file is not None:
            health_file.write(health, now)

    def reconnecting() -> None:
        RECONNECTS.labels(camera_id).inc()
        if health_file is not None:
            health_file.write(health, time.time())

    def frame() -> None:
        if health_file is not None:
            health_file.beat(health, time.time())

    health.on_change = changed
    health.on_reconnect = reconnecting
    health.on_frame = frame


def counted_frames(stream: VideoStream, camera_id: str) -> Iterator[Frame]:
    """The stream's frames, adding the frames it skipped or dropped on the way to ``SKIPPED``."""
    seen = 0
    for frame in stream.frames():
        SKIPPED.labels(camera_id).inc(stream.skipped - seen)
        seen = stream.skipped
        yield frame


@dataclass
class RunStats:
    frames: int = 0
    entries: int = 0
    exits: int = 0
    seconds: float = 0.0
    inference_seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def run_counts(
    frames: Iterable[Frame],
    counter: FrameCounter,
    sink: CountSink,
    seq: SeqAllocator,
    max_frames: int | None = None,
    fps_window: float = 5.0,
) -> RunStats:
    """Process frames until the source ends (or ``max_frames``): one record per frame to ``sink``.

    ``tillflow_camera_fps`` is set from the frames of each ``fps_window`` seconds.
    """
    cam = counter.camera.id
    stats = RunStats()
    started = window_start = time.perf_counter()
    window_frames = 0
    try:
        for frame in frames:
            t0 = time.perf_counter()
            counted = counter.count(frame)
            spent = time.perf_counter() - t0
            INFERENCE.labels(cam).observe(spent)
            stats.inference_seconds += spent
            sink.write(counter.record(frame, counted, seq.take()))
            stats.frames += 1
            stats.entries += counted.entries
            stats.exits += counted.exits
            FRAMES.labels(cam).inc()
            LAST_FRAME.labels(cam).set_to_current_time()
            PEOPLE.labels(cam).set(counted.people_in_frame)
            if counted.entries:
                ENTRIES.labels(cam).inc(counted.entries)
            if counted.exits:
                EXITS.labels(cam).inc(counted.exits)
            window_frames += 1
            now = time.perf_counter()
            if now - window_start >= fps_window:
                FPS.labels(cam).set(window_frames / (now - window_start))
                window_start, window_frames = now, 0
            if max_frames is not None and stats.frames >= max_frames:
                break
    finally:
        sink.flush()
    stats.seconds = time.perf_counter() - started
    return stats
