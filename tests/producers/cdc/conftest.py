"""A real PostgreSQL 15 (Debian) for the CDC tests: a fresh cluster on 127.0.0.1 with wal_level=logical."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka import headers_of
from tillflow.settings import Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def published_tickets(settings: Settings, source_name: str, group: str) -> list[dict[str, Any]]:
    """Every PosTicket of this source on pos.tickets, read from the start."""
    from confluent_kafka import Consumer

    from schemas.serde import TopicSerde, registry_client
    from tillflow.kafka import consumer_config, endpoints

    ep = endpoints(settings)
    serde = TopicSerde(registry_client(ep.registry_url), "pos.tickets")
    consumer = Consumer(consumer_config(settings, group, ep.bootstrap, **{"enable.partition.eof": True}))
    consumer.subscribe(["pos.tickets"])
    tickets: list[Any] = []
    eof: set[int | None] = set()
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if eof and len(eof) >= settings.topic_partitions:
                    break
                continue
            if msg.error():
                eof.add(msg.partition())
                continue
            record = serde.decode(msg.value())
            if record["source"] == source_name:
                tickets.append(record)
    finally:
        consumer.close()
    return tickets


def dead_letters(settings: Settings, source_name: str, group: str) -> list[dict[str, Any]]:
    """The normalizer's dead letters of this source on pos.tickets.dlq (JSON with the reason)."""
    import json

    from confluent_kafka import Consumer

    from tillflow.kafka import consumer_config, endpoints

    consumer = Consumer(consumer_config(settings, group, endpoints(settings).bootstrap))
    consumer.subscribe(["pos.tickets.dlq"])
    found, deadline = [], time.monotonic() + 8
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            body = json.loads(msg.value() or b"")
            headers = headers_of(msg)
            if body.get("source") == source_name:
                assert headers["reason"].decode() == body["reason"]
                found.append(body)
    finally:
        consumer.close()
    return found


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    datadir: Path

    def dsn(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"host={self.host} port={self.port} dbname={database} user={user}"


def _as_postgres(args: list[str]) -> list[str]:
    """Run as the postgres user when root (initdb refuses root), else as is."""
    if os.geteuid() != 0:
        return args
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in args)]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """A PostgreSQL 15 cluster for the session (apt package postgresql, installed by `make sysdeps`)."""
    if not (PG_BIN / "pg_ctl").exists():
        pytest.skip("PostgreSQL 15 is not installed (make sysdeps installs the Debian package)")
    from tillflow.devstack import free_port

    datadir = Path(tempfile.mkdtemp(prefix="tillflow-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(datadir / "data"), "-U", "postgres", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={datadir} -c wal_level=logical "
        "-c max_replication_slots=20 -c max_wal_senders=20 -c fsync=off -c synchronous_commit=off"
    )
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(datadir / "data"), "-w", "-l", str(datadir / "log"),
                      "-o", options, "start"]),
        check=True,
        capture_output=True,
    )  # fmt: skip
    try:
        yield PgServer("127.0.0.1", port, datadir)
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(datadir / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(datadir, ignore_errors=True)


FB_SERVER = Path("/usr/sbin/firebird")
FB_SECURITY_SQL = Path("/usr/share/firebird/3.0/security.sql")


@dataclass(frozen=True)
class FbServer:
    host: str
    port: int
    root: Path
    password: str
    """SYSDBA's password (this server's own security database)."""

    def dsn(self, name: str) -> str:
        return f"{self.host}/{self.port}:{self.root / name}.fdb"


def _isql(root: Path, sql: str, *args: str) -> None:
    """Debian's isql-fb in embedded mode on this server's files (the server is not running yet)."""
    env = {**os.environ, "FIREBIRD": str(root), "FIREBIRD_LOCK": str(root / "lock"), "FIREBIRD_TMP": str(root)}
    subprocess.run(["isql-fb", "-q", "-user", "SYSDBA", *args], input=sql, text=True, env=env, check=True,
                   capture_output=True)  # fmt: skip


@pytest.fixture(scope="session")
def firebird() -> Iterator[FbServer]:
    """A Firebird 3 SuperServer for the session on 127.0.0.1 (apt package firebird3.0-server, `make sysdeps`).

    Its own root folder: firebird.conf (port, bind address), a security database made from Debian's
    security.sql with a SYSDBA password of its own, lock and temporary files; the Debian engine, plugins and
    messages are linked in. The system service and its databases are not used.
    """
    from tillflow.devstack import free_port

    installed = sorted(Path("/usr/lib").glob("*/firebird/3.0/plugins"))
    if not FB_SERVER.exists() or not installed or shutil.which("isql-fb") is None:
        pytest.skip("Firebird 3 is not installed (make sysdeps installs the Debian package)")
    pytest.importorskip("firebird.driver")
    root = Path(tempfile.mkdtemp(prefix="tillflow-fb-", dir="/tmp"))
    (root / "lock").mkdir()
    for name in ("firebird.msg", "intl", "plugins", "UDF", "lib", "plugins.conf"):
        (root / name).symlink_to(installed[0].parent / name)
    port, password = free_port(), "fb-" + os.urandom(6).hex()
    (root / "firebird.conf").write_text(
        f"RemoteServicePort = {port}\nRemoteBindAddress = 127.0.0.1\nServerMode = Super\n"
        f"SecurityDatabase = {root / 'security3.fdb'}\nUdfAccess = None\n"
    )
    _isql(root, f"CREATE DATABASE '{root / 'security3.fdb'}';")
    _isql(root, "", "-i", str(FB_SECURITY_SQL), str(root / "security3.fdb"))
    _isql(root, f"CREATE USER SYSDBA PASSWORD '{password}' USING PLUGIN Srp; COMMIT;", str(root / "security3.fdb"))
    env = {**os.environ, "FIREBIRD": str(root), "FIREBIRD_LOCK": str(root / "lock"), "FIREBIRD_TMP": str(root)}
    with open(root / "server.log", "wb") as log:
        server = subprocess.Popen([str(FB_SERVER)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"firebird did not start: {(root / 'server.log').read_text()}") from None
                time.sleep(0.05)
        yield FbServer("127.0.0.1", port, root, password)
    finally:
        server.kill()  # throwaway databases; started without fbguard it did not exit on SIGTERM within 5 s
        server.wait()
        shutil.rmtree(root, ignore_errors=True)
