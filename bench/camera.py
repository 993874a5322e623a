"""Benchmark: people detection and counting on one CPU core, and CameraCount records produced to Kafka.

Run: ``python -m bench camera`` (defaults) or ``python -m bench.camera [--records N] [--skip-kafka]``. The
process pins itself to one core and sets torch and OpenCV to one thread. Input is a rendered 25 fps 640x480
side-view door video with real people (ultralytics' bus.jpg and zidane.jpg crops walking normally, 12 px a
frame; 3 entries and 1 exit).

Rates are given per second of this process's CPU time (what one dedicated core does: on a shared machine the
wall clock mostly measures the neighbours), with the wall-clock rate beside them. Figures:
- decode: frames/s OpenCV reads from the file (the baseline every detector adds to), median of 3;
- per detector and image size: frames/s of detect + track + count (median of 3), and the ratio to 25 fps;
- whole pipelines (file -> skipping to the target rate -> detector -> counts): stream seconds per CPU second
  (>= 1 keeps up with the stream in real time on one core), with the counts checked against the truth;
- Kafka: CameraCount records/s through RecordSender to a local broker and registry started in a temporary
  directory, against bare confluent-kafka produce of the same encoded bytes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import cv2

from producers.camera.config import CameraSettings
from producers.camera.detectors import Mog2Tracker, PersonTracker, YoloTracker, default_weights
from producers.camera.runner import FrameCounter, KafkaSink, SeqAllocator, run_counts
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
from tillflow.settings import Settings

STREAM_FPS = 25.0
CAMERA = Camera(id="cam-bench", store_id="wg-volt", role="entrance")


def one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    import torch

    torch.set_num_threads(1)


Rate = tuple[float, float]
"""Per CPU second, per wall second."""


class Clock:
    def __init__(self) -> None:
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def rates(self, amount: float) -> Rate:
        cpu, wall = time.process_time() - self.cpu, time.perf_counter() - self.wall
        return amount / max(cpu, 1e-9), amount / wall


def median_rate(fn: Callable[[], Rate], repeats: int = 3) -> Rate:
    runs = [fn() for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def decode_fps(video: Path) -> Rate:
    cap = cv2.VideoCapture(str(video))
    n, clock = 0, Clock()
    while cap.read()[0]:
        n += 1
    cap.release()
    return clock.rates(n)


def tracker_fps(make: Callable[[], PersonTracker], frames: list[Frame], settings: CameraSettings) -> Rate:
    counter = FrameCounter(CAMERA, settings, make())
    counter.count(frames[0])  # warm-up (model fusing, first allocation)
    clock = Clock()
    for frame in frames[1:]:
        counter.count(frame)
    return clock.rates(len(frames) - 1)


class _Discard:
    def write(self, record: CameraCount) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def pipeline(
    video: Path, make: Callable[[], PersonTracker], settings: CameraSettings, target_fps: float
) -> tuple[Rate, tuple[int, int], int]:
    """Real-time factor of the whole path from the file (per CPU and per wall second), and its counts."""
    stream = VideoStream(str(video), target_fps=target_fps, start=datetime(2026, 11, 23, tzinfo=UTC))
    counter = FrameCounter(CAMERA, settings, make())
    seq = SeqAllocator(Path(tempfile.mkdtemp()) / "seq.json")
    clock = Clock()
    stats = run_counts(stream.frames(), counter, _Discard(), seq)
    return clock.rates(stream.read / STREAM_FPS), (stats.entries, stats.exits), stats.frames


def kafka_rates(records: int) -> tuple[Rate, Rate]:
    from confluent_kafka import Producer

    from producers.sender import RecordSender
    from tillflow.devstack import down, up
    from tillflow.kafka import endpoints, producer_config

    settings = Settings(state_dir=Path(tempfile.mkdtemp(prefix="bench-camera-")), topic_partitions=3)
    up(settings, timeout=60)
    try:
        t0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
        rows = [
            CameraCount(
                camera_id=f"cam-{i % 12}",
                store_id=f"store-{i % 12}",
                frame_ts=t0 + timedelta(milliseconds=80 * i),
                frame_seq=i,
                people_in_frame=i % 5,
                entries=i % 3 == 0,
                exits=i % 7 == 0,
                detector="yolo",
            )
            for i in range(records)
        ]
        sender = RecordSender(settings)
        sink = KafkaSink(sender, flush_interval=1.0)
        clock = Clock()
        for row in rows:
            sink.write(row)
        sink.close()
        ours = clock.rates(records)

        encoded = [(r.store_id.encode(), sender.serde("camera.counts").encode(r)) for r in rows]
        raw = Producer(producer_config(settings, endpoints(settings).bootstrap))
        clock = Clock()
        for key, value in encoded:
            while True:
                try:
                    raw.produce("camera.counts", value=value, key=key)
                    break
                except BufferError:
                    raw.poll(0.1)
            raw.poll(0)
        raw.flush(30)
        bare = clock.rates(records)
        del sender, sink, raw  # close the clients before the broker stops
        return ours, bare
    finally:
        down(settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.camera")
    parser.add_argument("--records", type=int, default=50_000, help="CameraCount records for the Kafka figure.")
    parser.add_argument("--skip-kafka", action="store_true")
    args = parser.parse_args(argv if argv is not None else [])  # `python -m bench camera` passes none
    one_core()
    defaults = Settings()
    tmp = Path(tempfile.mkdtemp(prefix="bench-camera-"))
    config_dir = tmp / "ultralytics"
    width, height = SIDE_VIEW
    walkers, n = side_view_scene(12.0)
    video = tmp / "door.avi"
    write_video(video, render(walkers, width, height, n, seed=3), STREAM_FPS)
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    frames = [
        Frame(img, t0 + timedelta(seconds=i / STREAM_FPS), i)
        for i, img in enumerate(render(walkers, width, height, 60))
    ]
    door = CameraSettings(door_line=SIDE_VIEW_LINE, inside=SIDE_VIEW_INSIDE)
    weights = default_weights()
    print(f"one core, {width}x{height} {STREAM_FPS:g} fps door video, {n} frames ({n / STREAM_FPS:.1f} s)")

    def line(label: str, rate: Rate, unit: str = "frames/s") -> None:
        print(
            f"{label:34s} {rate[0]:8.1f} {unit} per CPU s  {rate[0] / STREAM_FPS:6.2f}x 25 fps   (wall {rate[1]:.1f})"
        )

    line("baseline: decode only", median_rate(lambda: decode_fps(video)))

    def mog2() -> PersonTracker:
        return Mog2Tracker(min_area=door.min_area, relative=True)

    def yolo(imgsz: int, band: bool = False) -> Callable[[], PersonTracker]:
        """YOLO on the whole frame, or (``band``) in the door's default band, as `camera run` does."""
        roi_for = door.detect_roi if band else None
        return lambda: YoloTracker(weights, config_dir, imgsz=imgsz, roi_for=roi_for)

    line("mog2 blobs + IoU tracker", median_rate(lambda: tracker_fps(mog2, frames, door)))
    band_imgsz = door.default_imgsz(defaults.camera_imgsz)
    line(
        f"yolo + IoU, door band at {band_imgsz} px",
        median_rate(partial(tracker_fps, yolo(band_imgsz, band=True), frames, door)),
    )
    for imgsz in (640, 416, 320):
        line(f"yolo11n-pose + IoU tracker {imgsz} px", median_rate(partial(tracker_fps, yolo(imgsz), frames, door)))

    target = defaults.camera_target_fps or STREAM_FPS
    print(
        f"\npipelines on the 25 fps file; default: yolo in the door band ({door.detect_band:g} of the height each "
        f"side) at {band_imgsz} px, target {target:g} fps"
    )
    for label, make, fps in (
        (f"default (band, {band_imgsz} px, {target:g} fps)", yolo(band_imgsz, band=True), target),
        (f"whole frame {defaults.camera_imgsz} px, {target:g} fps", yolo(defaults.camera_imgsz), target),
        ("yolo 416 px, 12.5 fps", yolo(416), 12.5),
        ("yolo 640 px, 12.5 fps", yolo(640), 12.5),
        ("yolo 640 px, 5 fps", yolo(640), 5.0),
        ("yolo 320 px, 25 fps", yolo(320), STREAM_FPS),
        ("mog2, 25 fps", mog2, STREAM_FPS),
    ):
        rate, counts, processed = pipeline(video, make, door, fps)
        exact = "exact" if counts == SIDE_VIEW_EXPECTED else "NOT exact"
        print(
            f"  {label:28s} {rate[0]:5.2f}x real time per CPU s (wall {rate[1]:.2f}x), {processed:3d} frames, "
            f"entries/exits {counts} vs {SIDE_VIEW_EXPECTED}: {exact}"
        )

    if not args.skip_kafka:
        ours, bare = kafka_rates(args.records)
        print(f"\nKafka, {args.records} records:")
        print(f"  CameraCount through RecordSender   {ours[0]:9.0f} records per CPU s (wall {ours[1]:.0f}/s)")
        print(f"  baseline: same bytes, bare produce {bare[0]:9.0f} records per CPU s (wall {bare[1]:.0f}/s)")
        print(f"  ratio {ours[0] / bare[0]:.2f} per CPU s")


if __name__ == "__main__":
    main(sys.argv[1:])
