"""Reading frames: files, devices and live streams with OpenCV, frame skipping, reconnects, health.

A file ends at its last frame and is timed by its own clock (position in the stream, added to a start time).
A live stream (RTSP/HTTP URL or device) is read by a background thread that keeps only the newest frame, is
timed by the wall clock when that frame was read, and when it drops it is reopened with exponential backoff:
a detector slower than the camera always gets the latest frame, never a backlog of old ones, and the frames
replaced before they were processed count as skipped. :class:`StreamHealth` turns drops and frames into an
up/down state: the stream is *down* once no frame arrived for ``down_after`` seconds, which is the signal
behind ``CAMERA_SILENT``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tillflow.errors import SourceError
from tillflow.retry import backoff_delays

log = logging.getLogger(__name__)

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_live(source: str) -> bool:
    """URLs and devices are live; anything else is a file."""
    return bool(_URL.match(source)) or source.isdigit() or source.startswith("/dev/")


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    ts: datetime
    index: int
    """Position of the frame in the stream since it was (re)opened, skipped frames included."""


class FrameSkipper:
    """Keeps one frame per ``1 / target_fps`` seconds of stream time (all frames when ``target_fps`` is None)."""

    def __init__(self, target_fps: float | None) -> None:
        self.period = 1.0 / target_fps if target_fps else 0.0
        self._due: float | None = None

    def keep(self, t: float) -> bool:
        if not self.period:
            return True
        # A little slack so 25 fps timestamps (40 ms, rounded) keep every 5th frame at 5 fps, not every 6th.
        if self._due is None or t >= self._due - self.period * 0.1:
            self._due = (self._due + self.period) if self._due is not None else t + self.period
            if self._due <= t:
                self._due = t + self.period
            return True
        return False


State = Literal["starting", "up", "reconnecting", "down"]


@dataclass
class StreamHealth:
    """Up/down state of one stream from frame arrivals and failures, with explicit times (seconds)."""

    down_after: float
    state: State = "starting"
    last_frame_at: float | None = None
    failing_since: float | None = None
    reconnects: int = 0
    on_change: Callable[[State, State], None] | None = None
    on_reconnect: Callable[[], None] | None = None
    on_frame: Callable[[], None] | None = None
    history: list[State] = field(default_factory=list)

    def _set(self, state: State) -> None:
        if state != self.state:
            old, self.state = self.state, state
            self.history.append(state)
            if self.on_change is not None:
                self.on_change(old, state)

    def frame(self, now: float) -> None:
        self.last_frame_at = now
        self.failing_since = None
        self._set("up")
        if self.on_frame is not None:
            self.on_frame()

    def failed(self, now: float) -> None:
        """A read or an open failed."""
        if self.failing_since is None:
            self.failing_since = self.last_frame_at if self.last_frame_at is not None else now
        self.check(now)
        if self.state != "down":
            self._set("reconnecting")

    def reconnecting(self, now: float) -> None:
        """A reconnect attempt is about to be made."""
        self.reconnects += 1
        self.check(now)
        if self.on_reconnect is not None:
            self.on_reconnect()

    def check(self, now: float) -> None:
        if self.failing_since is not None and now - self.failing_since >= self.down_after:
            self._set("down")

    def down_for(self, now: float) -> float:
        return now - self.failing_since if self.failing_since is not None else 0.0


class _Latest:
    """The newest frame of a live capture, read by a background thread that owns (and releases) the capture.

    Only one frame is kept: a frame not taken before the next one arrives is replaced and counted in
    ``replaced``. ``take`` waits for a frame newer than the last one taken.
    """

    def __init__(self, cap: Any, clock: Callable[[], float]) -> None:
        self.cap = cap
        self.clock = clock
        self.read = 0
        self.replaced = 0
        self.ended = False
        self._frame: tuple[np.ndarray, float, int] | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        index = -1
        try:
            while not self._stop.is_set():
                ok, image = self.cap.read()
                if not ok or image is None:
                    return
                now = self.clock()
                index += 1
                with self._cond:
                    self.read += 1
                    if self._frame is not None:
                        self.replaced += 1
                    self._frame = (image, now, index)
                    self._cond.notify()
        finally:
            self.cap.release()
            with self._cond:
                self.ended = True
                self._cond.notify()

    def take(self, stopped: Callable[[], bool]) -> tuple[tuple[np.ndarray, float, int] | None, int, int]:
        """The newest unseen frame ``(image, read at, index)`` (None once the source ended or ``stopped()``),
        with the frames read and replaced so far."""
        with self._cond:
            while self._frame is None and not self.ended and not stopped():
                self._cond.wait(0.5)
            frame, self._frame = self._frame, None
            return frame, self.read, self.replaced

    def close(self, timeout: float = 12.0) -> None:
        """Stop reading and wait for the thread: a read blocked on a silent source ends at its 10 s timeout.

        (A thread still inside OpenCV when the interpreter exits aborts the process.)
        """
        self._stop.set()
        self._thread.join(timeout)


class VideoStream:
    """Frames of one source, skipped to ``target_fps``; reconnects live sources until ``stop()``.

    A file is read frame by frame, every frame decoded in order and skipped by its own clock, so runs are
    deterministic. A live source is read by a background thread that keeps only the newest frame; frames it
    replaced before they were taken are counted in ``skipped`` (and in ``dropped``), along with the frames
    skipped to meet ``target_fps``.

    ``opener`` builds the capture (``cv2.VideoCapture`` by default); ``clock`` and ``sleep`` are the wall
    clock and the sleep used between reconnect attempts.
    """

    def __init__(
        self,
        source: str,
        *,
        live: bool | None = None,
        target_fps: float | None = None,
        start: datetime | None = None,
        health: StreamHealth | None = None,
        reconnect_initial: float = 1.0,
        reconnect_max: float = 30.0,
        opener: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.live = is_live(source) if live is None else live
        self.target_fps = target_fps
        self.start = start or datetime.now(UTC)
        self.health = health or StreamHealth(down_after=60.0)
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.clock = clock
        self.sleep = sleep
        self._opener = opener
        self._stopped = False
        self._latest: _Latest | None = None
        self.read = 0
        self.skipped = 0
        self.dropped = 0
        """Live frames replaced by a newer one before they were processed (part of ``skipped``)."""
        self.source_fps = 0.0

    def stop(self) -> None:
        """Stop after the current frame; a live source's reader thread is ended (waited for) here."""
        self._stopped = True
        latest = self._latest
        if latest is not None:
            latest.close()

    def _open(self) -> Any:
        if self._opener is not None:
            return self._opener(self.source)
        import cv2

        if self.source.isdigit():
            return cv2.VideoCapture(int(self.source))
        if _URL.match(self.source):
            # Give up on a silent network stream after 10 s instead of blocking for FFmpeg's default 30 s.
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 10000]
            return cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, timeouts)
        return cv2.VideoCapture(self.source)

    def check(self) -> None:
        """Raise :class:`SourceError` now for a video file that does not exist."""
        if not self.live and not Path(self.source).exists():
            raise SourceError(f"video file {self.source} does not exist")

    def frames(self) -> Iterator[Frame]:
        self.check()
        delays: Iterator[float] | None = None
        while not self._stopped:
            cap = self._open()
            if not cap.isOpened():
                cap.release()
                if not self.live:
                    raise SourceError(f"cannot open video {self.source}")
                self.health.failed(self.clock())
                delays = delays or backoff_delays(self.reconnect_initial, self.reconnect_max)
                self._wait(next(delays))
                continue
            reading = self._read(cap)
            try:
                got_any = False
                for frame in reading:
                    got_any = True
                    delays = None
                    yield frame
                    if self._stopped:
                        return
            finally:
                reading.close()  # a live capture is released by its reader thread
                if not self.live:
                    cap.release()
            if not self.live:
                return
            self.health.failed(self.clock())
            log.warning("camera source %s dropped%s; reconnecting", self.source, "" if got_any else " at once")
            delays = delays or backoff_delays(self.reconnect_initial, self.reconnect_max)
            self._wait(next(delays))

    def _wait(self, delay: float) -> None:
        self.sleep(delay)
        self.health.reconnecting(self.clock())

    def _read(self, cap: Any) -> Generator[Frame, None, None]:
        import cv2

        self.source_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return self._read_live(cap) if self.live else self._read_file(cap)

    def _read_file(self, cap: Any) -> Generator[Frame, None, None]:
        import cv2

        skipper = FrameSkipper(self.target_fps)
        index = -1
        while not self._stopped:
            if not cap.grab():
                return
            index += 1
            self.read += 1
            now = self.clock()
            # The stream clock: the grabbed frame's presentation time; frame index / fps where the backend does
            # not report it.
            ms = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
            t = ms / 1000.0 if ms > 0 or index == 0 or self.source_fps <= 0 else index / self.source_fps
            if not skipper.keep(t):
                self.skipped += 1
                continue
            ok, image = cap.retrieve()
            if not ok or image is None:
                return
            self.health.frame(now)
            yield Frame(image, self.start + timedelta(seconds=t), index)

    def _read_live(self, cap: Any) -> Generator[Frame, None, None]:
        skipper = FrameSkipper(self.target_fps)
        latest = self._latest = _Latest(cap, self.clock)
        read = replaced = 0
        try:
            while not self._stopped:
                got, now_read, now_replaced = latest.take(lambda: self._stopped)
                self.read += now_read - read
                self.skipped += now_replaced - replaced
                self.dropped += now_replaced - replaced
                read, replaced = now_read, now_replaced
                if got is None:
                    return
                image, t, index = got
                if not skipper.keep(t):
                    self.skipped += 1
                    continue
                self.health.frame(t)
                yield Frame(image, datetime.fromtimestamp(t, tz=UTC), index)
        finally:
            latest.close()
            self._latest = None
