"""Benchmark: door-count accuracy on the hard door test set, tillflow against its peers in the same run.

Run: ``python -m bench.camera_accuracy [--size tiny|small|full] [--compare-trackers] [--variants] [--explain]
[--per-video] [--videos side-0,...] [--roi 0.3] [--imgsz 480] [--cached-only]``.

The set (producers/camera/doorset.py): real people cut out of ultralytics' sample photos, composited walking
through doors in side, overhead and angled views: groups of 2-4, people crossing each other at the line,
loiterers, turn-backs inside the band, runners, people coming in at the picture's edge, a pillar in front,
lighting changes. ``full``: 12 videos, 9.6 minutes, 337 crossings; the truth is geometric, known before any
detection runs.

Every counter gets the *same* detections (YOLO11n-pose on every ``--stride``-th frame, by default the
product's: in the band ``--roi`` 0.3 of the frame height each side of the door line, at ``--imgsz`` 480 for
the crop; ``--roi 0 --imgsz 320``: the whole frame at 320 px; cached by bench/_camera_doorset.py), so the
comparison is of tracking and counting alone:

- tillflow with its defaults: its IoU tracker on the detections (weak ones only continue tracks), then
  :class:`LineCounter` with track stitching and people followed through merges and partial boxes
  (``--variants``: also with merges left to the tracker; ``--compare-trackers``: ByteTrack, BoT-SORT, norfair,
  with and without stitching);
- ultralytics ``solutions.ObjectCounter`` with a line region: its own ``process`` logic (history, counting,
  forgetting removed tracks) over the tracks its ``model.track`` call would give (ultralytics' ByteTrack with
  its default settings on the same detections); its drawing is left out;
- supervision ``LineZone`` (defaults: all four box corners must cross) on the same ByteTrack tracks, as its docs
  pair it with ``model.track`` through ``sv.Detections.from_ultralytics``.

A counted crossing is right when a true one in the same direction lies within 1.5 s (each matched once);
accuracy = 1 - (false + missed) / true crossings. Speed: the detector's frames per CPU second (measured now on
the first 60 processed frames of the first video, one core, one thread), and per counter the CPU time of
tracking + counting per frame; fps = 1 / (detector + tracking/counting) per frame, against the 25 fps stream.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np

from bench._camera_doorset import CACHE, CachedVideo, detections
from bench._camera_errors import describe, explain, merge, oracle_detections
from producers.camera.audit import Audit, Crossing, audit
from producers.camera.counting import LineCounter, Stitching, Track
from producers.camera.doorset import FPS, SIZE, DoorVideo
from producers.camera.tracking import Detection, DetectionTracker, build_detection_tracker

Events = list[Crossing]
STITCH = Stitching()


HYSTERESIS = 0.03 * SIZE[1]


def oracle(cached: CachedVideo) -> CachedVideo:
    """The same video with the true boxes of everyone visible enough in place of the detector's."""
    return dataclasses.replace(cached, detections=oracle_detections(cached.video, cached.frames))


def truth_of(video: DoorVideo) -> Events:
    return [Crossing(c.seconds, c.direction) for c in video.truth()]


@dataclass
class Result:
    label: str
    audit: Audit
    cpu_per_frame: float


def _frames(cached: CachedVideo) -> Sequence[tuple[int, list[Detection]]]:
    return list(zip(cached.frames, cached.detections, strict=True))


def run_tillflow(
    cached: CachedVideo,
    tracker: str = "iou",
    stitching: Stitching | None = STITCH,
    buffer_s: float | None = None,
    conf: float = 0.25,
    repeat: Literal["alternate", "once"] = "alternate",
) -> tuple[Events, float]:
    fps = FPS / cached.stride
    g = cached.video.geometry
    track: DetectionTracker = (
        BoxmotTracker(tracker.removeprefix("boxmot-"))
        if tracker.startswith("boxmot-")
        else build_detection_tracker(tracker, fps, conf, buffer_s=buffer_s)
    )
    gap = max(2, round((stitching.max_gap if stitching else 25) * fps / 25.0))
    rules = dataclasses.replace(stitching, max_gap=gap) if stitching is not None else None
    counter = LineCounter(
        g.door(), hysteresis=HYSTERESIS, stitching=rules, max_age=max(gap, round(2 * fps)), repeat=repeat
    )
    events: Events = []
    cpu = time.process_time()
    for index, dets in _frames(cached):
        counted = counter.update(track.update(dets, (SIZE[1], SIZE[0])))
        events += [Crossing(index / FPS, "in")] * counted.entries + [Crossing(index / FPS, "out")] * counted.exits
    return events, time.process_time() - cpu


class BoxmotTracker(DetectionTracker):
    """BoxMOT's OC-SORT or ByteTrack (default settings, no re-identification weights) on the detections. BoxMOT
    is not a tillflow dependency (its wheel wants opencv-python<5 and rich>=15): install it apart, e.g.
    ``pip install --no-deps --target DIR boxmot`` and put DIR on PYTHONPATH."""

    def __init__(self, kind: str) -> None:
        import boxmot

        self.name = f"boxmot-{kind}"
        self.tracker: Any = {"ocsort": boxmot.OcSort, "bytetrack": boxmot.ByteTrack}[kind]()
        self._image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)

    def update(self, detections: Sequence[Detection], shape: tuple[int, int]) -> list[Track]:
        data = np.array([[*d.box, d.conf, 0.0] for d in detections], dtype=np.float32).reshape(-1, 6)
        rows = self.tracker.update(data, self._image)
        out = []
        for row in np.asarray(rows).reshape(-1, 8):
            idx = int(row[7])
            appearance = detections[idx].appearance if 0 <= idx < len(detections) else None
            out.append(Track(int(row[4]), (float(row[0]), float(row[1]), float(row[2]), float(row[3])), appearance))
        return out


def _boxes(dets: list[Detection]) -> Any:
    from ultralytics.engine.results import Boxes

    data = np.array([[*d.box, d.conf, 0.0] for d in dets], dtype=np.float32).reshape(-1, 6)
    return Boxes(data, (SIZE[1], SIZE[0]))


def _ultralytics_bytetrack() -> Any:
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    return BYTETracker(IterableSimpleNamespace(**YAML.load(check_yaml("bytetrack.yaml"))))


def run_object_counter(cached: CachedVideo, weights: str) -> tuple[Events, float]:
    import torch
    from ultralytics import solutions

    g = cached.video.geometry
    door = g.door()
    line = [tuple(map(round, door.points[0])), tuple(map(round, door.points[-1]))]
    counter: Any = solutions.ObjectCounter(model=weights, region=line, show=False, verbose=False, classes=[0])
    counter.initialize_region()
    tracker = _ultralytics_bytetrack()
    # ObjectCounter: vertical line -> moving right is IN; horizontal -> moving down is IN.
    vertical = abs(line[0][0] - line[1][0]) < abs(line[0][1] - line[1][1])
    moving_in = (1.0, 0.0) if vertical else (0.0, 1.0)
    flip = (moving_in[0] * g.inward[0] + moving_in[1] * g.inward[1]) < 0
    events: Events = []
    cpu = time.process_time()
    for index, dets in _frames(cached):
        rows = tracker.update(_boxes(dets), None)
        counter.boxes = torch.tensor(rows[:, :4]) if len(rows) else []
        counter.track_ids = [int(r[4]) for r in rows]
        counter.clss = [0] * len(rows)
        counter.forget_tracks([t.track_id for t in tracker.removed_stracks_frame])
        before = (counter.in_count, counter.out_count)
        for box, track_id, cls in zip(counter.boxes, counter.track_ids, counter.clss, strict=False):
            counter.store_tracking_history(track_id, box)
            history = counter.track_history[track_id]
            prev = history[-2] if len(history) > 1 else None
            counter.count_objects(history[-1], track_id, prev, cls)
        n_in, n_out = counter.in_count - before[0], counter.out_count - before[1]
        if flip:
            n_in, n_out = n_out, n_in
        events += [Crossing(index / FPS, "in")] * n_in + [Crossing(index / FPS, "out")] * n_out
    return events, time.process_time() - cpu


def run_line_zone(cached: CachedVideo) -> tuple[Events, float]:
    import supervision as sv

    g = cached.video.geometry
    door = g.door()
    (x1, y1), (x2, y2) = door.points[0], door.points[-1]
    zone = sv.LineZone(start=sv.Point(x1, y1), end=sv.Point(x2, y2))
    # Which of LineZone's in/out is our "in": probe with a box walked inwards through the middle.
    probe = sv.LineZone(start=sv.Point(x1, y1), end=sv.Point(x2, y2))
    cx, cy = g.centre
    for s in (-120.0, 120.0):
        px, py = cx + s * g.inward[0], cy + s * g.inward[1]
        probe.trigger(sv.Detections(xyxy=np.array([[px - 20, py - 40, px + 20, py + 40]]), tracker_id=np.array([1])))
    flip = probe.out_count > probe.in_count
    tracker = _ultralytics_bytetrack()
    events: Events = []
    cpu = time.process_time()
    for index, dets in _frames(cached):
        rows = tracker.update(_boxes(dets), None)
        if len(rows):
            detections_ = sv.Detections(
                xyxy=rows[:, :4].astype(float), confidence=rows[:, 5], tracker_id=rows[:, 4].astype(int)
            )
        else:
            detections_ = sv.Detections.empty()
        crossed_in, crossed_out = zone.trigger(detections_)
        n_in, n_out = int(crossed_in.sum()), int(crossed_out.sum())
        if flip:
            n_in, n_out = n_out, n_in
        events += [Crossing(index / FPS, "in")] * n_in + [Crossing(index / FPS, "out")] * n_out
    return events, time.process_time() - cpu


def evaluate(
    label: str, videos: list[CachedVideo], run: Callable[[CachedVideo], tuple[Events, float]]
) -> tuple[Result, list[tuple[str, Audit]]]:
    total_counted: Events = []
    total_truth: Events = []
    per_video = []
    cpu = 0.0
    frames = 0
    offset = 0.0
    for cached in videos:
        events, spent = run(cached)
        truth = truth_of(cached.video)
        per_video.append((cached.video.name, audit(events, truth)))
        # Videos laid end to end (1 h apart) so one audit covers the set.
        total_counted += [Crossing(e.seconds + offset, e.direction) for e in events]
        total_truth += [Crossing(t.seconds + offset, t.direction) for t in truth]
        offset += 3600.0
        cpu += spent
        frames += len(cached.frames)
    return Result(label, audit(total_counted, total_truth), cpu / max(frames, 1)), per_video


def detector_cpu_per_frame(videos: list[CachedVideo], imgsz: int, n: int = 60, roi: float = 0.0) -> float:
    import cv2

    from bench._camera_doorset import _detector
    from producers.camera.detectors import door_roi

    detector = _detector(imgsz)
    if roi:
        detector.roi = door_roi(videos[0].video.geometry.door().points, SIZE[0], SIZE[1], roi)
    cap = cv2.VideoCapture(str(videos[0].path))
    images: list[np.ndarray] = []
    while len(images) < n + 1:
        ok, image = cap.read()
        if not ok:
            break
        images.append(image)
    cap.release()
    detector.detect(images[0])  # warm-up
    runs = []
    for _ in range(3):
        t0 = time.process_time()
        for image in images[1:]:
            detector.detect(image)
        runs.append((time.process_time() - t0) / (len(images) - 1))
    return statistics.median(runs)


def line(result: Result, detect_s: float) -> str:
    a = result.audit
    fps = 1.0 / (detect_s + result.cpu_per_frame)
    return (
        f"  {result.label:44s} {a.right:4d}/{a.tallied:<4d} {100 * a.accuracy:6.1f} %   "
        f"in {100 * a.entries.accuracy:5.1f} %  out {100 * a.exits.accuracy:5.1f} %   "
        f"false {a.false:3d}  missed {a.missed:3d}   "
        f"track+count {1000 * result.cpu_per_frame:5.2f} ms/frame  {fps:5.1f} fps"
    )


def one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.camera_accuracy")
    parser.add_argument("--size", choices=("tiny", "small", "full", "holdout", "fresh"), default="full")
    parser.add_argument("--imgsz", type=int, default=480, help="YOLO size (of the band's crop with --roi)")
    parser.add_argument("--stride", type=int, default=2, help="every n-th frame of the 25 fps videos (2: 12.5 fps)")
    parser.add_argument("--compare-trackers", action="store_true", help="also tillflow with each tracker, no stitching")
    parser.add_argument("--per-video", action="store_true")
    parser.add_argument("--cached-only", action="store_true", help="only the videos whose detections are cached")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--detector-frames", type=int, default=60, help="frames timed for the detector's rate")
    parser.add_argument(
        "--roi", type=float, default=0.3, help="detect_band: round the door line only (of the height; 0: whole frame)"
    )
    parser.add_argument("--videos", default="", help="comma-separated video names (default: all of the set)")
    parser.add_argument(
        "--explain", action="store_true", help="put each miss down to the detector or to tracking/counting"
    )
    parser.add_argument("--oracle", action="store_true", help="also the counters on the true boxes (no detector)")
    parser.add_argument(
        "--variants", action="store_true", help="also tillflow with a lower confidence and longer stitching"
    )
    args = parser.parse_args(argv if argv is not None else [])
    one_core()
    from producers.camera.detectors import default_weights

    names = tuple(n for n in args.videos.split(",") if n)
    videos = detections(args.size, args.imgsz, args.stride, cached_only=args.cached_only, roi=args.roi, names=names)
    truth = sum(len(v.video.truth()) for v in videos)
    seconds = sum(v.video.frames for v in videos) / FPS
    detect_s = detector_cpu_per_frame(videos, args.imgsz, args.detector_frames, args.roi)
    where = f", only within {args.roi:g} of the height round the door line" if args.roi else ""
    print(
        f"door set {args.size!r}: {len(videos)} videos, {seconds:.0f} s at 25 fps, {truth} true crossings; "
        f"YOLO11n-pose {args.imgsz} px{where} on every {args.stride}. frame ({FPS / args.stride:g} fps "
        f"processed), detector {1 / detect_s:.1f} frames per CPU s (cache: {CACHE})"
    )
    print(f"  {'counter':44s} right/true  accuracy   per direction            errors")
    runs: list[tuple[str, Callable[[CachedVideo], tuple[Events, float]]]] = [
        ("tillflow (defaults: IoU tracker + stitching)", lambda v: run_tillflow(v)),
    ]
    if not args.skip_peers:
        runs += [
            ("ultralytics solutions.ObjectCounter", lambda v: run_object_counter(v, str(default_weights()))),
            ("supervision LineZone (ByteTrack tracks)", run_line_zone),
        ]
    if args.variants:
        unmerged = dataclasses.replace(STITCH, merges=False)
        runs.append(("tillflow, merges left to the tracker", partial(run_tillflow, stitching=unmerged)))
        for label, change in (
            ("tillflow, merged box not handed over", {"handover": False}),
            ("tillflow, head-on swaps left to the tracker", {"unswap": False}),
            ("tillflow, hidden people only near their box", {"hidden_reach": 0.0}),
            ("tillflow, a part of a person at its own centre", {"body": False}),
            ("tillflow, any part of a split box for anyone", {"part_reach": None}),
            ("tillflow, first whole box after parts crossed into", {"reread": False}),
        ):
            runs.append((label, partial(run_tillflow, stitching=dataclasses.replace(STITCH, **change))))
        runs.append(("tillflow, once per person and direction", partial(run_tillflow, repeat="once")))
        for conf in (0.15, 0.1):
            runs.append((f"tillflow, conf {conf:g}", partial(run_tillflow, conf=conf)))
        for gap_s in (2.0,):
            rules = dataclasses.replace(STITCH, max_gap=round(gap_s * FPS))
            runs.append((f"tillflow, stitch_s {gap_s:g}", partial(run_tillflow, stitching=rules)))
            runs.append((f"tillflow, conf 0.15, stitch_s {gap_s:g}", partial(run_tillflow, stitching=rules, conf=0.15)))
    if args.compare_trackers:
        for name in ("iou", "bytetrack", "botsort", "norfair", "boxmot-ocsort", "boxmot-bytetrack"):
            if name == "norfair" and importlib.util.find_spec("norfair") is None:
                print("  norfair: not installed (pip install --no-deps norfair filterpy; not in the lock), skipped")
                continue
            if name.startswith("boxmot") and importlib.util.find_spec("boxmot") is None:
                print(f"  {name}: boxmot not installed (pip install --no-deps --target DIR boxmot), skipped")
                continue
            runs.append((f"tillflow, {name}, no stitching", partial(run_tillflow, tracker=name, stitching=None)))
            if name != "iou":
                runs.append((f"tillflow, {name} + stitching", partial(run_tillflow, tracker=name)))
    sets = [("", videos)]
    if args.oracle:
        sets.append(("[true boxes] ", [oracle(v) for v in videos]))
    for prefix, chosen in sets:
        for label, run in runs:
            result, per_video = evaluate(prefix + label, chosen, run)
            print(line(result, detect_s), flush=True)
            if args.per_video:
                for name, a in per_video:
                    print(f"      {name:14s} {a.right}/{a.tallied} false {a.false} missed {a.missed}")
            if args.explain and not prefix:
                why = [
                    explain(
                        c.video,
                        c.frames,
                        c.detections,
                        a.entries.missed + a.exits.missed,
                        a.entries.false + a.exits.false,
                        HYSTERESIS,
                    )
                    for c, (_name, a) in zip(chosen, per_video, strict=True)
                ]
                print("      " + describe(merge(why)), flush=True)
    tillflow_first = "tillflow must be ahead of both peers"
    print(f"\n  ({tillflow_first}; target >= 99 % on the full set; 25 fps stream = real time)")


if __name__ == "__main__":
    main(sys.argv[1:])
