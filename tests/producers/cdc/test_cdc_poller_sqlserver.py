"""`tillflow cdc poll` on SQL Server without CDC, through a STAND-IN for SQL Server (mssql_standin.py).

No SQL Server can run here: the stand-in reproduces the documented behaviour the dialect relies on
(rowversion, MIN_ACTIVE_ROWVERSION(), pymssql's parameters and types) and nothing more. The setup script's
T-SQL is checked as text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from producers.cdc.dialects import PollError, SqlServerDialect
from producers.cdc.normalize import TicketAssembler
from producers.cdc.poller import Poller
from producers.cdc.source import CdcSource, load_source
from tests.producers.cdc.mssql_standin import Server
from tests.support.cdc import SOURCE, normalize

SCHEMA = [
    "CREATE TABLE dbo.tickets (id INTEGER PRIMARY KEY, till TEXT, status TEXT NOT NULL, closed_at DATETIME2,"
    " gross DECIMAL_TEXT, net DECIMAL_TEXT, cashier_name TEXT, updated_at DATETIME2 NOT NULL, rv BLOB)",
    "CREATE TABLE dbo.lines (id INTEGER PRIMARY KEY, ticket_id INTEGER NOT NULL, sku TEXT, qty DECIMAL_TEXT,"
    " price DECIMAL_TEXT, total DECIMAL_TEXT)",
    "CREATE TABLE dbo.payments (id INTEGER PRIMARY KEY, ticket_id INTEGER NOT NULL, tender TEXT, amount DECIMAL_TEXT)",
    "CREATE TABLE dbo.tillflow_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, rv BLOB, tbl TEXT NOT NULL,"
    " op TEXT NOT NULL, image TEXT NOT NULL, changed_at DATETIME2)",
]
# The SQLite tests' source file on SQL Server; the tickets' rowversion column is allowlisted for that method.
MSSQL_SOURCE = (
    SOURCE.replace(
        "engine: sqlite\npath: {path}\n",
        "engine: sqlserver\nhost: 127.0.0.1\nuser: tillflow_ro\npassword_env: TILLFLOW_TEST_MSSQL_PASSWORD\n",
    )
    .replace("extra_columns: [updated_at]", "extra_columns: [updated_at, rv]")
    .replace("poll: {{method: {method},", "poll: {{method: {method}, watermark_column: {column},")
)


def make(tmp_path: Path, method: str, column: str = "updated_at") -> tuple[Server, CdcSource, Poller]:
    server = Server(tmp_path / "standin.db")
    server.execute(*SCHEMA)
    server.add_rowversion("tickets")
    server.add_rowversion("tillflow_changes")
    src_file = tmp_path / "source.yaml"
    src_file.write_text(MSSQL_SOURCE.format(method=method, column=column, overlap=300))
    source = load_source(src_file)
    poller = Poller(source, tmp_path / "state" / "poller.sqlite", dialect=SqlServerDialect(source, driver=server))
    return server, source, poller


def sale(server: Server, tid: int, updated_at: str, lines: list[tuple[str, float, str]], open_: bool = False) -> Any:
    """One ticket in one transaction (T-SQL as a till would send it through pymssql)."""
    gross = sum(q * float(p) for _, q, p in lines)
    conn = server.connect(open_transaction=open_)
    cur = conn.cursor()
    cur.execute("INSERT INTO [dbo].[tickets] (id, till, status, closed_at, gross, net, cashier_name, updated_at) "
                "VALUES (%s, 'T1', 'closed', %s, %s, %s, 'Bob', %s)",
                (tid, updated_at, f"{gross:.2f}", f"{gross / 1.2:.2f}", updated_at))  # fmt: skip
    for sku, qty, price in lines:
        cur.execute("INSERT INTO [dbo].[lines] (ticket_id, sku, qty, price, total) VALUES (%s, %s, %s, %s, %s)",
                    (tid, sku, f"{qty:.3f}", price, f"{qty * float(price):.2f}"))  # fmt: skip
    cur.execute(
        "INSERT INTO [dbo].[payments] (ticket_id, tender, amount) VALUES (%s, 'cash', %s)", (tid, f"{gross:.2f}")
    )
    if not open_:
        conn.commit()
    return conn


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILLFLOW_TEST_MSSQL_PASSWORD", "ro-secret")


def test_rowversion_never_skips_an_open_transaction(tmp_path: Path) -> None:
    """Rows of a transaction still open hold MIN_ACTIVE_ROWVERSION() down: later commits wait, none is skipped."""
    server, src, poller = make(tmp_path, "rowversion", "rv")
    asm = TicketAssembler(src, settle_s=1.0)
    sale(server, 1, "2026-11-23 10:00:00", [("TEA", 1, "2.50")])  # rowversion 1
    offline = sale(server, 2, "2026-11-23 10:00:30", [("CAKE", 2, "3.00")], open_=True)  # takes 2, stays open
    sale(server, 3, "2026-11-23 10:00:05", [("TEA", 2, "2.50")])  # rowversion 3, committed
    first = poller.poll()
    poller.commit()
    assert [t.ticket_id for t in normalize(asm, first, 0.0)] == ["1"]  # 3 waits behind the open transaction
    assert poller.state.get("watermark") == "0x0000000000000001"
    offline.commit()
    second = poller.poll()
    poller.commit()
    assert sorted((t.ticket_id, t.gross_amount) for t in normalize(asm, second, 10.0)) == [("2", 600), ("3", 500)]
    assert poller.poll() == []
    assert server.logins[-1] == {"server": "127.0.0.1", "port": "1433", "user": "tillflow_ro",
                                 "password": "ro-secret", "database": "pos", "login_timeout": 30}  # fmt: skip
    # An update bumps the ticket's rowversion; a restart resumes after the last one read.
    conn = server.connect()
    conn.cursor().execute("UPDATE [dbo].[tickets] SET [gross] = %s WHERE [id] = %s", ("5.00", 1))
    conn.commit()
    poller.close()
    poller = Poller(src, tmp_path / "state" / "poller.sqlite", dialect=SqlServerDialect(src, driver=server))
    (update,) = poller.poll()
    assert update.value["op"] == "u" and update.value["before"]["gross"] == "2.50"
    assert update.value["after"]["gross"] == "5.00" and update.value["after"]["closed_at"] == "2026-11-23 10:00:00"


def test_watermark_on_datetime2_with_overlap(tmp_path: Path) -> None:
    server, _, poller = make(tmp_path, "watermark")
    sale(server, 1, "2026-11-23 10:00:05", [("TEA", 1, "2.50")])
    assert len(poller.poll()) == 3
    poller.commit()
    assert poller.state.get("watermark") == "2026-11-23 10:00:05"
    sale(server, 2, "2026-11-23 10:00:02", [("CAKE", 1, "3.00")])  # late commit, older timestamp
    changes = poller.poll()
    poller.commit()
    assert {c.key["ticket_id" if "ticket_id" in c.key else "id"] for c in changes} == {2} and len(changes) == 3
    assert poller.poll() == []


def test_change_table_in_rowversion_order_up_to_the_oldest_open_transaction(tmp_path: Path) -> None:
    """Change rows as the setup script's triggers write them (FOR JSON: decimals as numbers, ISO 'T' times)."""
    server, src, poller = make(tmp_path, "change_table")
    asm = TicketAssembler(src, settle_s=1.0)

    def change(conn: Any, tbl: str, op: str, image: dict[str, Any]) -> None:
        image_json = json.dumps(image).replace('"@', "").replace('@"', "")  # "@2.50@" -> 2.50 (a JSON number)
        conn.cursor().execute("INSERT INTO [dbo].[tillflow_changes] (tbl, op, image) VALUES (%s, %s, %s)",
                              (tbl, op, image_json))  # fmt: skip

    header = {"id": 1, "till": "T1", "status": "closed", "closed_at": "2026-11-23T10:00:00", "gross": "@2.50@",
              "net": "@2.08@", "updated_at": "2026-11-23T10:00:00"}  # fmt: skip
    open_conn = server.connect(open_transaction=True)
    change(open_conn, "tickets", "c", header)
    change(open_conn, "lines", "c", {"id": 1, "ticket_id": 1, "sku": "TEA", "qty": "@1.000@", "price": "@2.50@",
                                     "total": "@2.50@"})  # fmt: skip
    change(open_conn, "payments", "c", {"id": 1, "ticket_id": 1, "tender": "cash", "amount": "@2.50@"})
    committed = server.connect()
    change(committed, "tickets", "d", {**header, "id": 9})  # a later change, committed first
    committed.commit()
    assert poller.poll() == []  # behind the open transaction
    open_conn.commit()
    changes = poller.poll()
    poller.commit()
    assert [(c.value["source"]["table"], c.value["op"]) for c in changes] == [
        ("tickets", "c"), ("lines", "c"), ("payments", "c"), ("tickets", "d")]  # fmt: skip
    assert changes[0].value["after"]["gross"] == "2.50" and changes[1].value["after"]["qty"] == "1.000"
    assert [(t.ticket_id, t.gross_amount) for t in normalize(asm, changes[:3], 0.0)] == [("1", 250)]
    assert poller.poll() == []


def test_setup_script_is_t_sql(tmp_path: Path) -> None:
    _, src, _ = make(tmp_path, "change_table")
    script = SqlServerDialect(src).setup_script()
    assert script.startswith("-- tillflow change table for SQL Server 2016 SP1+ (sqlcmd -d pos -i)\n")
    assert "CREATE TABLE [dbo].[tillflow_changes] (\n    [seq] bigint IDENTITY(1, 1) NOT NULL PRIMARY KEY,\n" \
           "    [rv] rowversion NOT NULL," in script  # fmt: skip
    assert (
        "CREATE OR ALTER TRIGGER [dbo].[tillflow_lines] ON [dbo].[lines]\nAFTER INSERT, UPDATE, DELETE\nAS\nBEGIN\n"
        "    SET NOCOUNT ON;\n    INSERT INTO [dbo].[tillflow_changes] ([tbl], [op], [image])\n"
        "    SELECT 'lines', CASE WHEN EXISTS (SELECT 1 FROM deleted) THEN 'u' ELSE 'c' END, (SELECT i.[id] AS [id], "
        "i.[ticket_id] AS [ticket_id], i.[sku] AS [sku], i.[qty] AS [qty], i.[price] AS [price], i.[total] AS [total] "
        "FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)\n    FROM inserted AS i;\n"
    ) in script
    assert "    FROM deleted AS d WHERE NOT EXISTS (SELECT 1 FROM inserted);\nEND\nGO\n" in script
    assert script.count("\nGO\n") == 6 and "cashier_name" not in script
    assert script.endswith("GRANT SELECT ON [dbo].[tillflow_changes] TO [tillflow_ro]\nGO\n")


def test_missing_driver_and_wrong_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, src, _ = make(tmp_path, "watermark")
    monkeypatch.setitem(sys.modules, "pymssql", None)  # not installed
    with pytest.raises(PollError, match=r"needs the pymssql package \(pip install pymssql\)"):
        SqlServerDialect(src).connect()
    with pytest.raises(ValueError, match="rowversion is for engine sqlserver only"):
        CdcSource.model_validate({**src.model_dump(by_alias=True), "engine": "sqlite", "path": "x.db",
                                  "poll": {"method": "rowversion"}})  # fmt: skip
