"""`tillflow cdc poll`: change events from a database without log-based capture (SQLite, Firebird, SQL Server).

Two methods on every engine (and ``rowversion`` on SQL Server), all writing Debezium-shaped envelopes to the
same raw topics as the connector, so the same normalizer turns them into tickets:

- ``watermark``: re-read tickets whose ``watermark_column`` is at or after (highest seen - ``overlap_s``),
  then all lines and payments of each changed ticket. The overlap catches a transaction that commits late
  with an older timestamp; rows are de-duplicated by content hash, so re-reads emit nothing. Lines or
  payments removed from a changed ticket become deletes. Loses: a late commit older than the overlap,
  deleted tickets (a deleted row has no watermark), changes of lines that do not touch the ticket's
  watermark, and intermediate states between two polls.
- ``rowversion`` (SQL Server): the same re-read, but on a ``rowversion`` column bounded by
  ``MIN_ACTIVE_ROWVERSION()``, which needs no overlap (see :class:`~producers.cdc.dialects.SqlServerDialect`).
- ``change_table``: triggers (the setup script of each dialect) append every insert, update and delete with
  the row image to a change table read in sequence order. Loses nothing the triggers saw; needs the right
  to add triggers, and adds a write per change to the POS database.

The engine-specific SQL lives in :mod:`producers.cdc.dialects`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.cdc.dialects import Dialect, PollError, SqliteDialect, dialect_for, lower_watermark, plain
from producers.cdc.source import CdcSource, TableSpec

__all__ = ["PollError", "PollState", "Poller", "RawChange", "lower_watermark", "sqlite_trigger_sql"]


@dataclass(frozen=True)
class RawChange:
    topic: str
    key: dict[str, Any]
    value: dict[str, Any]


def _hash(row: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()


class PollState:
    """What the poller has emitted: row hashes and images, the watermark, the event sequence (SQLite file),
    and the change rows sent inside the change table's overlap window (where the dialect re-reads one).

    Changes are staged in memory and written by :meth:`commit`, after the broker acknowledged the events.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"
            "CREATE TABLE IF NOT EXISTS rows (tbl TEXT, row_key TEXT, ticket TEXT, hash TEXT, image TEXT,"
            " PRIMARY KEY (tbl, row_key));"
            "CREATE INDEX IF NOT EXISTS rows_ticket ON rows (tbl, ticket);"
            "CREATE TABLE IF NOT EXISTS seen (pos TEXT PRIMARY KEY, at TEXT);"
        )
        self.meta: dict[str, Any] = {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}
        self._rows: dict[tuple[str, str], tuple[str, str, dict[str, Any]] | None] = {}
        self._seen: dict[str, str] = {}
        self._forget_before: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        self.meta[key] = value

    def next_seq(self) -> int:
        seq = int(self.meta.get("seq", 0)) + 1
        self.meta["seq"] = seq
        return seq

    def row(self, table: str, row_key: str) -> tuple[str, dict[str, Any]] | None:
        if (table, row_key) in self._rows:
            staged = self._rows[(table, row_key)]
            return None if staged is None else (staged[1], staged[2])
        found = self.db.execute(
            "SELECT hash, image FROM rows WHERE tbl = ? AND row_key = ?", (table, row_key)
        ).fetchone()
        return None if found is None else (found[0], json.loads(found[1]))

    def children(self, table: str, ticket: str) -> set[str]:
        keys = {r[0] for r in self.db.execute("SELECT row_key FROM rows WHERE tbl = ? AND ticket = ?", (table, ticket))}
        for (tbl, key), staged in self._rows.items():
            if tbl == table:
                if staged is None:
                    keys.discard(key)
                elif staged[0] == ticket:
                    keys.add(key)
        return keys

    def put(self, table: str, row_key: str, ticket: str, image: dict[str, Any] | None) -> None:
        self._rows[(table, row_key)] = None if image is None else (ticket, _hash(image), image)

    def was_seen(self, pos: Any) -> bool:
        key = json.dumps(pos)
        return key in self._seen or self.db.execute("SELECT 1 FROM seen WHERE pos = ?", (key,)).fetchone() is not None

    def mark_seen(self, pos: Any, at: Any) -> None:
        self._seen[json.dumps(pos)] = str(at)

    def forget_seen_before(self, at: Any) -> None:
        """Change rows written before ``at`` are never re-read: drop them at the next commit."""
        self._forget_before = None if at is None else str(at)

    def commit(self) -> None:
        self.db.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?)", self._seen.items())
        if self._forget_before is not None:
            self.db.execute("DELETE FROM seen WHERE at < ?", (self._forget_before,))
        for (table, key), staged in self._rows.items():
            if staged is None:
                self.db.execute("DELETE FROM rows WHERE tbl = ? AND row_key = ?", (table, key))
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?, ?)",
                    (table, key, staged[0], staged[1], json.dumps(staged[2], default=str)),
                )
        for key, value in self.meta.items():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, default=str)))
        self.db.commit()
        self._rows.clear()
        self._seen.clear()
        self._forget_before = None

    def rollback(self) -> None:
        self._rows.clear()
        self._seen.clear()
        self._forget_before = None
        self.meta = {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def close(self) -> None:
        self.db.close()


def sqlite_trigger_sql(source: CdcSource) -> str:
    """The setup script of the ``change_table`` method on SQLite: a change table and 9 triggers."""
    return SqliteDialect(source).setup_script()


class Poller:
    """Reads one POS database; :meth:`poll` returns changes, :meth:`commit` records them as sent."""

    def __init__(
        self,
        source: CdcSource,
        state_path: Path,
        clock: Callable[[], float] = time.time,
        dialect: Dialect | None = None,
    ) -> None:
        self.dialect = dialect or dialect_for(source)
        self.source = source
        self.state = PollState(state_path)
        self.clock = clock
        self.roles = {
            "tickets": source.tables.tickets,
            "lines": source.tables.lines,
            "payments": source.tables.payments,
        }
        self.topics = source.raw_topics()

    def _rows(self, conn: Any, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Run a read; rows as dicts of JSON-safe values, keyed by the result column names."""
        with closing(conn.cursor()) as cur:
            cur.execute(sql, tuple(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, map(plain, row), strict=True)) for row in cur.fetchall()]

    def _key(self, spec: TableSpec, row: dict[str, Any]) -> str:
        return json.dumps([row.get(k) for k in spec.key], default=str)

    def _event(self, role: str, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> RawChange:
        spec = self.roles[role]
        now_ms = int(self.clock() * 1000)
        fk = spec.columns["ticket_id"]
        row = after if after is not None else before
        assert row is not None
        source = {"connector": "tillflow-poll", "name": self.source.name, "table": spec.name,
                  "seq": self.state.next_seq(), "ts_ms": now_ms}  # fmt: skip
        value = {"before": before, "after": after, "op": op, "source": source, "ts_ms": now_ms}
        return RawChange(self.topics[role], {fk: row.get(fk)}, value)

    def _diff(self, role: str, row: dict[str, Any], ticket: str) -> Iterator[RawChange]:
        spec = self.roles[role]
        key = self._key(spec, row)
        known = self.state.row(spec.name, key)
        if known is not None and known[0] == _hash(row):
            return  # re-read inside the overlap window: already sent
        self.state.put(spec.name, key, ticket, row)
        yield self._event(role, "c" if known is None else "u", None if known is None else known[1], row)

    def poll(self) -> list[RawChange]:
        """One pass; nothing is recorded until :meth:`commit`."""
        with closing(self.dialect.connect()) as conn:
            try:
                if self.source.poll.method == "change_table":
                    return self._poll_change_table(conn)
                return self._poll_watermark(conn)
            except self.dialect.errors as exc:
                raise PollError(f"source {self.source.name}: {exc}") from None
            finally:
                conn.rollback()  # read only: end the read transaction

    def _poll_watermark(self, conn: Any) -> list[RawChange]:
        tickets = self.roles["tickets"]
        wm_col = self.source.poll.watermark_column
        if wm_col not in tickets.allowlist:
            raise PollError(f"watermark column {wm_col!r} must be mapped or listed in tables.tickets.extra_columns")
        high = self.state.get("watermark")
        where, params = self.dialect.watermark_filter(wm_col, high, self.source.poll.overlap_s)
        query = self.dialect.select(tickets) + where + f" ORDER BY {self.dialect.quote(wm_col)}"
        try:
            headers = self._rows(conn, query, params)
        except self.dialect.errors as exc:
            raise PollError(f"{tickets.name}: {exc}") from None
        changes: list[RawChange] = []
        tid_col = tickets.columns["ticket_id"]
        for header in headers:
            ticket = str(header[tid_col])
            children: list[RawChange] = []
            for role in ("lines", "payments"):
                spec = self.roles[role]
                where = f" WHERE {self.dialect.quote(spec.columns['ticket_id'])} = {self.dialect.placeholder}"
                rows = self._rows(conn, self.dialect.select(spec) + where, [header[tid_col]])
                seen = set()
                for row in rows:
                    seen.add(self._key(spec, row))
                    children.extend(self._diff(role, row, ticket))
                for gone in self.state.children(spec.name, ticket) - seen:
                    known = self.state.row(spec.name, gone)
                    self.state.put(spec.name, gone, ticket, None)
                    if known is not None:
                        children.append(self._event(role, "d", known[1], None))
            changes.extend(children)
            changes.extend(self._diff("tickets", header, ticket))
            if high is None or header[wm_col] > high:
                high = header[wm_col]
        self.state.set_meta("watermark", high)
        return changes

    def _poll_change_table(self, conn: Any) -> list[RawChange]:
        """Change rows in order; where the dialect re-reads an overlap, rows already sent are skipped."""
        overlap = self.dialect.change_overlap
        last = self.state.get("change_seq")
        newest = self.state.get("change_at")
        since = lower_watermark(newest, self.source.poll.overlap_s) if overlap else None
        by_name = {spec.name: role for role, spec in self.roles.items()}
        try:
            rows = self._rows(conn, *self.dialect.change_query(last, since))
        except self.dialect.errors as exc:
            raise PollError(f"change table {self.source.poll.change_table}: {exc} (run the setup script)") from None
        changes = []
        for row in rows:
            if overlap:
                if self.state.was_seen(row["pos"]):
                    continue  # re-read inside the overlap window: already sent
                self.state.mark_seen(row["pos"], row["changed_at"])
                newest = row["changed_at"] if newest is None else max(newest, row["changed_at"])
            last = row["pos"] if last is None else max(last, row["pos"])
            role = by_name.get(row["tbl"])
            if role is None:
                continue
            spec = self.roles[role]
            image = self.dialect.decode_image(conn, spec, row["image"])
            key = self._key(spec, image)
            known = self.state.row(spec.name, key)
            ticket = str(image.get(spec.columns["ticket_id"]))
            if row["op"] == "d":
                self.state.put(spec.name, key, ticket, None)
                changes.append(self._event(role, "d", image, None))
            else:
                self.state.put(spec.name, key, ticket, image)
                changes.append(self._event(role, row["op"], None if known is None else known[1], image))
        self.state.set_meta("change_seq", last)
        if overlap:
            self.state.set_meta("change_at", newest)
            self.state.forget_seen_before(since)
        return changes

    def commit(self) -> None:
        self.state.commit()

    def rollback(self) -> None:
        self.state.rollback()

    def close(self) -> None:
        self.state.close()
