"""`tillflow connectors ...` against a Kafka Connect 4.x stand-in.

A Kafka Connect cluster cannot run here (its Jetty 12 jar is missing from every package), so these tests
talk to ``connect_standin``, a local HTTP server reproducing Connect's documented REST responses.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from producers.cdc.connect import ConnectClient, ConnectError, config_diff, validation_errors
from producers.cdc.connector import connector_config
from producers.cdc.source import load_source
from tests.producers.cdc.connect_standin import POSTGRES, Cluster, ConnectStandIn
from tillflow.cli import app

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "deploy" / "connectors" / "pos-paris-postgres.yaml"
runner = CliRunner()


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


@pytest.fixture
def connect(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectStandIn]:
    with ConnectStandIn(cluster) as server:
        monkeypatch.setenv("TILLFLOW_CONNECT_URL", server.url)
        yield server


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_apply_creates_then_updates_and_waits_for_running(connect: ConnectStandIn, cluster: Cluster) -> None:
    code, output = cli("connectors", "apply", str(SOURCE), "--wait", "10")
    assert code == 0, output
    assert "pos-paris-postgres: created" in output and "RUNNING (1 task(s))" in output
    live = cluster.connectors["pos-paris-postgres"]
    assert live["slot.name"] == "tillflow_pos_paris_postgres"
    assert live["database.password"] == "${env:POS_PARIS_PASSWORD}"  # the secret never travels
    code, output = cli("connectors", "apply", str(SOURCE), "--wait", "10")
    assert code == 0 and "pos-paris-postgres: updated" in output
    puts = [r for r in cluster.requests if r[0] == "PUT"]
    assert puts == [("PUT", "/connectors/pos-paris-postgres/config")] * 2


def test_apply_retries_409_during_a_rebalance(connect: ConnectStandIn, cluster: Cluster) -> None:
    cluster.rebalancing = 3
    code, output = cli("connectors", "apply", str(SOURCE), "--wait", "10")
    assert code == 0, output
    assert cluster.requests.count(("PUT", "/connectors/pos-paris-postgres/config")) == 4


def test_apply_reports_a_failed_task_with_its_trace(connect: ConnectStandIn, cluster: Cluster) -> None:
    cluster.fail_tasks.add("pos-paris-postgres")
    code, output = cli("connectors", "apply", str(SOURCE), "--wait", "10")
    assert code == 1
    assert "task 0 on 10.0.0.7:8083" in output
    assert 'password authentication failed for user "tillflow_ro"' in output
    assert "1 task(s) FAILED" in output
    code, output = cli("connectors", "status", str(SOURCE))
    assert code == 1 and "FAILED" in output
    code, output = cli("connectors", "restart", str(SOURCE))
    assert code == 0
    assert ("POST", "/connectors/pos-paris-postgres/restart?includeTasks=true&onlyFailed=false") in cluster.requests
    code, output = cli("connectors", "status", str(SOURCE))
    assert code == 0 and "RUNNING" in output


def test_validate_prints_each_failing_field(connect: ConnectStandIn, cluster: Cluster) -> None:
    code, output = cli("connectors", "validate", str(SOURCE))
    assert code == 0 and "valid" in output
    cluster.unreachable.add("pos-db.paris.internal")
    code, output = cli("connectors", "validate", str(SOURCE))
    assert code == 1
    assert "pos-paris-postgres: database.hostname: Error while validating connector config: Connection to " in output
    assert "1 field(s) invalid" in output
    assert cluster.requests[-1] == ("PUT", f"/connector-plugins/{POSTGRES}/config/validate")


def test_validation_errors_lists_every_field(connect: ConnectStandIn) -> None:
    result = ConnectClient(connect.url).validate({"connector.class": POSTGRES, "snapshot.mode": "sometimes"})
    errors = {e.name: e.errors for e in validation_errors(result)}
    assert result["error_count"] == 5 == len(errors)
    assert errors["topic.prefix"] == ('Missing required configuration "topic.prefix" which has no default value.',)
    assert "Value must be one of" in errors["snapshot.mode"][0]


def test_diff_shows_desired_versus_live(connect: ConnectStandIn, cluster: Cluster) -> None:
    code, output = cli("connectors", "diff", str(SOURCE))
    assert code == 1 and "not on the cluster" in output
    assert cli("connectors", "apply", str(SOURCE), "--wait", "0")[0] == 0
    code, output = cli("connectors", "diff", str(SOURCE))
    assert code == 0 and "in sync" in output
    cluster.connectors["pos-paris-postgres"]["snapshot.mode"] = "no_data"
    cluster.connectors["pos-paris-postgres"]["database.password"] = "leaked"
    code, output = cli("connectors", "diff", str(SOURCE))
    assert code == 1
    assert "snapshot.mode" in output and "no_data" in output and "initial" in output
    assert "leaked" not in output


def test_config_diff_hides_passwords() -> None:
    rows = config_diff({"a": "1", "database.password": "x"}, {"a": "2", "database.password": "y", "b": "3"})
    assert rows == [("a", "2", "1"), ("b", "3", None), ("database.password", "(set, different)", "(set)")]


def test_pause_resume_delete_and_404(connect: ConnectStandIn, cluster: Cluster) -> None:
    code, output = cli("connectors", "pause", str(SOURCE))
    assert code == 1 and "404" in output and "Connector pos-paris-postgres not found" in output
    assert cli("connectors", "apply", str(SOURCE), "--wait", "0")[0] == 0
    assert cli("connectors", "pause", str(SOURCE))[0] == 0
    assert cluster.states["pos-paris-postgres"] == "PAUSED"
    assert cli("connectors", "status", str(SOURCE))[0] == 1
    assert cli("connectors", "resume", str(SOURCE))[0] == 0
    assert cluster.states["pos-paris-postgres"] == "RUNNING"
    code, output = cli("connectors", "delete", str(SOURCE))
    assert code == 0 and "deleted" in output
    assert "pg_drop_replication_slot('tillflow_pos_paris_postgres')" in output
    assert cluster.connectors == {}


def test_basic_auth(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.auth = ("ops", "pa:ss")
    with ConnectStandIn(cluster) as server:
        monkeypatch.setenv("TILLFLOW_CONNECT_URL", server.url)
        code, output = cli("connectors", "status", str(SOURCE))
        assert code == 1 and "401" in output
        monkeypatch.setenv("TILLFLOW_CONNECT_BASIC_AUTH", "ops:pa:ss")
        code, output = cli("connectors", "apply", str(SOURCE), "--wait", "5")
        assert code == 0, output


def test_tls_with_a_private_ca(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    with ConnectStandIn(cluster, tls=(str(cert), str(key))) as server:
        assert server.url.startswith("https://")
        monkeypatch.setenv("TILLFLOW_CONNECT_URL", server.url)
        code, output = cli("connectors", "diff", str(SOURCE))
        assert code == 1 and "CERTIFICATE_VERIFY_FAILED" in output.replace("\n", "")
        monkeypatch.setenv("TILLFLOW_CONNECT_CA_LOCATION", str(cert))
        assert cli("connectors", "apply", str(SOURCE), "--wait", "5")[0] == 0


def test_client_gives_up_after_the_409_budget(connect: ConnectStandIn, cluster: Cluster) -> None:
    cluster.rebalancing = 100
    client = ConnectClient(connect.url, retries_409=2, sleep=lambda s: None)
    src = load_source(SOURCE)
    with pytest.raises(ConnectError) as info:
        client.put_config(src.name, connector_config(src, bootstrap="k", registry_url="http://r"))
    assert info.value.status == 409 and "stale configuration" in info.value.message


def test_render_writes_the_kept_json(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    code, _ = cli("connectors", "render", str(SOURCE), "-o", str(out))
    assert code == 0
    assert json.loads(out.read_text()) == json.loads(SOURCE.with_suffix(".json").read_text())


@pytest.mark.cdc
def test_delete_drops_the_replication_slot_on_a_real_postgres(
    connect: ConnectStandIn, postgres: Any, tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connector is deleted on the stand-in; its slot is dropped on a real PostgreSQL 15."""
    psycopg2 = pytest.importorskip("psycopg2")
    database = f"slot_{unique}"
    admin = psycopg2.connect(postgres.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
        cur.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tillflow_ro') THEN "
                    "CREATE ROLE tillflow_ro LOGIN REPLICATION PASSWORD 'ro-secret'; END IF; END $$")  # fmt: skip
    with psycopg2.connect(postgres.dsn(database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_create_logical_replication_slot('tillflow_pos_paris_postgres', 'pgoutput')")
    text = SOURCE.read_text().replace("host: pos-db.paris.internal", "host: 127.0.0.1")
    text = text.replace("port: 5432", f"port: {postgres.port}").replace("database: pos", f"database: {database}")
    source = tmp_path / "pos.yaml"
    source.write_text(text)
    monkeypatch.setenv("POS_PARIS_PASSWORD", "ro-secret")
    assert cli("connectors", "apply", str(source), "--wait", "0")[0] == 0
    code, output = cli("connectors", "delete", str(source), "--drop-slot")
    assert code == 0, output
    assert "replication slot 'tillflow_pos_paris_postgres' dropped" in output
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_replication_slots WHERE database = %s", (database,))
        assert cur.fetchone()[0] == 0
    admin.close()


def test_a_folder_applies_every_source_and_reports_which_failed(connect: ConnectStandIn, cluster: Cluster) -> None:
    folder = SOURCE.parent
    code, output = cli("connectors", "apply", str(folder), "--wait", "10")
    assert code == 0, output
    assert sorted(cluster.connectors) == ["pos-lille-sqlserver", "pos-lyon-mysql", "pos-paris-postgres"]
    assert cluster.connectors["pos-lyon-mysql"]["database.include.list"] == "caisse"
    cluster.fail_tasks.add("pos-lyon-mysql")
    code, output = cli("connectors", "status", str(folder))
    assert code == 1
    assert "1 of 3 sources not OK: pos-lyon-mysql.toml" in output
