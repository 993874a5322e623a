"""Durable sync state of one source in SQLite (WAL): the checkpoint and what was published.

The checkpoint advances only in the same transaction that records the fingerprints of the tickets the broker
acknowledged, so a restart resumes from acknowledged state. A page being sent is noted first (*in flight*,
with the topic's end offsets), so that a crash between Kafka's acknowledgement and that transaction can be
reconciled from the topic instead of sending the page again. A ticket is published again only if its content
changed (an order that gained a refund or was re-priced), which is how the overlap window re-reads without
duplicating.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from schemas.models import PosTicket
from tillflow.durable import open_durable


def fingerprint(ticket: PosTicket) -> str:
    """A digest of everything in the ticket except when it was ingested."""
    data = ticket.to_json()
    data.pop("ingested_at", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


class CheckpointStore:
    """Per-source position and published-ticket fingerprints in one SQLite file."""

    def __init__(self, path: Path, shared: bool = False) -> None:
        """``shared``: used from several threads, one at a time (the caller serialises; the webhook server)."""
        self.path = path
        self.db = open_durable(path, check_same_thread=not shared)
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS checkpoint (source TEXT PRIMARY KEY, position TEXT NOT NULL, saved_at REAL);
            CREATE TABLE IF NOT EXISTS inflight (source TEXT PRIMARY KEY, marker TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS published (
                source TEXT NOT NULL, ticket_id TEXT NOT NULL, fingerprint TEXT NOT NULL, published_at REAL,
                PRIMARY KEY (source, ticket_id));
            """
        )

    def position(self, source: str) -> str | None:
        row = self.db.execute("SELECT position FROM checkpoint WHERE source = ?", (source,)).fetchone()
        return row[0] if row else None

    def unpublished(self, source: str, tickets: Iterable[PosTicket]) -> list[PosTicket]:
        """The tickets that are new or changed since they were last acknowledged."""
        out = []
        seen: dict[str, str] = {}
        for t in tickets:
            fp = fingerprint(t)
            if seen.get(t.ticket_id) == fp:
                continue
            row = self.db.execute(
                "SELECT fingerprint FROM published WHERE source = ? AND ticket_id = ?", (source, t.ticket_id)
            ).fetchone()
            if row is None or row[0] != fp:
                out.append(t)
                seen[t.ticket_id] = fp
        return out

    def unseen(self, source: str, keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (key, fingerprint) pairs not recorded yet (rejected records already sent to the DLQ)."""
        out = []
        for key, fp in keys:
            row = self.db.execute(
                "SELECT fingerprint FROM published WHERE source = ? AND ticket_id = ?", (source, key)
            ).fetchone()
            if (row is None or row[0] != fp) and (key, fp) not in out:
                out.append((key, fp))
        return out

    def commit(
        self,
        source: str,
        acknowledged: Iterable[PosTicket],
        position: str | None,
        keys: Iterable[tuple[str, str]] = (),
        clear_inflight: bool = True,
    ) -> None:
        """Record acknowledged tickets (and other keys) and, if given, the new position, atomically. A writer
        that never notes pages in flight (the webhook server) leaves the poller's note alone."""
        now = time.time()
        rows = [(source, t.ticket_id, fingerprint(t), now) for t in acknowledged]
        rows += [(source, key, fp, now) for key, fp in keys]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT INTO published (source, ticket_id, fingerprint, published_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, ticket_id) DO UPDATE SET fingerprint = excluded.fingerprint, "
                "published_at = excluded.published_at",
                rows,
            )
            if clear_inflight:
                self.db.execute("DELETE FROM inflight WHERE source = ?", (source,))
            if position is not None:
                self.db.execute(
                    "INSERT INTO checkpoint (source, position, saved_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (source) DO UPDATE SET position = excluded.position, saved_at = excluded.saved_at",
                    (source, position, now),
                )

    def set_inflight(self, source: str, marker: dict[str, Any]) -> None:
        """Note a page about to be sent (topic end offsets and its ticket keys); ``commit`` clears it."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO inflight (source, marker) VALUES (?, ?)", (source, json.dumps(marker))
            )

    def inflight(self, source: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT marker FROM inflight WHERE source = ?", (source,)).fetchone()
        return json.loads(row[0]) if row else None

    def published_count(self, source: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM published WHERE source = ?", (source,)).fetchone()[0])

    def close(self) -> None:
        self.db.close()
