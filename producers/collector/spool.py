"""A durable spool of tickets in SQLite (WAL, synchronous=FULL): survives restarts and power cuts.

Rows keep their arrival order (``seq``). A ticket whose content is already spooled is not added twice. Rows
are marked sent once Kafka acknowledged them; before a batch is sent, the partition end offsets are saved as
the *in-flight* marker, so after a crash the collector can look in Kafka for what of that batch already
arrived (see :mod:`producers.collector.forward`) instead of sending it twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.pos.checkpoint import fingerprint
from schemas.models import PosTicket
from tillflow.durable import open_durable


@dataclass(frozen=True)
class Spooled:
    seq: int
    ticket: PosTicket


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_durable(path)
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS spool (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, ticket_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
                body TEXT NOT NULL, added_at REAL NOT NULL, sent_at REAL,
                UNIQUE (ticket_id, fingerprint));
            CREATE INDEX IF NOT EXISTS spool_unsent ON spool (seq) WHERE sent_at IS NULL;
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )

    def add(self, tickets: Iterable[PosTicket]) -> int:
        """Append tickets not spooled before (same id and content); returns how many were new."""
        now = time.time()
        rows = [(t.ticket_id, fingerprint(t), json.dumps(t.to_json()), now) for t in tickets]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO spool (ticket_id, fingerprint, body, added_at) VALUES (?, ?, ?, ?)", rows
            )
            return self.db.total_changes - before

    def pending(self, limit: int) -> list[Spooled]:
        rows = self.db.execute(
            "SELECT seq, body FROM spool WHERE sent_at IS NULL ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [Spooled(seq, PosTicket.model_validate(json.loads(body))) for seq, body in rows]

    def mark_sent(self, seqs: Iterable[int], clear_inflight: bool = True) -> None:
        """Mark rows acknowledged (and, by default, end the in-flight batch) in one transaction."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("UPDATE spool SET sent_at = ? WHERE seq = ?", [(now, s) for s in seqs])
            if clear_inflight:
                self.db.execute("DELETE FROM meta WHERE key = 'inflight'")

    def set_inflight(self, marker: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('inflight', ?)", (json.dumps(marker),))

    def inflight(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'inflight'").fetchone()
        return json.loads(row[0]) if row else None

    def depth(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM spool WHERE sent_at IS NULL").fetchone()[0])

    def oldest_age(self) -> float:
        row = self.db.execute("SELECT min(added_at) FROM spool WHERE sent_at IS NULL").fetchone()
        return time.time() - row[0] if row and row[0] else 0.0

    def prune(self, older_than_s: float) -> int:
        """Forget sent rows older than ``older_than_s`` (their fingerprints stop guarding against re-adds)."""
        with self.db:
            cur = self.db.execute(
                "DELETE FROM spool WHERE sent_at IS NOT NULL AND sent_at < ?", (time.time() - older_than_s,)
            )
            return cur.rowcount

    def close(self) -> None:
        self.db.close()


class SpoolSink:
    """A TicketPublisher for the local sources: ``flush`` makes the buffered tickets durable in the spool."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._buffer: list[PosTicket] = []
        self.rejects: list[tuple[str, str]] = []

    def send(self, ticket: PosTicket) -> None:
        self._buffer.append(ticket)

    def reject(self, source: str, record_id: str, payload: Any, reason: str) -> None:
        self.rejects.append((record_id, reason))

    def flush(self) -> None:
        self.spool.add(self._buffer)
        self._buffer.clear()
