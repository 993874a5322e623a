"""Versioned DDL: ``NNNN_name.sql`` files applied in order, each recorded in ``schema_migrations``.

A file is applied once; editing an applied file is an error (its checksum is recorded), so schema changes go
in a new file. Statements inside a file are separated by ``;`` at the end of a line and use
``IF NOT EXISTS`` so a file interrupted half-way can be applied again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.catalogue import Catalogue
from tillflow.errors import SinkError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / "deploy" / "clickhouse"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version     UInt32,
    name        String,
    checksum    String,
    applied_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


class MigrationError(SinkError):
    """The migration files or the recorded versions are inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def statements(self) -> list[str]:
        return split_statements(self.sql)


def split_statements(sql: str) -> list[str]:
    """Statements of a file: ``--`` comment lines dropped, split at ``;`` ending a line."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    text = "\n".join(lines)
    parts = re.split(r";\s*$", text, flags=re.MULTILINE)
    return [part.strip() for part in parts if part.strip()]


def discover(directory: Path) -> list[Migration]:
    """Migrations in ``directory`` sorted by version; a bad file name or a repeated version is an error."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} is also {found[version].name}")
        found[version] = Migration(version, path.stem, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def pending(migrations: Iterable[Migration], applied: dict[int, str]) -> list[Migration]:
    """Migrations not applied yet; an applied file whose checksum changed is an error."""
    todo = []
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is None:
            todo.append(migration)
        elif recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.name} was applied with another content (checksum {recorded[:12]}, now "
                f"{migration.checksum[:12]}); put schema changes in a new file"
            )
    return todo


def applied_versions(client: Any) -> dict[int, str]:
    client.command(MIGRATIONS_TABLE)
    rows = client.query("SELECT version, checksum FROM schema_migrations FINAL").result_rows
    return {int(version): str(checksum) for version, checksum in rows}


def migrate(client: Any, directory: Path = DEFAULT_DIR) -> list[Migration]:
    """Apply pending migrations to the client's database; returns those applied now."""
    todo = pending(discover(directory), applied_versions(client))
    for migration in todo:
        for statement in migration.statements:
            try:
                client.command(statement)
            except Exception as exc:
                raise MigrationError(f"{migration.name}: {statement.splitlines()[0]} ...: {exc}") from exc
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum, datetime.now(UTC)]],
            column_names=["version", "name", "checksum", "applied_at"],
        )
    return todo


def load_stores(client: Any, catalogue: Catalogue, now: datetime | None = None) -> int:
    """Write the catalogue's stores and zones to the dimension tables; returns the number of stores."""
    from sinks.clickhouse.mapping import COLUMNS, store_rows, zone_rows

    loaded_at = now or datetime.now(UTC)
    client.insert("stores", store_rows(catalogue, loaded_at), column_names=COLUMNS["stores"])
    zones = zone_rows(catalogue, loaded_at)
    if zones:
        client.insert("zones", zones, column_names=COLUMNS["zones"])
    from sinks.clickhouse.storeops_mapping import camera_role_rows

    cameras = camera_role_rows(catalogue, loaded_at)
    if cameras and client.query("EXISTS TABLE camera_roles").result_rows[0][0]:
        client.insert("camera_roles", cameras, column_names=COLUMNS["camera_roles"])
    return len(catalogue.stores)
