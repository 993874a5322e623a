"""Audits: the counter's crossings against a hand tally, as footfall vendors check a door. Pure logic, no I/O
except reading the tally file.

A tally is a CSV with a header and one row per person crossing: ``time_s`` (seconds from the start of the
video; or ``time`` as ``HH:MM:SS[.ff]`` from the start), and ``direction`` (``in``/``out``; ``entry``/``exit``
and ``enter``/``leave`` are read too). A counted crossing matches a tallied one in the same direction when
they are at most ``tolerance`` seconds apart; each is matched once (nearest first). What is left over is a
*false* count (counted, not tallied) or a *missed* one (tallied, not counted).

Accuracy per direction is ``1 - (false + missed) / tallied``, the figure vendors quote (a false entry and a
missed one do not cancel out).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tillflow.errors import ConfigError

DirectionName = Literal["in", "out"]
_NAMES: dict[str, DirectionName] = {
    "in": "in",
    "entry": "in",
    "enter": "in",
    "entered": "in",
    "out": "out",
    "exit": "out",
    "leave": "out",
    "exited": "out",
}


class TallyError(ConfigError):
    """A tally file that cannot be read; the message names the file, the row and the reason."""


@dataclass(frozen=True, order=True)
class Crossing:
    """A crossing at ``seconds`` from the start of the video, in one direction."""

    seconds: float
    direction: DirectionName


@dataclass
class DirectionAudit:
    direction: DirectionName
    tallied: int = 0
    counted: int = 0
    right: list[tuple[Crossing, Crossing]] = field(default_factory=list)
    """(tallied, counted) pairs."""
    false: list[Crossing] = field(default_factory=list)
    missed: list[Crossing] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        if not self.tallied:
            return 1.0 if not self.false else 0.0
        return 1.0 - (len(self.false) + len(self.missed)) / self.tallied


@dataclass
class Audit:
    entries: DirectionAudit
    exits: DirectionAudit

    @property
    def tallied(self) -> int:
        return self.entries.tallied + self.exits.tallied

    @property
    def right(self) -> int:
        return len(self.entries.right) + len(self.exits.right)

    @property
    def false(self) -> int:
        return len(self.entries.false) + len(self.exits.false)

    @property
    def missed(self) -> int:
        return len(self.entries.missed) + len(self.exits.missed)

    @property
    def accuracy(self) -> float:
        if not self.tallied:
            return 1.0 if not self.false else 0.0
        return 1.0 - (self.false + self.missed) / self.tallied


def audit(counted: Sequence[Crossing], tallied: Sequence[Crossing], tolerance: float = 1.5) -> Audit:
    """Match counted crossings with tallied ones per direction, nearest in time first, within ``tolerance`` s."""
    return Audit(
        _audit_direction("in", counted, tallied, tolerance), _audit_direction("out", counted, tallied, tolerance)
    )


def _audit_direction(
    direction: DirectionName, counted: Sequence[Crossing], tallied: Sequence[Crossing], tolerance: float
) -> DirectionAudit:
    mine = sorted(c for c in counted if c.direction == direction)
    truth = sorted(c for c in tallied if c.direction == direction)
    pairs = sorted(
        (abs(t.seconds - c.seconds), ti, ci)
        for ti, t in enumerate(truth)
        for ci, c in enumerate(mine)
        if abs(t.seconds - c.seconds) <= tolerance
    )
    used_t: set[int] = set()
    used_c: set[int] = set()
    result = DirectionAudit(direction, tallied=len(truth), counted=len(mine))
    for _gap, ti, ci in pairs:
        if ti in used_t or ci in used_c:
            continue
        used_t.add(ti)
        used_c.add(ci)
        result.right.append((truth[ti], mine[ci]))
    result.right.sort()
    result.false = [c for i, c in enumerate(mine) if i not in used_c]
    result.missed = [t for i, t in enumerate(truth) if i not in used_t]
    return result


def _seconds(text: str) -> float:
    text = text.strip()
    if ":" in text:
        parts = [float(p) for p in text.split(":")]
        if len(parts) > 3:
            raise ValueError(f"{text!r} is not HH:MM:SS")
        total = 0.0
        for part in parts:
            total = total * 60 + part
        return total
    return float(text)


def read_tally(path: Path) -> list[Crossing]:
    """The crossings of a hand-tally CSV (see the module docs); raises :class:`TallyError` naming the row."""
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise TallyError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        time_key = "time_s" if "time_s" in fields else "time" if "time" in fields else None
        if time_key is None or "direction" not in fields:
            raise TallyError(f"{path}: the header needs time_s (or time) and direction; it has {', '.join(fields)}")
        crossings = []
        for line, row in enumerate(reader, start=2):
            norm = {(k or "").strip().lower(): (v or "") for k, v in row.items()}
            word = norm["direction"].strip().lower()
            if word not in _NAMES:
                raise TallyError(f"{path}: row {line}: direction {word!r} is not in or out")
            try:
                seconds = _seconds(norm[time_key])
            except ValueError:
                raise TallyError(f"{path}: row {line}: time {norm[time_key]!r} is not seconds or HH:MM:SS") from None
            if seconds < 0:
                raise TallyError(f"{path}: row {line}: time {seconds} is before the start of the video")
            crossings.append(Crossing(seconds, _NAMES[word]))
    return sorted(crossings)


def clock(seconds: float) -> str:
    """``M:SS.s`` for a moment in a video."""
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:04.1f}"
