"""A CDC source file: one POS database, its tables, the agreed column allowlist and the mapping to PosTicket.

Source files are YAML or TOML (``deploy/connectors/*.yaml``). They never hold a password: the read-only
user's password comes from an environment variable (``password_env``) or a file (``password_file``) and is
read only when a connector config is generated for a live cluster or the embedded engine.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path, PureWindowsPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from schemas.models import _PERSONAL_DATA, PaymentMethod, TicketKind
from tillflow.documents import read_document, validate_document
from tillflow.errors import ConfigError


class DatabaseKind(StrEnum):
    """Which database a source is (the source file's ``engine`` key)."""

    POSTGRES = "postgres"
    MYSQL = "mysql"
    SQLSERVER = "sqlserver"
    SQLITE = "sqlite"
    """Polled only (``tillflow cdc poll``): SQLite has no change log Debezium can read."""
    FIREBIRD = "firebird"
    """Polled only (``tillflow cdc poll``): Debezium has no Firebird connector."""


LOG_BASED = (DatabaseKind.POSTGRES, DatabaseKind.MYSQL, DatabaseKind.SQLSERVER)
POLLED = (DatabaseKind.SQLITE, DatabaseKind.FIREBIRD, DatabaseKind.SQLSERVER)
"""Engines `tillflow cdc poll` reads (SQL Server: without CDC enabled)."""
DEFAULT_PORTS = {
    DatabaseKind.POSTGRES: 5432,
    DatabaseKind.MYSQL: 3306,
    DatabaseKind.SQLSERVER: 1433,
    DatabaseKind.FIREBIRD: 3050,
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")

# Standard fields each table maps; the value in the source file is the column that holds it.
TICKET_FIELDS = {
    "ticket_id": True,
    "store_id": False,
    "terminal_id": False,
    "status": False,
    "occurred_at": True,
    "currency": False,
    "gross_amount": True,
    "net_amount": True,
    "tax_amount": False,
    "discount_amount": False,
    "channel": False,
}
LINE_FIELDS = {
    "ticket_id": True,
    "line_id": True,
    "sku": True,
    "description": False,
    "quantity": True,
    "unit_price": True,
    "discount_amount": False,
    "net_amount": True,
    "category": False,
}
PAYMENT_FIELDS = {"ticket_id": True, "payment_id": True, "method": True, "amount": True}
"""Field name -> required. ``line_id``/``payment_id`` identify a row within the ticket (usually its key)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableSpec(_Strict):
    """One captured table: its name, key columns and the columns that hold each standard field."""

    name: str = Field(description="Table name, without schema.")
    key: tuple[str, ...] = Field(min_length=1, description="Primary key columns.")
    columns: dict[str, str] = Field(description="Standard field -> column.")
    extra_columns: tuple[str, ...] = Field(
        (), description="Further columns agreed to leave the store (for audit), not mapped."
    )

    @field_validator("name")
    @classmethod
    def _ident(cls, value: str) -> str:
        if not _IDENT.fullmatch(value):
            raise ValueError(f"{value!r} is not a plain table name")
        return value

    @property
    def allowlist(self) -> tuple[str, ...]:
        """Every column that may leave the store, in a stable order: keys, mapped, extra."""
        seen: dict[str, None] = {}
        for col in (*self.key, *self.columns.values(), *self.extra_columns):
            seen.setdefault(col, None)
        return tuple(seen)

    def check(self, fields: dict[str, bool], table_role: str) -> None:
        unknown = sorted(set(self.columns) - set(fields))
        if unknown:
            raise ValueError(f"{table_role}: unknown standard field(s) {unknown}; known: {sorted(fields)}")
        missing = sorted(f for f, required in fields.items() if required and f not in self.columns)
        if missing:
            raise ValueError(f"{table_role}: mapping lacks required field(s) {missing}")
        for col in self.allowlist:
            if not _IDENT.fullmatch(col):
                raise ValueError(f"{table_role}: {col!r} is not a plain column name")
            if _PERSONAL_DATA.search(col):
                raise ValueError(
                    f"{table_role}: column {col!r} looks like customer personal data and may not leave the store"
                )


class Tables(_Strict):
    tickets: TableSpec
    lines: TableSpec
    payments: TableSpec

    @model_validator(mode="after")
    def _fields(self) -> Tables:
        self.tickets.check(TICKET_FIELDS, "tables.tickets")
        self.lines.check(LINE_FIELDS, "tables.lines")
        self.payments.check(PAYMENT_FIELDS, "tables.payments")
        return self


class PollSpec(_Strict):
    """How ``tillflow cdc poll`` reads a database without log-based capture."""

    method: Literal["watermark", "change_table", "rowversion"] = Field(
        "watermark", description="rowversion: SQL Server only, watermark_column is a rowversion column."
    )
    watermark_column: str = Field("updated_at", description="Column set on every insert/update of a ticket.")
    overlap_s: float = Field(300.0, ge=0, description="Re-read this far behind the watermark (late commits).")
    interval_s: float = Field(5.0, gt=0)
    change_table: str = Field("tillflow_changes", description="Trigger-fed table (method change_table).")


class CdcSource(_Strict):
    """One POS database captured into tillflow."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Source name: connector name, PosTicket.source.")
    engine: DatabaseKind
    host: str = "localhost"
    port: int | None = None
    database: str = Field(description="Database name; firebird: the database path or alias on the server.")
    db_schema: str | None = Field(None, alias="schema", description="postgres: public; sqlserver: dbo.")
    user: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    path: Path | None = Field(None, description="SQLite database file (engine sqlite).")

    store_id: str | None = Field(None, description="Fixed store id when the tickets table has no store column.")
    tenant_id: str | None = None
    currency: str = "EUR"
    timezone: str = Field("UTC", description="Zone of timestamp columns without an offset.")
    amounts_in_minor_units: bool = Field(False, description="True when money columns are integer cents.")

    tables: Tables
    status_map: dict[str, TicketKind] = Field(
        default_factory=lambda: {"closed": TicketKind.SALE, "void": TicketKind.VOID, "refund": TicketKind.REFUND},
        description="Ticket status -> kind; a status not here and not in open_statuses is an error.",
    )
    open_statuses: tuple[str, ...] = ("open",)
    method_map: dict[str, PaymentMethod] = Field(
        default_factory=lambda: {m.value.lower(): m for m in PaymentMethod},
        description="Payment tender value -> method; unknown tenders become OTHER.",
    )

    # Debezium / Kafka Connect
    topic_prefix: str | None = Field(None, description="Raw topic prefix; default cdc.<name>.")
    snapshot_mode: Literal["initial", "no_data", "when_needed", "initial_only", "always"] = "initial"
    converter: Literal["json", "avro"] = "json"
    heartbeat_interval_ms: int = Field(10_000, ge=0)
    slot_name: str | None = Field(None, description="postgres replication slot; default tillflow_<name>.")
    publication_name: str | None = None
    server_id: int | None = Field(None, ge=1, description="mysql database.server.id; default derived from name.")
    tasks_max: int = 1
    heartbeat_table: str | None = Field(
        "tillflow_heartbeat",
        description="postgres: table (in `schema`, in the publication) that heartbeat.action.query writes, so a "
        "quiet POS database still moves the slot and WAL is freed; null: no action query.",
    )
    signal_table: str | None = Field(
        "tillflow_signal",
        description="Debezium signalling table (in `schema`; postgres: in the publication) for incremental "
        "re-snapshots; null: no signal table.",
    )
    encrypt: bool = Field(True, description="sqlserver: TLS to the database (the JDBC driver's default since 2.0).")
    trust_server_certificate: bool = Field(
        False,
        description="sqlserver: accept the server's certificate without checking it (a self-signed store server).",
    )
    topic_partitions: int = Field(
        1, ge=1, description="Partitions of the topics Connect creates (tables, transactions, heartbeats)."
    )
    topic_replication_factor: int = Field(-1, description="Replication of those topics; -1: the broker's default.")

    poll: PollSpec = Field(default_factory=PollSpec)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _engine_fields(self) -> CdcSource:
        if self.engine == DatabaseKind.SQLITE:
            if self.path is None:
                raise ValueError("engine sqlite needs path")
        elif self.user is None:
            raise ValueError(f"engine {self.engine.value} needs user (a read-only account)")
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if "store_id" not in self.tables.tickets.columns and not self.store_id:
            raise ValueError("give store_id, or map tables.tickets.columns.store_id")
        if self.poll.method == "rowversion" and self.engine != DatabaseKind.SQLSERVER:
            raise ValueError("poll.method rowversion is for engine sqlserver only")
        if self.converter == "avro" and self.engine not in LOG_BASED:
            raise ValueError("converter applies to Debezium engines only")
        for key in ("heartbeat_table", "signal_table"):
            value = getattr(self, key)
            if value is not None and not _IDENT.fullmatch(value):
                raise ValueError(f"{key}: {value!r} is not a plain table name")
        if self.topic_replication_factor == 0 or self.topic_replication_factor < -1:
            raise ValueError("topic_replication_factor: give a positive number, or -1 for the broker's default")
        return self

    @property
    def schema_name(self) -> str:
        """The schema part of raw topic names. Firebird has none: the database file's stem (C:\\POS\\SHOP.FDB: shop)."""
        if self.engine == DatabaseKind.FIREBIRD and not self.db_schema:
            return PureWindowsPath(self.database).stem.lower()
        return self.db_schema or {DatabaseKind.POSTGRES: "public", DatabaseKind.SQLSERVER: "dbo"}.get(
            self.engine, self.database
        )

    @property
    def raw_prefix(self) -> str:
        return self.topic_prefix or f"cdc.{self.name}"

    @property
    def db_port(self) -> int:
        return self.port or DEFAULT_PORTS.get(self.engine, 0)

    def table_id(self, table: TableSpec) -> str:
        """The table as Debezium names it in include lists: schema.table (MySQL: database.table)."""
        return f"{self.schema_name}.{table.name}"

    def raw_topic(self, table: TableSpec) -> str:
        """The raw change topic Debezium writes for ``table`` (default topic naming)."""
        if self.engine == DatabaseKind.SQLSERVER:
            return f"{self.raw_prefix}.{self.database}.{self.schema_name}.{table.name}"
        return f"{self.raw_prefix}.{self.schema_name}.{table.name}"

    def raw_topics(self) -> dict[str, str]:
        """Role (tickets/lines/payments) -> raw topic."""
        t = self.tables
        return {
            "tickets": self.raw_topic(t.tickets),
            "lines": self.raw_topic(t.lines),
            "payments": self.raw_topic(t.payments),
        }

    @property
    def transaction_topic(self) -> str:
        return f"{self.raw_prefix}.transaction"

    def password(self) -> SecretStr:
        """The read-only user's password from its variable or file; never stored, never logged."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"source {self.name}: environment variable {self.password_env} is not set")
            return SecretStr(value)
        if self.password_file:
            try:
                return SecretStr(self.password_file.read_text(encoding="utf-8").rstrip("\r\n"))
            except OSError as exc:
                raise ConfigError(f"source {self.name}: password_file {self.password_file}: {exc.strerror}") from None
        return SecretStr("")


_SECRET_KEYS = re.compile(r"password|secret|passwd|pwd", re.IGNORECASE)


def load_source(path: Path) -> CdcSource:
    """Read and validate a source file; a password in the file is refused."""
    data = read_document(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of keys")
    for key in data:
        if _SECRET_KEYS.search(str(key)) and key not in ("password_env", "password_file"):
            raise ConfigError(f"{path}: {key}: passwords never go in a source file; use password_env or password_file")
    if data.get("path") and not Path(data["path"]).is_absolute():
        data["path"] = str((path.parent / data["path"]).resolve())
    return validate_document(CdcSource, data, path)
