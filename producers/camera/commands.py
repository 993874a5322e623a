"""`tillflow camera ...`: count people at a door or in a zone from a camera stream."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from tillflow.console import err, fail, out
from tillflow.lifecycle import interrupt_on_signals
from tillflow.shutdown import StopDeadline

if TYPE_CHECKING:
    from producers.camera.config import CameraSettings
    from producers.camera.detectors import PersonTracker
    from schemas.catalogue import Camera
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
    import time
    from datetime import UTC

    from tillflow.extras import missing_extra

    problem = missing_extra("the door counter", "cv2")
    if problem:
        fail(problem)
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
    from producers.camera.stream import StreamHealth, VideoStream
    from tillflow.metrics import serve_configured_metrics
    from tillflow.settings import load_settings

    settings = load_settings()
    cam, cam_settings, src = _camera(settings, camera, source)
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
    stream.check()
    sink: CountSink
    if out_file is not None:
        sink = JsonlSink(out_file)
    else:
        from tillflow.sender import RecordSender

        sink = KafkaSink(RecordSender(settings), settings.camera_flush_interval_s)
    import cv2

    cv2.setNumThreads(settings.camera_threads)
    name = detector or cam_settings.detector or settings.camera_detector
    tracker = _build(name, cam_settings, settings, state, imgsz, fps or 25.0)
    serve_configured_metrics(settings, err.print)

    watch_health(health, cam.id, health_file)
    counter = FrameCounter(cam, cam_settings, tracker, fps=fps or 25.0)
    err.print(f"camera {cam.id}: {src} ({'live' if stream.live else 'file'}), detector {tracker.name}")

    seq = SeqAllocator(state / f"{cam.id}.seq.json")
    # SIGTERM is taken like Ctrl-C: it unwinds through the finally below, so queued counts are flushed
    with interrupt_on_signals(StopDeadline(settings.stop_timeout_s, f"camera {cam.id}")):
        try:
            stats = run_counts(counted_frames(stream, cam.id), counter, sink, seq, max_frames)
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


def _camera(settings: Settings, camera: str, source: str | None) -> tuple[Camera, CameraSettings, str]:
    """The catalogue entry, its checked settings and the source to read (``--source`` first); fails clearly."""
    from producers.camera.config import camera_settings
    from schemas.catalogue import load_catalogue

    try:
        cam = load_catalogue(settings.catalogue).camera(camera)
        cam_settings = camera_settings(cam)
    except KeyError as exc:
        fail(escape(str(exc.args[0])))
    src = source or cam_settings.source
    if not src:
        fail(f"camera {camera!r} has no source in the catalogue; give --source")
    assert src is not None
    return cam, cam_settings, src


def _build(
    name: str, cam_settings: CameraSettings, settings: Settings, state: Path, imgsz: int | None, fps: float
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
        imgsz=imgsz or cam_settings.imgsz or cam_settings.default_imgsz(settings.camera_imgsz),
        conf=cam_settings.conf or settings.camera_conf,
        nms_iou=cam_settings.nms_iou,
        device=settings.camera_device,
        tracker=cam_settings.tracker,
        fps=fps,
        roi_for=cam_settings.detect_roi,
    )


@camera_app.command("check")
def camera_check() -> None:
    """Check the camera settings of every camera in the store catalogue; prints each problem."""
    from producers.camera.config import CameraConfigError, camera_settings
    from schemas.catalogue import load_catalogue
    from tillflow.settings import load_settings

    settings = load_settings()
    cat = load_catalogue(settings.catalogue)
    problems = 0
    for cam in cat.cameras:
        try:
            camera_settings(cam)
        except CameraConfigError as exc:
            err.print(escape(str(exc)), highlight=False)
            problems += 1
    if problems:
        raise typer.Exit(1)
    out.print(f"{settings.catalogue}: {len(cat.cameras)} cameras: valid")


def _file_stream(src: str, fps: float | None):  # type: ignore[no-untyped-def]
    from datetime import UTC

    from producers.camera.stream import VideoStream

    stream = VideoStream(src, live=False, target_fps=fps or None, start=datetime(2000, 1, 1, tzinfo=UTC))
    stream.check()
    return stream


@camera_app.command("preview")
def camera_preview(
    camera: Annotated[str, typer.Option("--camera", help="Camera id in the store catalogue.")],
    source: Annotated[
        str | None, typer.Option(help="Video file, stream URL or device; default: the catalogue's.")
    ] = None,
    out_file: Annotated[Path, typer.Option("--out", help="PNG to write the door picture to.")] = Path("door.png"),
    frame_index: Annotated[int, typer.Option("--frame", min=0, help="Which frame of the source to draw on.")] = 0,
    annotate: Annotated[
        Path | None,
        typer.Option(
            help="Also run the counter over the source and write every processed frame with boxes, person ids, "
            "trajectories and counted crossings: an .mp4/.avi file, or a folder of PNGs."
        ),
    ] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="With --annotate: stop after this many frames.")] = None,
) -> None:
    """Draw the door line on a frame of the camera: the inside side shaded green, an arrow for "entry".

    Check a door in a minute: the arrow must point the way people walk in, and the green side must be the
    shop. With --annotate, the counter runs over the source (the catalogue's detector and settings) and
    every counted crossing is shown where it happened.
    """
    import cv2

    from producers.camera.annotate import Annotator, DoorOverlay, FrameWriter
    from producers.camera.runner import FrameCounter
    from tillflow.settings import load_settings

    settings = load_settings()
    cam, cam_settings, src = _camera(settings, camera, source)
    fps = cam_settings.target_fps or settings.camera_target_fps
    stream = _file_stream(src, None)
    image = None
    try:
        for frame in stream.frames():
            if frame.index >= frame_index:
                image = frame.image
                break
    finally:
        stream.stop()
    if image is None:
        fail(f"{src} has no frame {frame_index}")
    assert image is not None
    height, width = image.shape[:2]
    line = cam_settings.door(width, height)
    if line is None:
        fail(f"camera {cam.id!r} has no door_line to draw")
    assert line is not None
    overlay = DoorOverlay(line, width, height)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_file), overlay.draw(image)):
        fail(f"cannot write {out_file}")
    out.print(f"{cam.id}: door drawn on frame {frame_index} of {src} -> {out_file}")
    if annotate is None:
        return
    state = settings.state_dir / "camera"
    name = cam_settings.detector or settings.camera_detector
    tracker = _build(name, cam_settings, settings, state, None, fps or 25.0)
    counter = FrameCounter(cam, cam_settings, tracker, fps=fps or 25.0)
    annotator = Annotator(overlay)
    writer = FrameWriter(annotate, fps or 25.0)
    stream = _file_stream(src, fps)
    try:
        for frame in stream.frames():
            counted = counter.count(frame)
            lc = counter.counter
            people = {t.track_id: lc.person_of(t.track_id) or t.track_id for t in counter.tracks} if lc else {}
            writer.write(annotator.draw(frame.image, counter.tracks, counted, people))
            if max_frames is not None and writer.count >= max_frames:
                break
    finally:
        stream.stop()
        writer.close()
    out.print(
        f"{cam.id}: {writer.count} annotated frames, {annotator.entries} entries, {annotator.exits} exits -> {annotate}"
    )


@camera_app.command("audit")
def camera_audit(
    camera: Annotated[str, typer.Option("--camera", help="Camera id in the store catalogue.")],
    source: Annotated[str, typer.Option("--source", help="The video file that was tallied.")],
    truth: Annotated[
        Path, typer.Option("--truth", help="Hand tally CSV: time_s (or time as HH:MM:SS) and direction (in/out).")
    ],
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="Seconds a counted crossing may be off the tallied one.")
    ] = 1.5,
) -> None:
    """Count a video file and compare with a hand tally, as footfall vendors audit a door.

    Prints, per direction, the crossings counted right, the false counts and the missed ones, with the moment
    (minutes:seconds into the video) of every mismatch, and the accuracy: 1 - (false + missed) / tallied.
    Exits with 1 when anything is off.
    """
    from producers.camera.audit import Crossing, audit, clock, read_tally
    from producers.camera.runner import FrameCounter
    from tillflow.settings import load_settings

    settings = load_settings()
    cam, cam_settings, src = _camera(settings, camera, source)
    tallied = read_tally(truth)
    fps = cam_settings.target_fps or settings.camera_target_fps
    tracker = _build(
        cam_settings.detector or settings.camera_detector,
        cam_settings,
        settings,
        settings.state_dir / "camera",
        None,
        fps or 25.0,
    )
    counter = FrameCounter(cam, cam_settings, tracker, fps=fps or 25.0)
    stream = _file_stream(src, fps)
    counted: list[Crossing] = []
    try:
        for frame in stream.frames():
            got = counter.count(frame)
            at = (frame.ts - stream.start).total_seconds()
            counted += [Crossing(at, "in")] * got.entries + [Crossing(at, "out")] * got.exits
    finally:
        stream.stop()
    result = audit(counted, tallied, tolerance)
    out.print(f"{cam.id}: {src} against {truth} (within {tolerance:g} s)")
    for name, part in (("entries", result.entries), ("exits", result.exits)):
        out.print(
            f"  {name:8s} {len(part.right):4d} of {part.tallied:<4d} right, {len(part.false)} false, "
            f"{len(part.missed)} missed: accuracy {100 * part.accuracy:.1f} %"
        )
        for c in part.false:
            out.print(f"    {clock(c.seconds)}  counted, not in the tally")
        for c in part.missed:
            out.print(f"    {clock(c.seconds)}  in the tally, not counted")
    out.print(
        f"  total    {result.right:4d} of {result.tallied:<4d} right, {result.false} false, {result.missed} missed: "
        f"accuracy {100 * result.accuracy:.1f} %"
    )
    if result.false or result.missed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(camera_app, name="camera")
