"""The collector's spec, its local sources (an export folder, a local SQLite database) and its main loop."""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from producers.collector.forward import Forwarder
from producers.collector.spool import Spool, SpoolSink
from producers.files.parse import LineError, Row, rows_to_tickets
from producers.files.spec import FileSpec, load_spec
from producers.files.watch import FileWatcher
from producers.pos.checkpoint import CheckpointStore
from tillflow.documents import read_document, validate_document
from tillflow.errors import ConfigError
from tillflow.settings import Settings

log = logging.getLogger(__name__)


class CollectorSpecError(ConfigError):
    """A collector spec that cannot be used."""


class FolderSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Field(description="The folder the POS exports into.")
    spec: Path = Field(description="The files' mapping spec (see `tillflow files watch`).")


class SqliteSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    database: Path = Field(description="The POS's SQLite database (opened read-only).")
    query: str = Field(description="SELECT returning one row per ticket line, with `:since` in its WHERE.")
    watermark: str = Field(description="Column of the query that only grows (change time or row version).")
    spec: Path = Field(description="Mapping spec (format csv): fields name the query's columns.")
    start: str = Field("", description="`:since` of the first run.")


class CollectorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Collector id (Kafka header, state names).")
    folder: FolderSource | None = None
    sqlite: SqliteSource | None = None
    spool: Path | None = Field(None, description="Spool file; default <state_dir>/collector/<name>.spool.sqlite.")
    interval: float = Field(2.0, gt=0, description="Seconds between looks at the local source.")
    batch: int = Field(500, ge=1, description="Tickets per batch sent to Kafka.")
    keep_sent_days: float = Field(
        30, gt=0, description="Days a sent ticket stays in the spool (guarding against re-adds); pruned hourly."
    )


def load_collector_spec(path: Path) -> CollectorSpec:
    data = read_document(path, CollectorSpecError)
    spec = validate_document(CollectorSpec, data or {}, path, CollectorSpecError, "folder or sqlite")
    if (spec.folder is None) == (spec.sqlite is None):
        raise CollectorSpecError(f"collector spec {path}: give exactly one of folder or sqlite")
    base = path.parent
    for src in (spec.folder, spec.sqlite):
        if src is not None and not src.spec.is_absolute():
            src.spec = base / src.spec
    return spec


class SqlitePoller:
    """Reads changed ticket lines from a local SQLite database by a growing watermark column.

    The watermark query says which tickets changed; every row of those tickets is then read again (the same
    query from ``start``, filtered by ticket number), so a line added to a ticket later re-publishes the whole
    ticket, never one made of the new rows alone.
    """

    CHUNK = 500  # ticket numbers per re-select (SQLite allows 32766 parameters; stay well below)

    def __init__(self, src: SqliteSource, spec: FileSpec, sink: SpoolSink, store: CheckpointStore,
                 rejects: Path) -> None:  # fmt: skip
        self.src = src
        self.spec = spec
        self.sink = sink
        self.store = store
        self.rejects = rejects
        ticket_col = spec.fields.get("ticket")
        if not isinstance(ticket_col, str):
            raise CollectorSpecError(f"{src.spec}: fields.ticket must name a column of the query")
        self.ticket_col = ticket_col

    def _values(self, row: sqlite3.Row) -> dict[str, str]:
        keys = row.keys()
        return {f: str(row[c]) for f, c in self.spec.fields.items() if isinstance(c, str) and c in keys}

    def _whole_tickets(self, db: sqlite3.Connection, numbers: list[Any]) -> list[sqlite3.Row]:
        """Every row of the tickets ``numbers``: the source query from ``start``, filtered by ticket number."""
        query = self.src.query.strip().rstrip(";")
        column = '"' + self.ticket_col.replace('"', '""') + '"'
        out: list[sqlite3.Row] = []
        for i in range(0, len(numbers), self.CHUNK):
            chunk = numbers[i : i + self.CHUNK]
            names = {f"_t{n}": v for n, v in enumerate(chunk)}
            sql = f"SELECT * FROM ({query}) WHERE {column} IN ({', '.join(':' + k for k in names)})"
            out += db.execute(sql, {"since": self.src.start, **names}).fetchall()
        return out

    def poll(self) -> int:
        since = self.store.position(self.spec.name) or self.src.start
        uri = f"file:{self.src.database}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=30) as db:
            db.row_factory = sqlite3.Row
            changed = db.execute(self.src.query, {"since": since}).fetchall()
            if not changed:
                return 0
            keyed = [(row, _ticket_key(self._values(row))) for row in changed]
            touched = {key for _, key in keyed if key[1]}
            numbers = list(dict.fromkeys(row[self.ticket_col] for row, key in keyed if key[1]))
            rows = [r for r in self._whole_tickets(db, numbers) if _ticket_key(self._values(r)) in touched]
            rows += [row for row, key in keyed if not key[1]]  # reported: ticket number is empty
        records: list[Row | LineError] = [Row(i, self._values(row)) for i, row in enumerate(rows, 1)]
        top = str(max(row[self.src.watermark] for row in changed))
        tickets, errors = rows_to_tickets(records, self.spec, datetime.now(UTC))
        if errors:
            with self.rejects.open("a", encoding="utf-8") as fh:
                for e in errors:
                    fh.write(f"{datetime.now(UTC).isoformat()} {self.src.database} row {e.line} of the query: "
                             f"{e.reason}\n")  # fmt: skip
        new = self.store.unpublished(self.spec.name, tickets)
        for t in new:
            self.sink.send(t)
        self.sink.flush()  # durable in the spool before the watermark moves
        self.store.commit(self.spec.name, new, str(top))
        return len(new)


def _ticket_key(values: dict[str, str]) -> tuple[str, str]:
    return values.get("store", "").strip(), values.get("ticket", "").strip()


class Collector:
    """Local source -> spool -> Kafka, one step at a time."""

    PRUNE_EVERY = 3600.0
    """Seconds between removals of sent spool rows older than ``keep_sent_days`` (the first at the first step)."""

    def __init__(self, spec: CollectorSpec, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        state = settings.state_dir / "collector"
        self.spec = spec
        self.clock = clock
        self.spool = Spool(spec.spool or state / f"{spec.name}.spool.sqlite")
        self.sink = SpoolSink(self.spool)
        self.store = CheckpointStore(state / f"{spec.name}.source.sqlite")
        self.intake: Callable[[], int]
        if spec.folder is not None:
            watcher = FileWatcher(load_spec(spec.folder.spec), spec.folder.path, self.sink, self.store)
            self.intake = lambda: sum(o.published for o in watcher.scan())
        else:
            assert spec.sqlite is not None
            poller = SqlitePoller(spec.sqlite, load_spec(spec.sqlite.spec), self.sink, self.store,
                                  state / f"{spec.name}.rejects.txt")  # fmt: skip
            self.intake = poller.poll
        self.forwarder = Forwarder(settings, self.spool, spec.name, batch=spec.batch)
        self._last_intake = -math.inf
        self._last_prune = -math.inf
        self.pruned = 0

    def step(self) -> tuple[int, int]:
        """Take from the local source (every ``interval``), then forward; returns (taken, confirmed).

        Every ``PRUNE_EVERY`` seconds, sent spool rows older than ``keep_sent_days`` are removed.
        """
        now = self.clock()
        if now - self._last_prune >= self.PRUNE_EVERY:
            self._last_prune = now
            removed = self.spool.prune(self.spec.keep_sent_days * 86400)
            self.pruned += removed
            if removed:
                log.info("spool: removed %d tickets sent more than %g days ago", removed, self.spec.keep_sent_days)
        taken = 0
        if now - self._last_intake >= self.spec.interval:
            self._last_intake = now
            try:
                taken = self.intake()
            except (OSError, sqlite3.Error) as exc:
                log.warning("local source: %s", exc)
        return taken, self.forwarder.step()

    def close(self) -> None:
        self.spool.close()
        self.store.close()
