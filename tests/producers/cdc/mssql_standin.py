"""A STAND-IN FOR SQL SERVER, NOT SQL SERVER: a fake ``pymssql`` module over SQLite, for the poller's tests.

No SQL Server can run on the development machines. This reproduces only the documented SQL Server behaviour
that the poller's SQL Server dialect relies on, and nothing else:

- ``rowversion`` ("rowversion (Transact-SQL)"): one counter per database, incremented by every insert and
  update of a row in a table that has a rowversion column; the value is ``binary(8)``, big-endian, so
  comparing the bytes orders them as the numbers. Here a SQLite trigger (:meth:`Server.add_rowversion`) sets
  the column from the counter.
- ``MIN_ACTIVE_ROWVERSION()`` ("MIN_ACTIVE_ROWVERSION (Transact-SQL)"): the lowest rowversion value still
  held by an open transaction, or ``@@DBTS + 1`` (the next value) when none is open.
- What pymssql shows the caller: ``%s`` parameters, ``[name]`` quoting (SQLite accepts it too), ``datetime2``
  as ``datetime``, ``decimal`` as ``Decimal`` with its scale, ``rowversion`` as 8 ``bytes``; read committed:
  another connection's uncommitted rows are not seen.

SQLite allows one writer at a time, but SQL Server transactions interleave. A :meth:`Server.connect` with
``open_transaction=True`` stands for a till whose transaction stays open while others commit: each of its
single-row ``INSERT``s into a table with a rowversion takes its rowversion when executed (holding
MIN_ACTIVE_ROWVERSION down), and the rows are written at :meth:`Connection.commit`. The T-SQL of the
setup script is not run here: tests compare its text, and write change rows as its triggers would.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sqlite3.register_converter("DATETIME2", lambda b: datetime.fromisoformat(b.decode()))
sqlite3.register_converter("DECIMAL_TEXT", lambda b: Decimal(b.decode()))  # TEXT affinity keeps the scale


_INSERT = re.compile(r"\s*INSERT INTO (?:\[dbo\]\.)?\[?(\w+)\]?", re.IGNORECASE)


class Error(Exception):
    """pymssql.Error"""


class Server:
    """One database: a SQLite file, its rowversion counter (@@DBTS) and the rowversions of open transactions.

    Passed where the dialect takes the ``pymssql`` module: it has ``connect`` and ``Error``.
    """

    Error = Error

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dbts = 0
        self.active: dict[int, int] = {}  # open transaction -> the lowest rowversion it holds
        self.logins: list[dict[str, Any]] = []
        self.rowversion_tables: set[str] = set()
        with self._sqlite() as conn:
            conn.execute("PRAGMA dbo.journal_mode=WAL")

    def _sqlite(self) -> sqlite3.Connection:
        """The database file is attached as schema ``dbo``, so ``[dbo].[table]`` names work as in SQL Server."""
        conn = sqlite3.connect(":memory:", detect_types=sqlite3.PARSE_DECLTYPES, isolation_level=None, timeout=5)
        conn.execute("ATTACH DATABASE ? AS dbo", (str(self.path),))
        conn.create_function("MIN_ACTIVE_ROWVERSION", 0, self.min_active_rowversion)
        return conn

    def next_rowversion(self) -> bytes:
        self.dbts += 1
        return self.dbts.to_bytes(8, "big")

    def min_active_rowversion(self) -> bytes:
        return min(self.active.values(), default=self.dbts + 1).to_bytes(8, "big")

    def execute(self, *statements: str) -> None:
        """DDL (SQLite syntax: this is the stand-in's own schema, not T-SQL)."""
        with self._sqlite() as conn:
            for statement in statements:
                conn.execute(statement)

    def add_rowversion(self, table: str, column: str = "rv") -> None:
        """What a ``rowversion`` column does by itself in SQL Server: a new value on every insert and update."""
        self.rowversion_tables.add(table)
        with self._sqlite() as conn:
            for event, when in (("INSERT", ""), ("UPDATE", f" WHEN NEW.{column} IS OLD.{column}")):
                conn.execute(
                    f"CREATE TRIGGER dbo.{table}_{column}_{event} AFTER {event} ON {table}{when} BEGIN "
                    f"UPDATE {table} SET {column} = tillflow_rowversion() WHERE rowid = NEW.rowid; END"
                )

    def connect(self, open_transaction: bool = False, **login: Any) -> Connection:
        """``pymssql.connect(server=..., port=..., user=..., password=..., database=...)``."""
        self.logins.append(login)
        return Connection(self, open_transaction)


class Cursor:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.description: list[tuple[Any, ...]] | None = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        sql = sql.replace("%s", "?")
        insert = _INSERT.match(sql)
        if self.conn.deferred is not None and insert:
            server = self.conn.server
            rowversion = server.next_rowversion() if insert[1] in server.rowversion_tables else None
            if rowversion is not None:
                server.active.setdefault(id(self.conn), server.dbts)
            self.conn.deferred.append((sql, params, rowversion))
            return
        try:
            cur = self.conn.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise Error(str(exc)) from None
        self.description = cur.description  # type: ignore[assignment]
        self._rows = list(cur.fetchall())

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def close(self) -> None:
        pass


class Connection:
    def __init__(self, server: Server, open_transaction: bool) -> None:
        self.server = server
        self.db = server._sqlite()
        self.db.create_function("tillflow_rowversion", 0, self._rowversion)
        self.deferred: list[tuple[str, tuple[Any, ...], bytes | None]] | None = [] if open_transaction else None
        self._forced: bytes | None = None

    def _rowversion(self) -> bytes:
        return self._forced or self.server.next_rowversion()

    def cursor(self) -> Cursor:
        return Cursor(self)

    def commit(self) -> None:
        """Writes an open transaction's rows with the rowversions they took, then releases them."""
        if self.deferred:
            self.db.execute("BEGIN IMMEDIATE")
            for sql, params, rowversion in self.deferred:
                self._forced = rowversion
                self.db.execute(sql, params)
            self._forced = None
            self.db.execute("COMMIT")
            self.deferred.clear()
        self.server.active.pop(id(self), None)

    def rollback(self) -> None:
        if self.deferred:
            self.deferred.clear()
        self.server.active.pop(id(self), None)

    def close(self) -> None:
        self.rollback()
        self.db.close()
