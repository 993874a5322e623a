"""`tillflow cdc poll`: change events from a database without log-based capture (SQLite here).

Two methods, both writing Debezium-shaped envelopes to the same raw topics as the connector, so the same
normalizer turns them into tickets:

- ``watermark``: re-read tickets whose ``watermark_column`` is at or after (highest seen - ``overlap_s``),
  then all lines and payments of each changed ticket. The overlap catches a transaction that commits late
  with an older timestamp; rows are de-duplicated by content hash, so re-reads emit nothing. Lines or
  payments removed from a changed ticket become deletes. Loses: a late commit older than the overlap,
  deleted tickets (a deleted row has no watermark), changes of lines that do not touch the ticket's
  watermark, and intermediate states between two polls.
- ``change_table``: triggers (see :func:`sqlite_trigger_sql`) append every insert, update and delete with
  the row image to a change table read in sequence order. Loses nothing the triggers saw; needs the right
  to add triggers, and adds a write per change to the POS database.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from producers.cdc.source import CdcSource, Engine, TableSpec


class PollError(RuntimeError):
    """The poller cannot read the source (wrong engine, missing column or change table)."""


@dataclass(frozen=True)
class RawChange:
    topic: str
    key: dict[str, Any]
    value: dict[str, Any]


def _hash(row: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()


def lower_watermark(value: Any, overlap_s: float) -> Any:
    """``value`` minus the overlap: ISO text stays ISO text of the same shape; numbers are epoch s or ms."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value - overlap_s * (1000 if abs(value) > 10**11 else 1)
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PollError(f"watermark value {value!r} is neither a number nor an ISO 8601 time") from None
    lowered = parsed - timedelta(seconds=overlap_s)
    sep = "T" if "T" in text else " "
    return lowered.isoformat(sep=sep, timespec="microseconds" if "." in text else "seconds")


class PollState:
    """What the poller has emitted: row hashes and images, the watermark, the event sequence (SQLite file).

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
        )
        self.meta: dict[str, Any] = {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}
        self._rows: dict[tuple[str, str], tuple[str, str, dict[str, Any]] | None] = {}

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

    def commit(self) -> None:
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

    def rollback(self) -> None:
        self._rows.clear()
        self.meta = {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def close(self) -> None:
        self.db.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_trigger_sql(source: CdcSource) -> str:
    """The setup script of the ``change_table`` method on SQLite: a change table and 9 triggers.

    Each change stores the row image (allowlisted columns only) as JSON, old image for deletes.
    """
    table = _quote(source.poll.change_table)
    parts = [
        f"CREATE TABLE IF NOT EXISTS {table} (\n"
        "    seq INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "    tbl TEXT NOT NULL,\n"
        "    op TEXT NOT NULL CHECK (op IN ('c', 'u', 'd')),\n"
        "    image TEXT NOT NULL,\n"
        "    changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))\n"
        ");"
    ]
    for spec in (source.tables.tickets, source.tables.lines, source.tables.payments):
        for event, op, ref in (("INSERT", "c", "NEW"), ("UPDATE", "u", "NEW"), ("DELETE", "d", "OLD")):
            image = ", ".join(f"'{col}', {ref}.{_quote(col)}" for col in spec.allowlist)
            parts.append(
                f"CREATE TRIGGER IF NOT EXISTS {_quote(f'tillflow_{spec.name}_{op}')} AFTER {event} ON "
                f"{_quote(spec.name)}\nBEGIN\n    INSERT INTO {table} (tbl, op, image) "
                f"VALUES ('{spec.name}', '{op}', json_object({image}));\nEND;"
            )
    return "\n\n".join(parts) + "\n"


class Poller:
    """Reads one SQLite POS database; :meth:`poll` returns changes, :meth:`commit` records them as sent."""

    def __init__(self, source: CdcSource, state_path: Path, clock: Callable[[], float] = time.time) -> None:
        if source.engine != Engine.SQLITE or source.path is None:
            raise PollError(f"source {source.name}: tillflow cdc poll reads SQLite databases (engine sqlite, path)")
        self.source = source
        self.state = PollState(state_path)
        self.clock = clock
        self.roles = {
            "tickets": source.tables.tickets,
            "lines": source.tables.lines,
            "payments": source.tables.payments,
        }
        self.topics = source.raw_topics()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{self.source.path}?mode=ro", uri=True, timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def _select(self, spec: TableSpec) -> str:
        return "SELECT " + ", ".join(_quote(c) for c in spec.allowlist) + f" FROM {_quote(spec.name)}"

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
        with self._connect() as conn:
            if self.source.poll.method == "change_table":
                return self._poll_change_table(conn)
            return self._poll_watermark(conn)

    def _poll_watermark(self, conn: sqlite3.Connection) -> list[RawChange]:
        tickets = self.roles["tickets"]
        wm_col = self.source.poll.watermark_column
        if wm_col not in tickets.allowlist:
            raise PollError(f"watermark column {wm_col!r} must be mapped or listed in tables.tickets.extra_columns")
        high = self.state.get("watermark")
        since = lower_watermark(high, self.source.poll.overlap_s)
        query = self._select(tickets)
        if since is not None:
            query += f" WHERE {_quote(wm_col)} >= ?"
        try:
            headers = [
                dict(r) for r in conn.execute(query + f" ORDER BY {_quote(wm_col)}", () if since is None else (since,))
            ]
        except sqlite3.Error as exc:
            raise PollError(f"{tickets.name}: {exc}") from None
        changes: list[RawChange] = []
        tid_col = tickets.columns["ticket_id"]
        for header in headers:
            ticket = str(header[tid_col])
            children: list[RawChange] = []
            for role in ("lines", "payments"):
                spec = self.roles[role]
                where = f" WHERE {_quote(spec.columns['ticket_id'])} = ?"
                rows = [dict(r) for r in conn.execute(self._select(spec) + where, (header[tid_col],))]
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

    def _poll_change_table(self, conn: sqlite3.Connection) -> list[RawChange]:
        last = int(self.state.get("change_seq", 0))
        by_name = {spec.name: role for role, spec in self.roles.items()}
        try:
            rows = conn.execute(
                f"SELECT seq, tbl, op, image FROM {_quote(self.source.poll.change_table)} WHERE seq > ? ORDER BY seq",
                (last,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise PollError(f"change table {self.source.poll.change_table}: {exc} (run the setup script)") from None
        changes = []
        for row in rows:
            role = by_name.get(row["tbl"])
            last = int(row["seq"])
            if role is None:
                continue
            image = json.loads(row["image"])
            spec = self.roles[role]
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
        return changes

    def commit(self) -> None:
        self.state.commit()

    def rollback(self) -> None:
        self.state.rollback()

    def close(self) -> None:
        self.state.close()
