"""Debezium 3.x connector configs generated from a source file. Pure functions: no I/O, no secrets read.

The password is written as a Kafka Connect config-provider reference (``${env:VAR}`` or
``${dir:/run/secrets:file}``) that the Connect worker resolves, so generated JSON can be kept in git. The
embedded engine (:func:`engine_properties`) gets the resolved password from the caller instead.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from producers.cdc.source import LOG_BASED, CdcSource, DatabaseKind
from tillflow.errors import ConfigError

CONNECTOR_CLASSES = {
    DatabaseKind.POSTGRES: "io.debezium.connector.postgresql.PostgresConnector",
    DatabaseKind.MYSQL: "io.debezium.connector.mysql.MySqlConnector",
    DatabaseKind.SQLSERVER: "io.debezium.connector.sqlserver.SqlServerConnector",
}
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"
AVRO_CONVERTER = "io.confluent.connect.avro.AvroConverter"
# Worker settings an operator adds once so that ${env:...} and ${dir:...} references resolve.
WORKER_CONFIG_PROVIDERS = {
    "config.providers": "env,dir",
    "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
    "config.providers.dir.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
}


def password_reference(source: CdcSource) -> str:
    """The config-provider reference the Connect worker resolves to the password."""
    if source.password_env:
        return f"${{env:{source.password_env}}}"
    if source.password_file:
        return f"${{dir:{source.password_file.parent}:{source.password_file.name}}}"
    raise ConfigError(f"source {source.name}: give password_env or password_file for the read-only user")


def mysql_server_id(name: str) -> int:
    """A stable ``database.server.id`` from the source name, in 5400..2^31-1 (above common replica ids)."""
    return 5400 + zlib.crc32(name.encode()) % (2**31 - 5401)


def _include_lists(source: CdcSource) -> dict[str, str]:
    tables = (source.tables.tickets, source.tables.lines, source.tables.payments)
    ticket_col = source.tables.tickets.columns["ticket_id"]
    line_fk = source.tables.lines.columns["ticket_id"]
    pay_fk = source.tables.payments.columns["ticket_id"]
    return {
        "table.include.list": ",".join(source.table_id(t) for t in tables),
        "column.include.list": ",".join(f"{source.table_id(t)}.{col}" for t in tables for col in t.allowlist),
        # Every change of one ticket carries the ticket id as its key: tickets, lines and payments of a
        # ticket land on the same partition of their topics and can be assembled without a repartition.
        "message.key.columns": ";".join(
            (
                f"{source.table_id(source.tables.tickets)}:{ticket_col}",
                f"{source.table_id(source.tables.lines)}:{line_fk}",
                f"{source.table_id(source.tables.payments)}:{pay_fk}",
            )
        ),
    }


def converter_config(source: CdcSource, registry_url: str | None) -> dict[str, str]:
    """Key and value converters: JSON without embedded schemas, or Avro with the registry."""
    if source.converter == "avro":
        if not registry_url:
            raise ConfigError(f"source {source.name}: converter avro needs a schema registry URL")
        return {
            # Avro names allow no '-' or '$': Debezium adjusts schema and field names to fit.
            "schema.name.adjustment.mode": "avro",
            "field.name.adjustment.mode": "avro",
            "key.converter": AVRO_CONVERTER,
            "key.converter.schema.registry.url": registry_url,
            "value.converter": AVRO_CONVERTER,
            "value.converter.schema.registry.url": registry_url,
        }
    return {
        "key.converter": JSON_CONVERTER,
        "key.converter.schemas.enable": "false",
        "value.converter": JSON_CONVERTER,
        "value.converter.schemas.enable": "false",
    }


def capture_config(source: CdcSource, password: str) -> dict[str, str]:
    """The Debezium properties shared by a Connect cluster and the embedded engine (no converters, no history)."""
    if source.engine not in LOG_BASED:
        raise ConfigError(f"source {source.name}: engine {source.engine.value} has no log-based capture; use cdc poll")
    conf: dict[str, str] = {
        "connector.class": CONNECTOR_CLASSES[source.engine],
        "tasks.max": str(source.tasks_max),
        "database.hostname": source.host,
        "database.port": str(source.db_port),
        "database.user": str(source.user),
        "database.password": password,
        "topic.prefix": source.raw_prefix,
        "snapshot.mode": source.snapshot_mode,
        "decimal.handling.mode": "string",
        "time.precision.mode": "connect",
        "heartbeat.interval.ms": str(source.heartbeat_interval_ms),
        "provide.transaction.metadata": "true",
        "tombstones.on.delete": "true",
        **_include_lists(source),
    }
    if source.signal_table:
        # Incremental re-snapshots (execute-snapshot signals) inserted by the DBA into this table.
        conf["signal.data.collection"] = f"{_signal_prefix(source)}.{source.signal_table}"
        conf["signal.enabled.channels"] = "source"
    if source.engine == DatabaseKind.POSTGRES:
        conf.update(
            {
                "database.dbname": source.database,
                "plugin.name": "pgoutput",
                "slot.name": source.slot_name or f"tillflow_{source.name.replace('-', '_')}",
                "publication.name": publication_name(source),
                # The DBA creates the publication (docs/cdc.md): the read-only role never owns the tables, and
                # Debezium must neither create nor alter it.
                "publication.autocreate.mode": "disabled",
            }
        )
        if source.heartbeat_table:
            # A POS database that is quiet while others on the server write: without a write of its own the
            # slot's confirmed position never moves and the server keeps WAL until its disk fills.
            table = f"{source.schema_name}.{source.heartbeat_table}"
            conf["heartbeat.action.query"] = (
                f"INSERT INTO {table} (id, ts) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts"
            )
    elif source.engine == DatabaseKind.MYSQL:
        conf.update(
            {
                "database.server.id": str(source.server_id or mysql_server_id(source.name)),
                "database.include.list": source.database,
                "include.schema.changes": "false",
            }
        )
    else:
        conf.update(
            {
                "database.names": source.database,
                "include.schema.changes": "false",
                # The JDBC driver encrypts by default: a store server with a self-signed certificate needs
                # trust_server_certificate (or encrypt: false on a network the operator trusts).
                "database.encrypt": str(source.encrypt).lower(),
                "database.trustServerCertificate": str(source.trust_server_certificate).lower(),
            }
        )
    return conf


def publication_name(source: CdcSource) -> str:
    return source.publication_name or f"tillflow_{source.name.replace('-', '_')}"


def postgres_setup_sql(source: CdcSource) -> str:
    """What the DBA runs once on a PostgreSQL POS database (docs/cdc.md): the heartbeat and signal tables, the
    read-only role's grants on them, and the publication with the captured tables and those two (Debezium runs
    with ``publication.autocreate.mode=disabled``). The role itself and REPLICA IDENTITY are the DBA's."""
    if source.engine != DatabaseKind.POSTGRES:
        raise ConfigError(f"source {source.name}: setup SQL is generated for postgres only")
    schema, user = source.schema_name, source.user
    t = source.tables
    tables = [f"{schema}.{x.name}" for x in (t.tickets, t.lines, t.payments)]
    out = []
    if source.heartbeat_table:
        hb = f"{schema}.{source.heartbeat_table}"
        out += [f"CREATE TABLE IF NOT EXISTS {hb} (id int PRIMARY KEY, ts timestamptz NOT NULL);",
                f"GRANT SELECT, INSERT, UPDATE ON {hb} TO {user};"]  # fmt: skip
        tables.append(hb)
    if source.signal_table:
        sig = f"{schema}.{source.signal_table}"
        out += [f"CREATE TABLE IF NOT EXISTS {sig} (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, "
                "data varchar(2048));",
                # incremental snapshots write their window marks into the signal table
                f"GRANT SELECT, INSERT, DELETE ON {sig} TO {user};"]  # fmt: skip
        tables.append(sig)
    out.append(f"CREATE PUBLICATION {publication_name(source)} FOR TABLE {', '.join(tables)};")
    return "\n".join(out) + "\n"


def _signal_prefix(source: CdcSource) -> str:
    """Debezium names the signal table like include lists: schema.table; SQL Server: database.schema.table."""
    if source.engine == DatabaseKind.SQLSERVER:
        return f"{source.database}.{source.schema_name}"
    return source.schema_name


def topic_creation(source: CdcSource) -> dict[str, str]:
    """Kafka Connect creates the connector's topics (tables, transaction metadata, heartbeats) itself: the
    compose broker has auto-creation off, and without these the tasks fail on the first record."""
    return {
        "topic.creation.default.partitions": str(source.topic_partitions),
        "topic.creation.default.replication.factor": str(source.topic_replication_factor),
        "topic.creation.default.cleanup.policy": "delete",
    }


def needs_schema_history(source: CdcSource) -> bool:
    """MySQL and SQL Server keep a schema history; PostgreSQL does not."""
    return source.engine in (DatabaseKind.MYSQL, DatabaseKind.SQLSERVER)


def connector_config(source: CdcSource, *, bootstrap: str, registry_url: str | None = None) -> dict[str, str]:
    """The ``config`` object for ``PUT /connectors/{name}/config`` on a Kafka Connect cluster."""
    conf = {"name": source.name, **capture_config(source, password_reference(source))}
    conf.update(converter_config(source, registry_url))
    conf.update(topic_creation(source))
    if needs_schema_history(source):
        conf["schema.history.internal.kafka.bootstrap.servers"] = bootstrap
        conf["schema.history.internal.kafka.topic"] = f"{source.raw_prefix}.schema-history"
    return dict(sorted(conf.items()))


def connector_document(source: CdcSource, *, bootstrap: str, registry_url: str | None = None) -> dict[str, Any]:
    """The ``{"name", "config"}`` document of ``POST /connectors``, as kept under deploy/connectors/."""
    return {"name": source.name, "config": connector_config(source, bootstrap=bootstrap, registry_url=registry_url)}


def engine_properties(source: CdcSource, *, password: str, state_dir: Path) -> dict[str, str]:
    """Properties for the embedded engine: same capture config, offsets and schema history in files."""
    state = state_dir / "cdc" / source.name
    conf = {"name": source.name, **capture_config(source, password)}
    conf.update(
        {
            "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
            "offset.storage.file.filename": str(state / "offsets.dat"),
            "offset.flush.interval.ms": "1000",
            # JSON without embedded schemas, as the JSON converter of a Connect cluster writes.
            "converter.schemas.enable": "false",
        }
    )
    if needs_schema_history(source):
        conf["schema.history.internal"] = "io.debezium.storage.file.history.FileSchemaHistory"
        conf["schema.history.internal.file.filename"] = str(state / "schema-history.dat")
    return dict(sorted(conf.items()))


def redact(config: dict[str, str]) -> dict[str, str]:
    """A copy safe to print: any password value that is not a provider reference is masked."""
    return {k: ("********" if "password" in k and v and not v.startswith("${") else v) for k, v in config.items()}
