"""`tillflow camera ...`: count people at a door or in a zone from a camera stream."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tillflow.console import err, fail, out

if TYPE_CHECKING:
    from producers.camera.config import CameraSettings
    from producers.camera.detectors import PersonTracker
    from tillflow.settings import Settings

camera_app = typer.Typer(help="Count people crossing door lines and in zones from camera video.", no_args_is_help=True)


@camera_app.command("run")
def camera_run(
    camera: Annotated[str, typer.Option("--camera", help="Camera id in the store catalogue.")],
    source: Annotated[
        str | None, typer.Option(help="Stream URL, video file or device; overrides the catalogue's source.")
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Append counts to this JSON-lines file instead of sending them to Kafka."),
    ] = None,
    detector: Annotated[str | None, typer.Option(help="yolo, mog2 or auto; overrides the catalogue.")] = None,
    imgsz: Annotated[int | None, typer.Option(min=32, help="YOLO inference size in pixels.")] = None,
    target_fps: Annotated[
        float | None, typer.Option(min=0.0, help="Process at most this many frames per second (0: every frame).")
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(
            help="Wall-clock time of a video file's first frame (ISO 8601 with offset); default: now. "
            "Not for live sources, which are timed by the wall clock."
        ),
    ] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many processed frames.")] = None,
) -> None:
    """Read a camera, count people and door-line crossings, emit one CameraCount per processed frame.

    Settings come from the camera's catalogue entry (source, detector, door_line, inside, region...).

    Counts go to the camera.counts topic, or to --out.

    A file is read to its end and timed by its own clock from --start.

    A live stream is timed by the wall clock and reopened with backoff whenever it drops, until stopped; when
    the detector is slower than the camera, only the newest frame is processed and the others count as skipped.

    No image ever leaves the process. Serves /metrics when metrics_port is set.
    """
    import signal
    import time
    from datetime import UTC

    from tillflow.extras import missing_extra

    problem = missing_extra("the door counter", "cv2")
    if problem:
        fail(problem)
    from producers.camera.config import CameraConfigError, camera_settings
    from producers.camera.detectors import DetectorError
    from producers.camera.runner import (
        CountSink,
        FrameCounter,
        HealthFile,
        JsonlSink,
        KafkaSink,
        SeqAllocator,
        counted_frames,
        run_counts,
        watch_health,
    )
    from producers.camera.stream import SourceError, StreamHealth, VideoStream
    from schemas.catalogue import CatalogueError, load_catalogue
    from tillflow.metrics import serve_metrics
    from tillflow.settings import load_settings

    settings = load_settings()
    try:
        cam = load_catalogue(settings.catalogue).camera(camera)
        cam_settings = camera_settings(cam)
    except (CatalogueError, CameraConfigError) as exc:
        fail(str(exc))
    except KeyError as exc:
        fail(str(exc.args[0]))
    src = source or cam_settings.source
    if not src:
        fail(f"camera {camera!r} has no source in the catalogue; give --source")
    assert src is not None
    if start is not None and (start.tzinfo is None or start.utcoffset() is None):
        fail("--start needs a UTC offset, for example 2026-11-23T09:00:00+01:00")

    state = settings.state_dir / "camera"
    fps = target_fps if target_fps is not None else (cam_settings.target_fps or settings.camera_target_fps)
    health = StreamHealth(down_after=settings.camera_down_after_s)
    health_file = HealthFile(state / f"{cam.id}.health.json", cam.id)
    stream = VideoStream(
        src,
        live=cam_settings.live,
        target_fps=fps or None,
        start=start.astimezone(UTC) if start else None,
        health=health,
        reconnect_initial=settings.camera_reconnect_initial_s,
        reconnect_max=settings.camera_reconnect_max_s,
    )
    if start is not None and stream.live:
        fail(f"--start is for video files; {src} is a live source, timed by the wall clock")
    try:
        stream.check()
    except SourceError as exc:
        fail(str(exc))
    sink: CountSink
    if out_file is not None:
        sink = JsonlSink(out_file)
    else:
        from producers.sender import RecordSender
        from tillflow.kafka import StackNotRunning

        try:
            sink = KafkaSink(RecordSender(settings), settings.camera_flush_interval_s)
        except StackNotRunning as exc:
            fail(str(exc))
    import cv2

    cv2.setNumThreads(settings.camera_threads)
    name = detector or cam_settings.detector or settings.camera_detector
    try:
        tracker = _build(name, cam_settings, settings, state, imgsz)
    except DetectorError as exc:
        fail(str(exc))

    if settings.metrics_port is not None:
        port = serve_metrics(settings.metrics_port, settings.metrics_host)
        err.print(f"metrics on http://{settings.metrics_host}:{port}/metrics")

    watch_health(health, cam.id, health_file)
    counter = FrameCounter(cam, cam_settings, tracker)
    err.print(f"camera {cam.id}: {src} ({'live' if stream.live else 'file'}), detector {tracker.name}")

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the finally below: queued counts are flushed

    signal.signal(signal.SIGTERM, terminate)
    seq = SeqAllocator(state / f"{cam.id}.seq.json")
    try:
        stats = run_counts(counted_frames(stream, cam.id), counter, sink, seq, max_frames)
    except SourceError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        health_file.stopped(health, time.time())
        raise
    finally:
        stream.stop()  # ends a live source's reader thread before the interpreter exits
        sink.close()
    health_file.stopped(health, time.time())
    where = str(out_file) if out_file else "camera.counts"
    dropped = f", {stream.dropped} of them replaced by newer frames while busy" if stream.dropped else ""
    out.print(
        f"{cam.id}: {stats.frames} frames ({stream.skipped} skipped{dropped}) at {stats.fps:.1f} fps, "
        f"{stats.entries} entries, {stats.exits} exits -> {where}"
    )


def _build(
    name: str, cam_settings: CameraSettings, settings: Settings, state: Path, imgsz: int | None
) -> PersonTracker:
    from producers.camera.detectors import build_tracker, ultralytics_available

    if name in ("yolo", "auto") and ultralytics_available():
        import torch

        torch.set_num_threads(settings.camera_threads)
    weights = Path(cam_settings.weights) if cam_settings.weights else settings.camera_weights
    return build_tracker(
        name,
        min_area=cam_settings.min_area,
        relative=cam_settings.coordinates == "relative",
        weights=weights,
        config_dir=state / "ultralytics",
        imgsz=imgsz or cam_settings.imgsz or settings.camera_imgsz,
        conf=cam_settings.conf or settings.camera_conf,
        nms_iou=cam_settings.nms_iou,
        device=settings.camera_device,
    )


@camera_app.command("check")
def camera_check() -> None:
    """Check the camera settings of every camera in the store catalogue; prints each problem."""
    from producers.camera.config import CameraConfigError, camera_settings
    from schemas.catalogue import CatalogueError, load_catalogue
    from tillflow.settings import load_settings

    settings = load_settings()
    try:
        cat = load_catalogue(settings.catalogue)
    except CatalogueError as exc:
        fail(str(exc))
    problems = 0
    for cam in cat.cameras:
        try:
            camera_settings(cam)
        except CameraConfigError as exc:
            err.print(str(exc), highlight=False)
            problems += 1
    if problems:
        raise typer.Exit(1)
    out.print(f"{settings.catalogue}: {len(cat.cameras)} cameras: valid")


def register(app: typer.Typer) -> None:
    app.add_typer(camera_app, name="camera")
