"""Source files and the Debezium 3.x connector configs generated from them (pure functions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.cdc.connector import (
    connector_config,
    connector_document,
    engine_properties,
    mysql_server_id,
    postgres_setup_sql,
    redact,
)
from producers.cdc.source import CdcSource, load_source
from tillflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
CONNECTORS = ROOT / "deploy" / "connectors"
PLACEHOLDERS = {"bootstrap": "${env:TILLFLOW_KAFKA_BOOTSTRAP}", "registry_url": "${env:TILLFLOW_REGISTRY_URL}"}


def _sources() -> list[Path]:
    return sorted(p for p in CONNECTORS.iterdir() if p.suffix in (".yaml", ".toml"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_kept_json_matches_the_source_file(path: Path) -> None:
    """deploy/connectors/*.json is generated code: it must equal what the generator makes today."""
    kept = json.loads(path.with_suffix(".json").read_text())
    assert kept == connector_document(load_source(path), **PLACEHOLDERS)


def test_postgres_config_uses_current_debezium_3_property_names() -> None:
    src = load_source(CONNECTORS / "pos-paris-postgres.yaml")
    conf = connector_config(src, bootstrap="k:9092", registry_url="http://reg:8081")
    assert conf["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert conf["topic.prefix"] == "cdc.pos-paris-postgres"
    assert conf["plugin.name"] == "pgoutput"
    assert conf["slot.name"] == "tillflow_pos_paris_postgres"
    # docs/cdc.md has the DBA create the publication: Debezium must neither create nor alter it.
    assert conf["publication.autocreate.mode"] == "disabled"
    assert conf["decimal.handling.mode"] == "string"
    assert conf["heartbeat.interval.ms"] == "10000"
    assert conf["snapshot.mode"] == "initial"
    assert conf["database.dbname"] == "pos"
    # Avro with the registry, and names adjusted for Avro ('-' in the prefix).
    assert conf["value.converter"] == "io.confluent.connect.avro.AvroConverter"
    assert conf["value.converter.schema.registry.url"] == "http://reg:8081"
    assert conf["key.converter.schema.registry.url"] == "http://reg:8081"
    assert conf["schema.name.adjustment.mode"] == "avro"
    # Postgres keeps no schema history; removed pre-2.0 names never appear.
    assert not any(k.startswith("schema.history") for k in conf)
    for old in ("database.server.name", "database.history.kafka.topic", "table.whitelist", "column.whitelist"):
        assert old not in conf
    # Nothing but the allowlist leaves the store, every change of a ticket is keyed by its ticket id.
    assert conf["table.include.list"] == "public.tickets,public.ticket_lines,public.payments"
    columns = conf["column.include.list"].split(",")
    assert "public.tickets.total_gross" in columns and "public.ticket_lines.label" in columns
    assert len(columns) == 21
    assert conf["message.key.columns"] == "public.tickets:id;public.ticket_lines:ticket_id;public.payments:ticket_id"
    assert conf["database.password"] == "${env:POS_PARIS_PASSWORD}"


def test_mysql_gets_a_stable_unique_server_id_and_kafka_schema_history() -> None:
    src = load_source(CONNECTORS / "pos-lyon-mysql.toml")
    conf = connector_config(src, bootstrap="k:9092")
    assert conf["connector.class"] == "io.debezium.connector.mysql.MySqlConnector"
    assert conf["database.server.id"] == str(mysql_server_id("pos-lyon-mysql"))
    assert mysql_server_id("pos-lyon-mysql") != mysql_server_id("pos-lille-mysql")
    assert 5400 <= mysql_server_id("x") < 2**31
    assert conf["schema.history.internal.kafka.bootstrap.servers"] == "k:9092"
    assert conf["schema.history.internal.kafka.topic"] == "cdc.pos-lyon-mysql.schema-history"
    assert conf["database.include.list"] == "caisse"
    assert conf["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert conf["value.converter.schemas.enable"] == "false"
    assert conf["database.password"] == "${dir:/run/secrets:pos_lyon}"
    assert src.raw_topics()["lines"] == "cdc.pos-lyon-mysql.caisse.ticket_items"


def test_sqlserver_uses_database_names() -> None:
    src = load_source(CONNECTORS / "pos-lille-sqlserver.yaml")
    conf = connector_config(src, bootstrap="k:9092", registry_url="http://reg")
    assert conf["connector.class"] == "io.debezium.connector.sqlserver.SqlServerConnector"
    assert conf["database.names"] == "RetailPOS"
    assert "database.dbname" not in conf
    assert conf["table.include.list"] == "dbo.Receipts,dbo.ReceiptLines,dbo.ReceiptTenders"
    assert conf["schema.history.internal.kafka.topic"] == "cdc.pos-lille-sqlserver.schema-history"
    assert src.raw_topics()["tickets"] == "cdc.pos-lille-sqlserver.RetailPOS.dbo.Receipts"


def test_avro_without_registry_is_refused() -> None:
    src = load_source(CONNECTORS / "pos-paris-postgres.yaml")
    with pytest.raises(ConfigError, match="registry"):
        connector_config(src, bootstrap="k:9092", registry_url=None)


def test_engine_properties_resolve_the_password_and_keep_offsets_in_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = load_source(CONNECTORS / "pos-lyon-mysql.toml")
    props = engine_properties(src, password="s3cret", state_dir=tmp_path)
    assert props["database.password"] == "s3cret"
    assert props["offset.storage"] == "org.apache.kafka.connect.storage.FileOffsetBackingStore"
    assert props["offset.storage.file.filename"] == str(tmp_path / "cdc" / "pos-lyon-mysql" / "offsets.dat")
    assert props["schema.history.internal"] == "io.debezium.storage.file.history.FileSchemaHistory"
    assert "key.converter" not in props
    assert redact(props)["database.password"] == "********"
    # same capture settings as on a Connect cluster
    conf = connector_config(src, bootstrap="k")
    for key in ("column.include.list", "message.key.columns", "topic.prefix", "database.server.id", "snapshot.mode"):
        assert props[key] == conf[key]


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = """
name: shop
engine: postgres
database: pos
user: ro
password_env: SHOP_PW
store_id: s1
tables:
  tickets: {name: t, key: [id], columns: {ticket_id: id, occurred_at: at, gross_amount: g, net_amount: n}}
  lines: {name: l, key: [id], columns: {ticket_id: tid, line_id: id, sku: sku, quantity: q, unit_price: p,
          net_amount: n}}
  payments: {name: p, key: [id], columns: {ticket_id: tid, payment_id: id, method: m, amount: a}}
"""


def test_a_password_in_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="password: passwords never go in a source file"):
        load_source(_write(tmp_path, BASE + "password: hunter2\n"))


def test_password_comes_from_env_or_file_and_is_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = load_source(_write(tmp_path, BASE))
    with pytest.raises(ConfigError, match="SHOP_PW is not set"):
        src.password()
    monkeypatch.setenv("SHOP_PW", "hunter2")
    secret = src.password()
    assert secret.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(src) and "hunter2" not in str(secret)
    (tmp_path / "pw").write_text("from-file\n")
    src2 = load_source(_write(tmp_path, BASE.replace("password_env: SHOP_PW", f"password_file: {tmp_path / 'pw'}")))
    assert src2.password().get_secret_value() == "from-file"


def test_personal_data_columns_cannot_be_allowlisted(tmp_path: Path) -> None:
    text = BASE.replace(
        "columns: {ticket_id: id, occurred_at", "extra_columns: [customer_email], columns: {ticket_id: id, occurred_at"
    )
    with pytest.raises(ConfigError, match=r"customer_email.*personal data"):
        load_source(_write(tmp_path, text))


def test_errors_name_the_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.replace("sku: sku, ", ""))
    with pytest.raises(ConfigError) as info:
        load_source(path)
    assert str(path) in str(info.value)
    assert "tables: tables.lines: mapping lacks required field(s) ['sku']" in str(info.value)
    with pytest.raises(ConfigError, match="engine"):
        load_source(_write(tmp_path, BASE.replace("engine: postgres", "engine: oracle")))


def test_sqlite_has_no_connector(tmp_path: Path) -> None:
    db = tmp_path / "pos.db"
    src = CdcSource.model_validate(
        {**load_source(_write(tmp_path, BASE)).model_dump(by_alias=True), "engine": "sqlite", "path": str(db)}
    )
    with pytest.raises(ConfigError, match="no log-based capture"):
        connector_config(src, bootstrap="k")


def _kept(name: str) -> dict[str, str]:
    config: dict[str, str] = json.loads((CONNECTORS / name).read_text())["config"]
    return config


def test_sqlserver_json_sets_tls_so_a_self_signed_store_server_can_connect() -> None:
    """Since Debezium 2.0 the JDBC driver encrypts by default and checks the certificate: the shipped config
    says both explicitly, and the Lille example trusts its self-signed server."""
    conf = _kept("pos-lille-sqlserver.json")
    assert conf["database.encrypt"] == "true"
    assert conf["database.trustServerCertificate"] == "true"
    src = load_source(CONNECTORS / "pos-lille-sqlserver.yaml").model_copy(update={"trust_server_certificate": False})
    assert connector_config(src, bootstrap="k", registry_url="r")["database.trustServerCertificate"] == "false"


@pytest.mark.parametrize("name", ["pos-lille-sqlserver.json", "pos-lyon-mysql.json", "pos-paris-postgres.json"])
def test_generated_json_lets_connect_create_the_topics(name: str) -> None:
    """The compose broker has auto-creation off: Connect must create table, transaction and heartbeat topics."""
    conf = _kept(name)
    assert conf["topic.creation.default.partitions"] == "1"
    assert conf["topic.creation.default.replication.factor"] == "-1"


def test_postgres_json_has_a_heartbeat_query_a_signal_table_and_no_publication_autocreate() -> None:
    conf = _kept("pos-paris-postgres.json")
    assert conf["publication.autocreate.mode"] == "disabled"
    assert conf["heartbeat.action.query"].startswith("INSERT INTO public.tillflow_heartbeat (id, ts)")
    assert conf["signal.data.collection"] == "public.tillflow_signal"
    # what docs/cdc.md tells the DBA to run is the generated SQL, with those two tables in the publication
    sql = postgres_setup_sql(load_source(CONNECTORS / "pos-paris-postgres.yaml"))
    assert ("CREATE PUBLICATION tillflow_pos_paris_postgres FOR TABLE public.tickets, public.ticket_lines, "
            "public.payments, public.tillflow_heartbeat, public.tillflow_signal;") in sql  # fmt: skip
    docs = (ROOT / "docs" / "cdc.md").read_text()
    assert "publication.autocreate.mode=disabled" in docs and "tillflow connectors setup-sql" in docs
