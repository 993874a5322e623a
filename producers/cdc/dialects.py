"""What `tillflow cdc poll` says differently to SQLite, Firebird and SQL Server.

A :class:`Dialect` connects (DB-API 2), quotes names, writes the watermark and change-table reads, turns
driver values into JSON-safe ones and renders the change table's setup script. Everything else (the overlap,
de-duplication, state, envelopes) is the engine-independent :class:`~producers.cdc.poller.Poller`.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any, ClassVar

from producers.cdc.source import CdcSource, DatabaseKind, TableSpec
from tillflow.errors import SourceError


class PollError(SourceError):
    """The poller cannot read the source (wrong engine, missing driver, column or change table)."""


def plain(value: Any) -> Any:
    """A driver value as JSON-safe data: decimals as exact strings (like Debezium's ``decimal.handling.mode=string``),
    times as ISO 8601 text, binary (SQL Server ``rowversion``) as ``0x`` + upper-case hex of fixed width."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex().upper()
    return value


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


def _iso_param(value: Any) -> Any:
    """A watermark kept as ISO text back to a ``datetime`` parameter (numbers and other text unchanged)."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


class Dialect:
    """The engine-specific part of the poller. Subclasses set the class attributes and override what differs."""

    engine: ClassVar[DatabaseKind]
    placeholder: ClassVar[str] = "?"
    change_overlap: ClassVar[bool] = False
    """True where a change row can become visible after rows with a higher sequence (sequence values are taken
    at write time, rows show at commit): the change table is then re-read ``overlap_s`` back and de-duplicated."""
    change_columns: ClassVar[dict[str, str]] = {
        "pos": "seq", "tbl": "tbl", "op": "op", "image": "image", "changed_at": "changed_at"}  # fmt: skip
    """Name in the poller -> column of the change table."""

    def __init__(self, source: CdcSource) -> None:
        self.source = source
        self.errors: tuple[type[BaseException], ...] = ()

    # --- names and reads ---------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def alias(self, name: str) -> str:
        """The result column name: the name as the source file spells it."""
        return self.quote(name)

    def table(self, name: str) -> str:
        return self.quote(name)

    def select(self, spec: TableSpec) -> str:
        """``SELECT`` of the allowlisted columns (nothing else leaves the store)."""
        cols = ", ".join(f"{self.quote(c)} AS {self.alias(c)}" for c in spec.allowlist)
        return f"SELECT {cols} FROM {self.table(spec.name)}"

    def param(self, value: Any) -> Any:
        """A JSON-safe value from the poller's state as a driver parameter."""
        return value

    def watermark_filter(self, column: str, high: Any, overlap_s: float) -> tuple[str, list[Any]]:
        """``WHERE`` (with the leading space, or empty) of the tickets re-read after watermark ``high``."""
        since = lower_watermark(high, overlap_s)
        if since is None:
            return "", []
        return f" WHERE {self.quote(column)} >= {self.placeholder}", [self.param(since)]

    def change_query(self, last: Any, since: Any) -> tuple[str, list[Any]]:
        """Change rows after position ``last`` (and, with :attr:`change_overlap`, written at or after ``since``)."""
        pos = self.quote(self.change_columns["pos"])
        sql = f"{self._change_select()} WHERE {pos} > {self.placeholder}"
        params = [self.param(last if last is not None else 0)]
        if since is not None:
            sql += f" OR {self.quote(self.change_columns['changed_at'])} >= {self.placeholder}"
            params.append(self.param(since))
        return sql + f" ORDER BY {pos}", params

    def _change_select(self) -> str:
        cols = ", ".join(f"{self.quote(c)} AS {self.alias(n)}" for n, c in self.change_columns.items())
        return f"SELECT {cols} FROM {self.table(self.source.poll.change_table)}"

    def decode_image(self, conn: Any, spec: TableSpec, text: str) -> dict[str, Any]:
        """The row image a trigger wrote into the change table."""
        return dict(json.loads(text))

    # --- connection --------------------------------------------------------------------------------
    def connect(self) -> Any:
        raise NotImplementedError

    def _driver(self, module: str, hint: str) -> ModuleType:
        try:
            driver = importlib.import_module(module)
        except ImportError as exc:
            raise PollError(f"source {self.source.name}: engine {self.engine.value} needs {hint} ({exc})") from None
        self.errors = (driver.Error,)
        return driver

    # --- setup script ------------------------------------------------------------------------------
    def setup_statements(self) -> list[str]:
        """The change table and its triggers, one statement each (as a driver executes them)."""
        raise NotImplementedError

    def setup_script(self) -> str:
        """The setup script as the engine's own command-line tool reads it."""
        return "\n\n".join(s + ";" for s in self.setup_statements()) + "\n"

    def _specs(self) -> tuple[TableSpec, ...]:
        t = self.source.tables
        return (t.tickets, t.lines, t.payments)


class SqliteDialect(Dialect):
    engine = DatabaseKind.SQLITE

    def connect(self) -> sqlite3.Connection:
        self.errors = (sqlite3.Error,)
        return sqlite3.connect(f"file:{self.source.path}?mode=ro", uri=True, timeout=30)

    def setup_statements(self) -> list[str]:
        """A change table and 9 triggers; each change stores the row image (allowlisted columns) as JSON."""
        table = self.quote(self.source.poll.change_table)
        parts = [
            f"CREATE TABLE IF NOT EXISTS {table} (\n"
            "    seq INTEGER PRIMARY KEY AUTOINCREMENT,\n"
            "    tbl TEXT NOT NULL,\n"
            "    op TEXT NOT NULL CHECK (op IN ('c', 'u', 'd')),\n"
            "    image TEXT NOT NULL,\n"
            "    changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))\n"
            ")"
        ]
        for spec in self._specs():
            for event, op, ref in (("INSERT", "c", "NEW"), ("UPDATE", "u", "NEW"), ("DELETE", "d", "OLD")):
                image = ", ".join(f"'{col}', {ref}.{self.quote(col)}" for col in spec.allowlist)
                parts.append(
                    f"CREATE TRIGGER IF NOT EXISTS {self.quote(f'tillflow_{spec.name}_{op}')} AFTER {event} ON "
                    f"{self.quote(spec.name)}\nBEGIN\n    INSERT INTO {table} (tbl, op, image) "
                    f"VALUES ('{spec.name}', '{op}', json_object({image}));\nEND"
                )
        return parts


_FB_NAME_MAX = 31  # Firebird 3 identifiers


class FirebirdDialect(Dialect):
    """Firebird 3 through ``firebird-driver`` (needs the client library, Debian ``libfbclient2``).

    Names in the source file are read as Firebird reads unquoted names: upper-cased (``tickets`` is
    ``TICKETS``); result columns keep the source file's spelling. A change table's sequence value is taken
    when the trigger runs, not at commit, so the change table is re-read ``overlap_s`` back.
    """

    engine = DatabaseKind.FIREBIRD
    change_overlap = True

    def __init__(self, source: CdcSource) -> None:
        super().__init__(source)
        self._type_cache: dict[str, dict[str, type]] = {}

    def quote(self, name: str) -> str:
        return '"' + name.upper().replace('"', '""') + '"'

    def alias(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def param(self, value: Any) -> Any:
        return _iso_param(value)

    def connect(self) -> Any:
        driver = self._driver("firebird.driver", "the firebird-driver package and libfbclient2 (apt)")
        s = self.source
        dsn = f"{s.host}/{s.db_port}:{s.database}"
        failures: tuple[type[BaseException], ...] = (*self.errors, OSError)  # OSError: no client library
        try:
            return driver.connect(dsn, user=s.user, password=s.password().get_secret_value(), charset="UTF8")
        except failures as exc:
            raise PollError(f"source {s.name}: cannot connect to {dsn} as {s.user}: {exc}") from None

    def decode_image(self, conn: Any, spec: TableSpec, text: str) -> dict[str, Any]:
        """The trigger writes every value as text (Firebird 3 has no JSON); give each its column's type back."""
        image = json.loads(text if isinstance(text, str) else text.read(), strict=False)  # a large BLOB: a reader
        types = self._types(conn, spec)
        return {col: _retype(value, types.get(col)) for col, value in image.items()}

    def _types(self, conn: Any, spec: TableSpec) -> dict[str, type]:
        """Each column's Python type, from the driver's description of an empty read (once per table)."""
        if spec.name not in self._type_cache:
            cur = conn.cursor()
            try:
                cur.execute(self.select(spec) + " WHERE 1 = 0")
                self._type_cache[spec.name] = {d[0]: d[1] for d in cur.description}
            finally:
                cur.close()
        return self._type_cache[spec.name]

    def _name(self, *parts: str) -> str:
        return self.quote("_".join(parts)[:_FB_NAME_MAX])

    def setup_statements(self) -> list[str]:
        table = self.quote(self.source.poll.change_table)
        seq = self._name(self.source.poll.change_table, "seq")
        fn = self._name("tillflow_json")
        parts = [
            f"CREATE SEQUENCE {seq}",
            f"CREATE TABLE {table} (\n"
            '    "SEQ" BIGINT NOT NULL PRIMARY KEY,\n'
            '    "TBL" VARCHAR(31) NOT NULL,\n'
            "    \"OP\" CHAR(1) NOT NULL CHECK (\"OP\" IN ('c', 'u', 'd')),\n"
            '    "IMAGE" BLOB SUB_TYPE TEXT NOT NULL,\n'
            '    "CHANGED_AT" TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n'
            ")",
            f'CREATE INDEX {self._name(self.source.poll.change_table, "at")} ON {table} ("CHANGED_AT")',
            # A value as a JSON string ('null' for NULL); the poller gives numbers and times their type back.
            f"CREATE OR ALTER FUNCTION {fn} (V VARCHAR(4000)) RETURNS VARCHAR(8191)\nAS\nBEGIN\n"
            "    IF (V IS NULL) THEN RETURN 'null';\n"
            "    RETURN '\"' || REPLACE(REPLACE(V, '\\', '\\\\'), '\"', '\\\"') || '\"';\nEND",
        ]
        for spec in self._specs():
            trigger = self._name("tillflow", spec.name)

            def image(ref: str, spec: TableSpec = spec) -> str:
                fields = " || ',' || ".join(f"'\"{col}\":' || {fn}({ref}.{self.quote(col)})" for col in spec.allowlist)
                return f"CAST('{{' AS BLOB SUB_TYPE TEXT) || {fields} || '}}'"

            parts.append(
                f"CREATE OR ALTER TRIGGER {trigger} FOR {self.quote(spec.name)}\n"
                "ACTIVE AFTER INSERT OR UPDATE OR DELETE POSITION 32000\nAS\nBEGIN\n"
                f'    INSERT INTO {table} ("SEQ", "TBL", "OP", "IMAGE")\n'
                f"    VALUES (NEXT VALUE FOR {seq}, '{spec.name}',\n"
                "            CASE WHEN INSERTING THEN 'c' WHEN UPDATING THEN 'u' ELSE 'd' END,\n"
                f"            CASE WHEN DELETING THEN {image('OLD')}\n"
                f"                 ELSE {image('NEW')} END);\nEND"
            )
            parts += [
                f"GRANT INSERT ON {table} TO TRIGGER {trigger}",
                f"GRANT USAGE ON SEQUENCE {seq} TO TRIGGER {trigger}",
                f"GRANT EXECUTE ON FUNCTION {fn} TO TRIGGER {trigger}",
            ]
        if self.source.user:
            parts.append(f"GRANT SELECT ON {table} TO USER {self.quote(self.source.user)}")
        return parts

    def setup_script(self) -> str:
        """For isql: PSQL bodies need another statement terminator (``SET TERM``)."""
        lines = ["-- tillflow change table for Firebird 3 (isql -i): run as the owner of the POS tables."]
        for statement in self.setup_statements():
            if statement.startswith("CREATE OR ALTER"):
                lines.append(f"SET TERM ^ ;\n{statement}^\nSET TERM ; ^")
            else:
                lines.append(statement + ";")
        lines.append("COMMIT;")
        return "\n\n".join(lines) + "\n"


def _retype(value: Any, kind: type | None) -> Any:
    """Text from a Firebird trigger back to the column's type, as :func:`plain` writes a value read directly."""
    if value is None or kind is None or not isinstance(value, str):
        return value
    if kind is bool:
        return value.upper() == "TRUE"
    if kind in (int, float, Decimal):
        return plain(kind(value))
    if kind in (datetime, date, time):
        return plain(kind.fromisoformat(value))  # type: ignore[attr-defined]
    return value


class SqlServerDialect(Dialect):
    """SQL Server 2016 SP1 or later through ``pymssql``, without CDC.

    Besides the watermark, the ``rowversion`` method: a ``rowversion`` column (8-byte big-endian, unique in the
    database, bumped on every insert and update) read as ``> last AND < MIN_ACTIVE_ROWVERSION()``, the lowest
    value still held by an open transaction: a row that commits late can never fall behind the position read,
    so no overlap is needed. The change table is read the same way.
    """

    engine = DatabaseKind.SQLSERVER
    placeholder = "%s"
    change_columns: ClassVar[dict[str, str]] = {
        "pos": "rv",
        "tbl": "tbl",
        "op": "op",
        "image": "image",
        "changed_at": "changed_at",
    }

    def __init__(self, source: CdcSource, driver: Any = None) -> None:
        super().__init__(source)
        self.driver = driver
        """``pymssql`` or a stand-in with its interface (tests)."""

    def quote(self, name: str) -> str:
        return "[" + name.replace("]", "]]") + "]"

    def table(self, name: str) -> str:
        return f"{self.quote(self.source.schema_name)}.{self.quote(name)}"

    def param(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("0x") and len(value) == 18:
            return bytes.fromhex(value[2:])  # a rowversion
        return _iso_param(value)

    def watermark_filter(self, column: str, high: Any, overlap_s: float) -> tuple[str, list[Any]]:
        if self.source.poll.method != "rowversion":
            return super().watermark_filter(column, high, overlap_s)
        return self._rowversion_filter(self.quote(column), high)

    def _rowversion_filter(self, column: str, last: Any) -> tuple[str, list[Any]]:
        where = f" WHERE {column} < MIN_ACTIVE_ROWVERSION()"
        if last is None:
            return where, []
        return where + f" AND {column} > {self.placeholder}", [self.param(last)]

    def change_query(self, last: Any, since: Any) -> tuple[str, list[Any]]:
        where, params = self._rowversion_filter(self.quote("rv"), last)
        return f"{self._change_select()}{where} ORDER BY [rv]", params

    def decode_image(self, conn: Any, spec: TableSpec, text: str) -> dict[str, Any]:
        """``FOR JSON`` writes decimals as numbers: keep their digits as strings."""
        return {k: plain(v) for k, v in json.loads(text, parse_float=Decimal).items()}

    def connect(self) -> Any:
        driver = self.driver or self._driver("pymssql", "the pymssql package (pip install pymssql)")
        self.errors = (driver.Error,)
        s = self.source
        try:
            return driver.connect(
                server=s.host,
                port=str(s.db_port),
                user=s.user,
                password=s.password().get_secret_value(),
                database=s.database,
                login_timeout=30,
            )
        except self.errors as exc:
            raise PollError(
                f"source {s.name}: cannot connect to {s.host}:{s.db_port}/{s.database} as {s.user}: {exc}"
            ) from None

    def setup_statements(self) -> list[str]:
        table = self.table(self.source.poll.change_table)
        parts = [
            f"CREATE TABLE {table} (\n"
            "    [seq] bigint IDENTITY(1, 1) NOT NULL PRIMARY KEY,\n"
            "    [rv] rowversion NOT NULL,\n"
            "    [tbl] sysname NOT NULL,\n"
            "    [op] char(1) NOT NULL CHECK ([op] IN ('c', 'u', 'd')),\n"
            "    [image] nvarchar(max) NOT NULL,\n"
            "    [changed_at] datetime2(3) NOT NULL DEFAULT SYSUTCDATETIME()\n"
            ")",
            f"CREATE UNIQUE INDEX [{self.source.poll.change_table}_rv] ON {table} ([rv])",
        ]
        for spec in self._specs():

            def image(alias: str, spec: TableSpec = spec) -> str:
                cols = ", ".join(f"{alias}.{self.quote(c)} AS {self.quote(c)}" for c in spec.allowlist)
                return f"(SELECT {cols} FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)"

            parts.append(
                f"CREATE OR ALTER TRIGGER {self.table('tillflow_' + spec.name)} ON {self.table(spec.name)}\n"
                "AFTER INSERT, UPDATE, DELETE\nAS\nBEGIN\n    SET NOCOUNT ON;\n"
                f"    INSERT INTO {table} ([tbl], [op], [image])\n"
                f"    SELECT '{spec.name}', CASE WHEN EXISTS (SELECT 1 FROM deleted) THEN 'u' ELSE 'c' END, "
                f"{image('i')}\n    FROM inserted AS i;\n"
                f"    INSERT INTO {table} ([tbl], [op], [image])\n"
                f"    SELECT '{spec.name}', 'd', {image('d')}\n"
                "    FROM deleted AS d WHERE NOT EXISTS (SELECT 1 FROM inserted);\nEND"
            )
        if self.source.user:
            parts.append(f"GRANT SELECT ON {table} TO {self.quote(self.source.user)}")
        return parts

    def setup_script(self) -> str:
        """For sqlcmd or SSMS: ``GO`` ends each batch (CREATE TRIGGER must start one)."""
        head = f"-- tillflow change table for SQL Server 2016 SP1+ (sqlcmd -d {self.source.database} -i)\n"
        return head + "\n".join(s + "\nGO\n" for s in self.setup_statements())


DIALECTS: dict[DatabaseKind, type[Dialect]] = {
    DatabaseKind.SQLITE: SqliteDialect,
    DatabaseKind.FIREBIRD: FirebirdDialect,
    DatabaseKind.SQLSERVER: SqlServerDialect,
}


def dialect_for(source: CdcSource) -> Dialect:
    """The dialect of the source's engine; PollError for engines read from their change log only."""
    cls = DIALECTS.get(source.engine)
    if cls is None:
        raise PollError(
            f"source {source.name}: tillflow cdc poll reads SQLite, Firebird and SQL Server databases, "
            f"not {source.engine.value} (use cdc run)"
        )
    return cls(source)
