"""clickhouse-connect's HTTP client against the HTTP stand-in (tests/sinks/clickhouse_http.py): the requests
a server would get, multi-frame lz4 inserts, bind parameters, error codes and authentication."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from schemas.topics import CAMERA_COUNTS
from sinks.clickhouse.mapping import COLUMNS, rows_for
from sinks.clickhouse.migrate import migrate
from tests.sinks.clickhouse_http import ClickHouseHTTPStandIn
from tests.support.records import frame
from tillflow.clickhouse import connect
from tillflow.settings import Settings


@pytest.fixture
def standin(chdb_dir: Path) -> Iterator[ClickHouseHTTPStandIn]:
    server = ClickHouseHTTPStandIn(chdb_dir / "clickhouse", user="tillflow", password="pw")  # the engine of `ch`
    server.start()
    yield server
    server.close()


def http_settings(standin: ClickHouseHTTPStandIn, ch_settings: Settings, password: str = "pw") -> Settings:
    url = standin.url.replace("http://", f"http://tillflow:{password}@") + f"/{ch_settings.clickhouse_database}"
    return ch_settings.model_copy(update={"clickhouse_url": url})


def test_large_insert_arrives_in_several_lz4_frames(
    standin: ClickHouseHTTPStandIn, ch_settings: Settings, ch: Any
) -> None:
    client = connect(http_settings(standin, ch_settings))
    assert migrate(client) == []  # already applied by the ch fixture: the same database, seen over HTTP
    tz = {"wg-fashion": "Europe/Berlin"}
    rows = [rows_for(CAMERA_COUNTS, frame(i), tz)["camera_frames"][0] for i in range(80_000)]
    before = standin.lz4_frames_seen
    summary = client.insert("camera_frames", rows, column_names=COLUMNS["camera_frames"])
    assert summary.written_rows == 80_000
    assert standin.lz4_frames_seen - before > 1  # one LZ4 frame per block: every one was decoded
    assert ch.query("SELECT count(), sum(entries) FROM camera_frames").result_rows == [(80_000, 80_000)]
    insert = [r for r in standin.requests if r["head"].startswith("INSERT INTO")][-1]
    assert insert["method"] == "POST" and insert["path"] == "/" and insert["encoding"] == "lz4"
    assert "FORMAT Native" in insert["head"]
    assert any(
        r["head"].rstrip().endswith("FORMAT Native") and r["head"].startswith("SELECT") for r in standin.requests
    )
    found = client.query("SELECT name FROM stores FINAL WHERE store_id = {s:String}", parameters={"s": "wg-volt"})
    assert found.result_rows == [("Westgate: Volt Electronics",)]


def test_errors_keep_the_server_code(standin: ClickHouseHTTPStandIn, ch_settings: Settings, ch: Any) -> None:
    from clickhouse_connect.driver.exceptions import DatabaseError

    from sinks.clickhouse.sink import error_code, is_data_error

    client = connect(http_settings(standin, ch_settings))
    with pytest.raises(DatabaseError) as unknown:
        client.query("SELECT * FROM no_such_table")
    assert error_code(unknown.value) == 60 and not is_data_error(unknown.value)
    with pytest.raises(DatabaseError) as wrong_password:
        connect(http_settings(standin, ch_settings, password="nope"))
    assert error_code(wrong_password.value) == 516


def test_password_with_url_characters(chdb_dir: Path, ch_settings: Settings, ch: Any) -> None:
    """TILLFLOW_CLICKHOUSE_PASSWORD is taken as is (the compose file passes it that way); inside the URL the
    password is percent-decoded."""
    from urllib.parse import quote

    secret = "p@ss:w/rd#%?&"
    server = ClickHouseHTTPStandIn(chdb_dir / "clickhouse", user="tillflow", password=secret)
    server.start()
    try:
        base = server.url.replace("http://", "http://tillflow@") + f"/{ch_settings.clickhouse_database}"
        plain = ch_settings.model_copy(update={"clickhouse_url": base, "clickhouse_password": SecretStr(secret)})
        assert connect(plain).query("SELECT count() FROM stores FINAL").result_rows == [(9,)]
        encoded = base.replace("tillflow@", f"tillflow:{quote(secret, safe='')}@")
        assert connect(ch_settings.model_copy(update={"clickhouse_url": encoded})).command("SELECT 1") == 1
    finally:
        server.close()
