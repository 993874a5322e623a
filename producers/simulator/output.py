"""Where simulated events go: JSONL files or a sender, paced in compressed time; and the run summary."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from producers.simulator.incidents import InjectedIncident
from producers.simulator.simulation import SimEvent
from schemas.models import CameraCount, Channel, Record, TicketKind
from schemas.storeops import StaffShift
from schemas.topics import CAMERA_COUNTS, POS_TICKETS, STAFF_SHIFTS

FILES = {POS_TICKETS: "tickets.jsonl", CAMERA_COUNTS: "counts.jsonl", STAFF_SHIFTS: "shifts.jsonl"}
INCIDENTS_FILE = "incidents.json"
SUMMARY_FILE = "summary.json"


class Sink(Protocol):
    def send(self, topic: str, record: Record) -> None: ...


@dataclass
class StoreTally:
    visitors: int = 0
    transactions: int = 0
    tickets: int = 0
    frames: int = 0
    net_revenue: int = 0
    currency: str = ""

    @property
    def conversion(self) -> float | None:
        return self.transactions / self.visitors if self.visitors else None


@dataclass
class Summary:
    """Counts of a run. Visitors and transactions count first deliveries only (duplicates are counted apart).

    ``visitors`` are entries at entrance cameras; ``transactions`` are in-store SALE tickets.
    """

    per_topic: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    stores: dict[str, StoreTally] = field(default_factory=lambda: defaultdict(StoreTally))
    first: datetime | None = None
    last: datetime | None = None

    def add(self, ev: SimEvent) -> None:
        self.per_topic[ev.topic] += 1
        if self.first is None:
            self.first = ev.emit_at
        self.last = ev.emit_at
        if ev.late:
            self.late[ev.topic] += 1
        if ev.duplicate:
            self.duplicates[ev.topic] += 1
            return
        rec = ev.record
        if isinstance(rec, StaffShift):
            return
        tally = self.stores[rec.store_id]
        if isinstance(rec, CameraCount):
            tally.frames += 1
            if rec.zone_id is None:
                tally.visitors += rec.entries
        else:
            tally.tickets += 1
            tally.currency = rec.currency
            if rec.kind is TicketKind.SALE and rec.channel is Channel.IN_STORE:
                tally.transactions += 1
                tally.net_revenue += rec.net_amount

    @property
    def events(self) -> int:
        return sum(self.per_topic.values())

    def to_json(self) -> dict[str, object]:
        return {
            "events": self.events,
            "per_topic": dict(self.per_topic),
            "late": dict(self.late),
            "duplicates": dict(self.duplicates),
            "stores": {
                sid: {
                    "visitors": t.visitors,
                    "transactions": t.transactions,
                    "conversion": t.conversion,
                    "tickets": t.tickets,
                    "frames": t.frames,
                    "net_revenue": t.net_revenue,
                    "currency": t.currency,
                }
                for sid, t in sorted(self.stores.items())
            },
        }


def paced(
    events: Iterable[SimEvent],
    speed: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[SimEvent]:
    """Yield each event when its emit time comes, ``speed`` times faster than real time (None: at once).

    Time is relative to the first event: with ``speed=1440`` a simulated day passes in a minute.
    """
    if not speed:
        yield from events
        return
    t0: float | None = None
    e0: datetime | None = None
    for ev in events:
        if t0 is None or e0 is None:
            t0, e0 = clock(), ev.emit_at
        due = t0 + (ev.emit_at - e0).total_seconds() / speed
        wait = due - clock()
        if wait > 0.001:
            sleep(wait)
        yield ev


class JsonlSink:
    """Writes ``tickets.jsonl`` and ``counts.jsonl`` (one record's JSON form per line) into a directory."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._files: dict[str, IO[str]] = {
            topic: (directory / name).open("w", encoding="utf-8") for topic, name in FILES.items()
        }

    def send(self, topic: str, record: Record) -> None:
        f = self._files[topic]
        f.write(record.model_dump_json())
        f.write("\n")

    def close(self) -> None:
        for f in self._files.values():
            f.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_incidents(path: Path, truth: list[InjectedIncident]) -> None:
    """The ground truth of injected incidents as a JSON list (UTC times in ISO 8601)."""
    path.write_text(json.dumps([t.model_dump(mode="json") for t in truth], indent=2) + "\n", encoding="utf-8")


def read_incidents(path: Path) -> list[InjectedIncident]:
    return [InjectedIncident.model_validate(item) for item in json.loads(path.read_text(encoding="utf-8"))]


def run(events: Iterable[SimEvent], sink: Sink) -> Summary:
    """Send every event to ``sink`` and tally it."""
    summary = Summary()
    for ev in events:
        sink.send(ev.topic, ev.record)
        summary.add(ev)
    return summary
