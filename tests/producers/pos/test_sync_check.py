"""`tillflow sync-check`: the POS side from the vendor stand-in (tests/producers/pos/vendor_server.py) and from a
real PostgreSQL 15, tillflow's side from ClickHouse (chDB, the shipped migrations), the KPI rule with promtool."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from producers.pos.examples import square_order
from producers.pos.metrics import SYNC_RATE
from producers.pos.poller import map_context
from producers.pos.synccheck import DayTally, add, compare
from producers.pos.vendors import adapter_for
from schemas.models import PosTicket
from schemas.topics import POS_TICKETS
from sinks.clickhouse.mapping import COLUMNS, rows_for
from tests.producers.cdc.conftest import postgres
from tests.producers.pos.vendor_server import vendor_server
from tests.support.pos import config
from tests.support.records import CATALOGUE
from tillflow.cli import app
from tillflow.settings import Settings

__all__ = ["postgres"]  # the fixture
ROOT = Path(__file__).resolve().parents[3]
DAY = date(2026, 11, 30)
BERLIN_MORNING = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


def ingest(client: Any, tickets: list[PosTicket]) -> None:
    rows = [rows_for(POS_TICKETS, t, {t.store_id: "Europe/Berlin"})["tickets"][0] for t in tickets]
    client.insert("tickets", rows, column_names=COLUMNS["tickets"])


def env(ch_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("TILLFLOW_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(ch_settings.state_dir))
    monkeypatch.setenv("TILLFLOW_CLICKHOUSE_DATABASE", str(ch_settings.clickhouse_database))
    monkeypatch.setenv("TILLFLOW_CATALOGUE", str(CATALOGUE))
    monkeypatch.setenv("POS_TEST_TOKEN", "static-token")


def test_compare_counts_ticket_ids_and_net_per_store_day() -> None:
    pos: dict[tuple[str, date], DayTally] = {}
    ours: dict[tuple[str, date], DayTally] = {}
    for i in range(200):
        add(pos, "s1", DAY, f"T{i}", "SALE", 1000)
        if i != 7:
            add(ours, "s1", DAY, f"T{i}", "SALE", 1000)
    add(pos, "s1", DAY, "T3:void", "VOID", -1000, "T3")  # voided since: a sale on neither side
    add(ours, "s1", DAY, "T3~void", "VOID", -1000, "T3")
    add(ours, "s1", DAY, "T4~r2", "SALE", 900)  # a correction is the same ticket
    add(pos, "s2", DAY + timedelta(days=1), "X", "SALE", 5)  # not a day asked for
    [row] = compare("src", pos, ours, [DAY])
    assert (row.expected_tickets, row.ingested_tickets, row.missing_tickets, row.extra_tickets) == (199, 198, 1, 0)
    assert row.sync_rate == pytest.approx(198 / 199) and row.ok and row.missing_sample == ("T7",)
    assert (row.expected_net, row.ingested_net) == (199_000, 198_000 + 900)
    [empty] = compare("src", {}, {("s1", DAY): DayTally({"A"}, 1)}, [DAY])
    assert empty.sync_rate == 1.0 and empty.extra_tickets == 1


def test_sync_check_from_the_vendor_stand_in(
    ch: Any, ch_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 Square sales on a Berlin day (one just after local midnight, stamped the UTC day before), 9 of them in
    ClickHouse: 90 % for that day, written to pos_sync_daily, the gauge set, exit code 1 naming the missing one."""
    env(ch_settings, tmp_path, monkeypatch)
    with vendor_server() as (base, st):
        times = [BERLIN_MORNING + timedelta(minutes=30 * i) for i in range(9)]
        times.append(datetime(2026, 11, 29, 23, 30, tzinfo=UTC))  # 00:30 on the 30th in Berlin
        for i, at in enumerate(times):
            o = square_order(i, at)
            st.square[o["id"]] = o
        late = square_order(50, datetime(2026, 11, 30, 23, 30, tzinfo=UTC))  # 00:30 on Dec 1st in Berlin
        st.square[late["id"]] = late
        cfg = config("square", base, stores={"L8RY5ZZ0T8RZM": "wg-fashion"}, currency="EUR")
        adapter = adapter_for(cfg)
        tickets = [t for o in st.square.values() for t in adapter.map(o, map_context(cfg, datetime.now(UTC)), "x")]
        ingest(ch, [t for t in tickets if t.ticket_id != "square:SQ000004ORDER"])
        source = tmp_path / "square.yaml"
        source.write_text(f"name: {cfg.name}\nvendor: square\nbase_url: {base}\nstores: {{L8RY5ZZ0T8RZM: wg-fashion}}\n"
                          "auth: {kind: api_key, token: {env: POS_TEST_TOKEN}}\npage_size: 4\n")  # fmt: skip
        result = CliRunner().invoke(app, ["sync-check", str(source), "--date", DAY.isoformat()], terminal_width=200)
    assert result.exit_code == 1, result.output
    assert "wg-fashion 2026-11-30: 90.00% (9 of 10 POS sales" in result.output
    assert "square:SQ000004ORDER" in result.output
    rows = ch.query("SELECT store_id, local_date, expected_tickets, ingested_tickets, missing_tickets, sync_rate "
                    "FROM pos_sync_daily FINAL").result_rows  # fmt: skip
    assert rows == [("wg-fashion", DAY, 10, 9, 1, pytest.approx(0.9))]
    assert SYNC_RATE.labels(cfg.name, "wg-fashion")._value.get() == pytest.approx(0.9)


PG_TABLE = """
CREATE TABLE tickets (id bigint PRIMARY KEY, store text NOT NULL, status text NOT NULL, closed_at timestamp,
                      total_gross numeric(12,2) NOT NULL, total_net numeric(12,2) NOT NULL);
"""


def test_sync_check_from_postgresql(
    ch: Any, ch_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres: Any
) -> None:
    """The POS database's own answer (SELECT on its tickets table, wall-clock times in Europe/Berlin): 300 closed
    sales, 2 open tickets (not sales yet) and a void; tillflow has all but 3 closed ones: 99.00 %, on target."""
    psycopg2 = pytest.importorskip("psycopg2")
    env(ch_settings, tmp_path, monkeypatch)
    monkeypatch.setenv("SYNC_PG_PASSWORD", "")
    database = f"sync_{ch_settings.clickhouse_database}"
    admin = psycopg2.connect(postgres.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    admin.close()
    with psycopg2.connect(postgres.dsn(database)) as conn, conn.cursor() as cur:
        cur.execute(PG_TABLE)
        for i in range(300):
            cur.execute("INSERT INTO tickets VALUES (%s, 'wg-denim', 'closed', %s, 12.00, 10.00)",
                        (i, datetime(2026, 11, 30, 0, 5) + timedelta(minutes=4 * i)))  # fmt: skip
        cur.execute("INSERT INTO tickets VALUES (900, 'wg-denim', 'open', '2026-11-30 12:00', 5, 4)")
        cur.execute("INSERT INTO tickets VALUES (901, 'wg-denim', 'open', NULL, 5, 4)")
        cur.execute("INSERT INTO tickets VALUES (902, 'wg-denim', 'void', '2026-11-30 13:00', 5, 4)")
        cur.execute("INSERT INTO tickets VALUES (903, 'wg-denim', 'closed', '2026-12-01 00:10', 5, 4)")  # next day
    source = tmp_path / "pg.yaml"
    source.write_text(f"""
name: pos-sync-pg
engine: postgres
host: 127.0.0.1
port: {postgres.port}
database: {database}
user: postgres
password_env: SYNC_PG_PASSWORD
currency: EUR
timezone: Europe/Berlin
tables:
  tickets: {{name: tickets, key: [id], columns: {{ticket_id: id, store_id: store, status: status,
             occurred_at: closed_at, gross_amount: total_gross, net_amount: total_net}}}}
  lines: {{name: ticket_lines, key: [id], columns: {{ticket_id: ticket_id, line_id: id, sku: sku, quantity: qty,
           unit_price: unit_price, net_amount: line_total}}}}
  payments: {{name: payments, key: [id],
             columns: {{ticket_id: ticket_id, payment_id: id, method: tender, amount: amount}}}}
status_map: {{closed: SALE, void: VOID}}
open_statuses: [open]
""")
    base = PosTicket.model_validate({
        "ticket_id": "0", "source": "pos-sync-pg", "store_id": "wg-denim", "kind": "SALE", "currency": "EUR",
        "occurred_at": datetime(2026, 11, 29, 23, 5, tzinfo=UTC), "gross_amount": 1200, "net_amount": 1000,
        "tax_amount": 200, "discount_amount": 0,
        "ingested_at": datetime(2026, 12, 1, tzinfo=UTC)})  # fmt: skip
    at = base.occurred_at
    kept = [i for i in range(300) if i not in (10, 20, 30)]
    ingest(
        ch, [base.model_copy(update={"ticket_id": str(i), "occurred_at": at + timedelta(minutes=4 * i)}) for i in kept]
    )
    result = CliRunner().invoke(app, ["sync-check", str(source), "--date", DAY.isoformat()], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "pos-sync-pg wg-denim 2026-11-30: 99.00% (297 of 300 POS sales" in result.output
    [row] = ch.query("SELECT expected_tickets, ingested_tickets, expected_net, ingested_net FROM pos_sync_daily "
                     "FINAL WHERE source = 'pos-sync-pg'").result_rows  # fmt: skip
    assert row == (300, 297, 300 * 1000, 297 * 1000)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian package prometheus not installed")
def test_sync_rate_rule_fires_under_99_percent() -> None:
    done = subprocess.run(["promtool", "test", "rules", str(ROOT / "deploy/prometheus/tests/pos-sync.test.yml")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
