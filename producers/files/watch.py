"""Watch an export folder: take complete files, publish their tickets, move them to processed/ or rejected/.

A file is taken once it has not changed for ``settle_seconds`` (and, if the spec says so, once its ready
marker exists). Tickets are sent in batches; each acknowledged batch is recorded in the checkpoint store, so a
restart mid-file, or the same file dropped again, publishes no ticket twice. A file with any bad line goes to
rejected/ beside ``<file>.errors.txt`` (line and reason per problem); its good tickets are published. When
Kafka or the registry cannot be reached, :class:`KafkaUnavailable` is raised and the file stays in the inbox.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from producers.files.parse import LineError, parse_file
from producers.files.spec import FileSpec
from producers.pos.checkpoint import CheckpointStore
from producers.pos.publish import TicketPublisher, note_inflight, reconcile_inflight
from schemas.models import PosTicket
from schemas.serde import RegistryUnavailable
from tillflow.errors import UnavailableError
from tillflow.sender import DeliveryError

log = logging.getLogger(__name__)
BATCH = 500


class KafkaUnavailable(UnavailableError):
    """Kafka or the schema registry could not take the tickets now; the file stays in the inbox for later."""


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means Kafka or the registry is away (retry later), not a bug or a bad file."""
    kinds = (DeliveryError, KafkaException, SchemaRegistryError, RegistryUnavailable, ConnectionError, TimeoutError)
    # The registry client raises httpx's (or httpx2's) transport errors when it cannot connect.
    return isinstance(exc, kinds) or type(exc).__module__.split(".")[0] in ("httpx", "httpx2")


@dataclass
class FileOutcome:
    name: str
    tickets: int = 0
    published: int = 0
    errors: list[LineError] = field(default_factory=list)
    moved_to: Path | None = None


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    n = 1
    while target.exists():
        target = folder / f"{name}.{n}"
        n += 1
    return target


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return f"Kafka: {exc.args[0].str()}"
    return f"{type(exc).__name__}: {exc}"


class FileWatcher:
    def __init__(self, spec: FileSpec, inbox: Path, sink: TicketPublisher, store: CheckpointStore,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.spec = spec
        self.inbox = inbox
        self.sink = sink
        self.store = store
        self.clock = clock
        self.processed = inbox / "processed"
        self.rejected = inbox / "rejected"

    def ready(self) -> list[Path]:
        """Complete files in the inbox, oldest first."""
        spec = self.spec
        out = []
        for path in self.inbox.iterdir():
            name = path.name
            if not path.is_file() or name.startswith(".") or name.endswith((".tmp", ".part", ".partial")):
                continue
            if spec.ready_suffix and name.endswith(spec.ready_suffix):
                continue
            if not any(fnmatch.fnmatch(name, p) for p in spec.patterns):
                continue
            if spec.ready_suffix and not (path.parent / (name + spec.ready_suffix)).exists():
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if self.clock() - st.st_mtime < spec.settle_seconds:
                continue
            out.append((st.st_mtime, path))
        return [p for _, p in sorted(out)]

    def process(self, path: Path) -> FileOutcome:
        """Parse, publish (acknowledged batch by batch), then move the file with its error report."""
        outcome = FileOutcome(path.name)
        result = parse_file(path.read_bytes(), self.spec, datetime.now(UTC))
        outcome.tickets = len(result.tickets)
        outcome.errors = result.errors
        try:
            self._publish(result.tickets, outcome)
        except Exception as exc:
            if not unreachable(exc):
                raise
            raise KafkaUnavailable(_describe(exc)) from exc
        folder = self.rejected if result.errors else self.processed
        folder.mkdir(exist_ok=True)
        target = _free_name(folder, path.name)
        if result.errors:
            report = target.with_name(target.name + ".errors.txt")
            lines = [f"{path.name}: {len(result.errors)} problem(s); {outcome.tickets} tickets read"]
            lines += [f"{path.name}: {e}" for e in result.errors]
            tmp = report.with_name(report.name + ".tmp")
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            os.replace(tmp, report)
            for e in result.errors:
                log.warning("%s: %s", path.name, e)
        os.replace(path, target)
        if self.spec.ready_suffix:
            (path.parent / (path.name + self.spec.ready_suffix)).unlink(missing_ok=True)
        outcome.moved_to = target
        return outcome

    def _publish(self, tickets: list[PosTicket], outcome: FileOutcome) -> None:
        reconcile_inflight(self.store, self.sink, self.spec.name)
        new = self.store.unpublished(self.spec.name, tickets)
        for i in range(0, len(new), BATCH):
            batch = new[i : i + BATCH]
            note_inflight(self.store, self.sink, self.spec.name, batch)
            for ticket in batch:
                self.sink.send(ticket)
            self.sink.flush()
            self.store.commit(self.spec.name, batch, None)
            outcome.published += len(batch)

    def scan(self) -> list[FileOutcome]:
        """Process every complete file; a file that vanishes or cannot be read is left for the next scan.

        Raises :class:`KafkaUnavailable` at the first file whose tickets cannot be sent (it stays in place).
        """
        outcomes = []
        for path in self.ready():
            try:
                outcomes.append(self.process(path))
            except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
                log.warning("%s: cannot read now (%s); will retry", path.name, exc.strerror)
        return outcomes
