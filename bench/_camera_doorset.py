"""The door test set on disk, and person detections on it cached per video, image size and frame stride.

Videos and truth go to ``.tillflow/bench-camera/<size>/`` (git-ignored); detections (YOLO boxes down to
confidence 0.1, with their colour histograms) to ``<video>.det-<imgsz>-s<stride>.npz`` beside them, so the
accuracy bench can compare trackers and counters on exactly the same detections without running the detector
again. ``python -m bench._camera_doorset --size full`` fills the cache (progress on stderr).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from producers.camera.detectors import door_roi
from producers.camera.doorset import FPS, SIZE, DoorVideo, door_set, materialise
from producers.camera.tracking import Detection

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".tillflow" / "bench-camera"


@dataclass
class CachedVideo:
    video: DoorVideo
    path: Path
    truth: Path
    stride: int
    frames: list[int]
    """Indices (in the 25 fps video) of the processed frames."""
    detections: list[list[Detection]]
    detect_cpu_s: float
    """CPU seconds the detector took over all processed frames when the cache was made."""


def videos(
    size: str, part: tuple[int, int] = (0, 1), existing: bool = False, names: Sequence[str] = ()
) -> list[tuple[DoorVideo, Path, Path]]:
    folder = CACHE / size
    out = []
    for k, video in enumerate(door_set(size)):  # type: ignore[arg-type]
        if k % part[1] != part[0] or (existing and not (folder / f"{video.name}.avi").exists()):
            continue
        if names and video.name not in names:
            continue
        movie, truth = materialise(video, folder)
        out.append((video, movie, truth))
    return out


def _detector(imgsz: int):  # type: ignore[no-untyped-def]
    from producers.camera.detectors import YoloDetector

    return YoloDetector(None, CACHE / "ultralytics", imgsz=imgsz)


def detections(
    size: str,
    imgsz: int,
    stride: int,
    log: bool = True,
    part: tuple[int, int] = (0, 1),
    cached_only: bool = False,
    roi: float = 0.0,
    names: Sequence[str] = (),
) -> list[CachedVideo]:
    """Cached detections of every video of the set (running the detector where the cache lacks them);
    ``part`` ``(i, n)``: only every n-th video from the i-th (to fill the cache in parallel); ``roi``: detect
    only in the rectangle round the door line with this margin (fraction of the frame height; 0: the whole
    frame); ``names``: only these videos."""
    detector = None
    out = []
    for video, movie, truth in videos(size, part, cached_only, names):
        tag = f"-roi{roi:g}" if roi else ""
        cache = movie.with_name(f"{video.name}.det-{imgsz}-s{stride}{tag}.npz")
        if cached_only and not cache.exists():
            continue
        if not cache.exists():
            if detector is None:
                detector = _detector(imgsz)
            detector.roi = door_roi(video.geometry.door().points, SIZE[0], SIZE[1], roi) if roi else None
            _fill(detector, movie, cache, stride, log)
        data = np.load(cache)
        frames = data["frames"].tolist()
        offsets = data["offsets"].tolist()
        boxes, confs, hists = data["boxes"], data["confs"], data["hists"]
        kpts = data["kpts"] if "kpts" in data.files else None
        dets = []
        for a, b in itertools.pairwise(offsets):
            dets.append(
                [
                    Detection(
                        (float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 2]), float(boxes[i, 3])),
                        float(confs[i]),
                        tuple(hists[i].tolist()) if hists[i].sum() > 0 else None,
                        _keypoints(kpts[i]) if kpts is not None and kpts[i, :, 2].max() > 0 else None,
                    )
                    for i in range(a, b)
                ]
            )
        out.append(CachedVideo(video, movie, truth, stride, frames, dets, float(data["cpu_s"])))
    return out


def _keypoints(rows: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    return tuple((float(r[0]), float(r[1]), float(r[2])) for r in rows)


def _fill(detector, movie: Path, cache: Path, stride: int, log: bool) -> None:  # type: ignore[no-untyped-def]
    cap = cv2.VideoCapture(str(movie))
    frames, offsets, boxes, confs, hists, kpts = [], [0], [], [], [], []
    index, cpu = -1, 0.0
    started = time.perf_counter()
    while True:
        ok = cap.grab()
        if not ok:
            break
        index += 1
        if index % stride:
            continue
        ok, image = cap.retrieve()
        if not ok:
            break
        t0 = time.process_time()
        found = detector.detect(image)
        cpu += time.process_time() - t0
        frames.append(index)
        for d in found:
            boxes.append(d.box)
            confs.append(d.conf)
            hists.append(d.appearance if d.appearance is not None else (0.0,) * 48)
            kpts.append(d.keypoints if d.keypoints is not None else ((0.0, 0.0, 0.0),) * 17)
        offsets.append(len(boxes))
    cap.release()
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        frames=np.array(frames, np.int32),
        offsets=np.array(offsets, np.int32),
        boxes=np.array(boxes, np.float32).reshape(-1, 4),
        confs=np.array(confs, np.float32),
        hists=np.array(hists, np.float32).reshape(-1, 48),
        kpts=np.array(kpts, np.float32).reshape(-1, 17, 3),
        cpu_s=np.array(cpu),
    )
    tmp.replace(cache)
    if log:
        took = time.perf_counter() - started
        print(
            f"  detected {movie.name} at {detector.imgsz} px, stride {stride}: {len(frames)} frames, "
            f"{len(frames) / max(cpu, 1e-9):.1f} frames per CPU s ({took:.0f} s wall)",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._camera_doorset")
    parser.add_argument("--size", choices=("tiny", "small", "full", "holdout", "fresh"), default="small")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--stride", type=int, default=2, help="process every n-th frame (2: 12.5 of 25 fps)")
    parser.add_argument("--part", default="0/1", help="i/n: only every n-th video from the i-th (parallel runs)")
    parser.add_argument("--roi", type=float, default=0.0, help="detect round the door line only (margin, of height)")
    parser.add_argument("--videos", default="", help="comma-separated video names (default: all)")
    args = parser.parse_args(argv)
    part = tuple(int(x) for x in args.part.split("/"))
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    names = tuple(n for n in args.videos.split(",") if n)
    cached = detections(args.size, args.imgsz, args.stride, part=(part[0], part[1]), roi=args.roi, names=names)
    total = sum(len(c.video.truth()) for c in cached)
    print(f"{args.size}: {len(cached)} videos, {sum(c.video.frames for c in cached) / FPS:.0f} s, {total} crossings")


if __name__ == "__main__":
    main(sys.argv[1:])
