"""Rota / clock-in CSV files through the files watcher: each row a shift, published to ``staff.shifts``.

A clock-in system or a rota export drops CSV files (header row, columns :data:`ROTA_COLUMNS`) into an inbox;
:class:`RotaWatcher` takes complete files exactly as the ticket watcher does (settle time, optional ready
marker, processed/ and rejected/ with a line-by-line error report), publishes the good rows and records each
acknowledged shift's fingerprint, so a restart mid-file or the same file dropped again publishes nothing
twice, while a corrected row (a later clock-out, a moved shift, ``deleted=1``) is published again.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from producers.files.parse import LineError
from producers.files.spec import FileSpec
from producers.files.watch import FileOutcome, FileWatcher, _free_name
from producers.pos.checkpoint import CheckpointStore
from producers.staff.mapping import ROTA_COLUMNS, ShiftMappingError, rota_row
from producers.staff.poller import ShiftSink, shift_fingerprint
from schemas.catalogue import Catalogue
from schemas.storeops import StaffShift


@dataclass(frozen=True)
class RotaSpec:
    """What the watcher needs of a spec: the source name, which files, and when a file is complete."""

    name: str
    patterns: list[str] = field(default_factory=lambda: ["*.csv"])
    ready_suffix: str | None = None
    settle_seconds: float = 2.0
    delimiter: str = ","
    encoding: str = "utf-8"


def parse_rota(
    data: bytes, spec: RotaSpec, catalogue: Catalogue, ingested_at: datetime
) -> tuple[list[StaffShift], list[LineError]]:
    """Shifts of a rota CSV and the problems per line (line numbers count the header as line 1)."""
    text = data.decode(spec.encoding)
    reader = csv.DictReader(io.StringIO(text), delimiter=spec.delimiter)
    missing = [c for c in ("store_id", "shift_id", "employee_id", "start") if c not in (reader.fieldnames or [])]
    if missing:
        return [], [LineError(1, f"header lacks column(s) {', '.join(missing)}; expected {', '.join(ROTA_COLUMNS)}")]
    stores = {s.id for s in catalogue.stores}
    zones = {s.id: ZoneInfo(s.timezone) for s in catalogue.stores}
    shifts, errors = [], []
    for number, row in enumerate(reader, start=2):
        try:
            shifts.append(rota_row(row, spec.name, stores, zones, ingested_at))
        except ShiftMappingError as exc:
            errors.append(LineError(number, str(exc)))
    return shifts, errors


class RotaWatcher(FileWatcher):
    """The files watcher (producers/files/watch.py) for rota CSVs: same inbox rules, shifts instead of tickets."""

    def __init__(self, spec: RotaSpec, inbox: Path, sink: ShiftSink, store: CheckpointStore, catalogue: Catalogue,
                 **kw: Any) -> None:  # fmt: skip
        super().__init__(cast(FileSpec, spec), inbox, cast(Any, sink), store, **kw)
        self.rota = spec
        self.shift_sink = sink
        self.catalogue = catalogue

    def process(self, path: Path) -> FileOutcome:
        outcome = FileOutcome(path.name)
        shifts, errors = parse_rota(path.read_bytes(), self.rota, self.catalogue, datetime.now(UTC))
        outcome.tickets = len(shifts)
        outcome.errors = errors
        keys = [(f"shift:{s.shift_id}", shift_fingerprint(s)) for s in shifts]
        fresh = set(self.store.unseen(self.rota.name, keys))
        new = [s for s, k in zip(shifts, keys, strict=True) if k in fresh]
        for shift in new:
            self.shift_sink.send(shift)
        self.shift_sink.flush()
        self.store.commit(self.rota.name, [], None, keys=sorted(fresh))
        outcome.published = len(new)
        folder = self.rejected if errors else self.processed
        folder.mkdir(exist_ok=True)
        target = _free_name(folder, path.name)
        if errors:
            report = target.with_name(target.name + ".errors.txt")
            lines = [f"{path.name}: {len(errors)} problem(s); {len(shifts)} shifts read"]
            lines += [f"{path.name}: {e}" for e in errors]
            report.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(path, target)
        if self.rota.ready_suffix:
            (path.parent / (path.name + self.rota.ready_suffix)).unlink(missing_ok=True)
        outcome.moved_to = target
        return outcome
