"""A SQLite POS database and its CDC source file, for the poller and dry-run tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from producers.cdc.normalize import Emit, TicketAssembler
from producers.cdc.poller import RawChange
from producers.cdc.source import CdcSource, load_source

SCHEMA = """
CREATE TABLE tickets (id INTEGER PRIMARY KEY, till TEXT, status TEXT NOT NULL, closed_at TEXT,
                      gross TEXT, net TEXT, cashier_name TEXT, updated_at TEXT NOT NULL);
CREATE TABLE lines (id INTEGER PRIMARY KEY, ticket_id INTEGER NOT NULL, sku TEXT, qty REAL, price TEXT, total TEXT);
CREATE TABLE payments (id INTEGER PRIMARY KEY, ticket_id INTEGER NOT NULL, tender TEXT, amount TEXT);
"""


SOURCE = """
name: corner-shop
engine: sqlite
path: {path}
database: pos
store_id: corner-01
timezone: Europe/Paris
tables:
  tickets: {{name: tickets, key: [id], extra_columns: [updated_at],
            columns: {{ticket_id: id, terminal_id: till, status: status, occurred_at: closed_at, gross_amount: gross,
                       net_amount: net}}}}
  lines: {{name: lines, key: [id], columns: {{ticket_id: ticket_id, line_id: id, sku: sku, quantity: qty,
                                             unit_price: price, net_amount: total}}}}
  payments: {{name: payments, key: [id], columns: {{ticket_id: ticket_id, payment_id: id, method: tender,
                                                   amount: amount}}}}
poll: {{method: {method}, overlap_s: {overlap}}}
"""


def make_db(tmp_path: Path, method: str = "watermark", overlap: float = 300) -> tuple[sqlite3.Connection, CdcSource]:
    path = tmp_path / "pos.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    src_file = tmp_path / "source.yaml"
    src_file.write_text(SOURCE.format(path=path, method=method, overlap=overlap))
    return conn, load_source(src_file)


def sale(conn: sqlite3.Connection, tid: int, updated_at: str, lines: list[tuple[str, float, str]]) -> None:
    """One ticket in one transaction; ``updated_at`` is the till's clock when the sale closed."""
    gross = sum(q * float(p) for _, q, p in lines)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO tickets VALUES (?, 'T1', 'closed', ?, ?, ?, 'Bob', ?)",
        (tid, updated_at, f"{gross:.2f}", f"{gross / 1.2:.2f}", updated_at),
    )
    for sku, qty, price in lines:
        conn.execute("INSERT INTO lines (ticket_id, sku, qty, price, total) VALUES (?, ?, ?, ?, ?)",
                     (tid, sku, qty, price, f"{qty * float(price):.2f}"))  # fmt: skip
    conn.execute("INSERT INTO payments (ticket_id, tender, amount) VALUES (?, 'cash', ?)", (tid, f"{gross:.2f}"))
    conn.execute("COMMIT")


def normalize(asm: TicketAssembler, changes: list[RawChange], now: float) -> list[Any]:
    roles = {topic: role for role, topic in asm.source.raw_topics().items()}
    for change in changes:
        assert not asm.apply(roles[change.topic], change.value, now, key=change.key)
    return [o.ticket for o in asm.tick(now + 10) if isinstance(o, Emit)]
