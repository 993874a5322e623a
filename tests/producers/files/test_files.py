"""Export files in every format, malformed ones included, and the watcher's idempotency."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from producers.files import watch as watch_mod
from producers.files.parse import parse_file
from producers.files.spec import FileSpec, SpecError, load_spec
from producers.files.watch import FileWatcher, KafkaUnavailable
from producers.pos.checkpoint import CheckpointStore
from schemas.models import Payment, PaymentMethod, PosTicket, TicketKind
from tests.support.files import CSV_GOOD, CSV_HEADER, CSV_SPEC, XML_GOOD, XML_SPEC
from tests.support.pos import ListSink

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


TXT_SPEC: dict[str, Any] = {
    "name": "till-uk", "format": "txt", "header": False, "amounts": "minor", "currency": "GBP",
    "timezone": "Europe/London", "date_format": "%Y%m%d", "time_format": "%H%M%S", "stores": {"S7": "london-07"},
    "fields": {"date": 0, "time": 1, "store": 2, "ticket": 3, "sku": 4, "quantity": 5, "unit_price": 6,
               "line_discount": 7, "payment_method": 8},
}  # fmt: skip

FIXED_SPEC: dict[str, Any] = {
    "name": "mainframe", "format": "fixed", "amounts": "minor", "timezone": "America/New_York",
    "date_format": "%Y%m%d", "time_format": "%H%M%S", "skip_lines": 1,
    "fields": {"ticket": [0, 9], "date": [9, 17], "time": [17, 23], "store": [23, 27], "sku": [27, 37],
               "quantity": [37, 42], "unit_price": [42, 51], "currency": [51, 54]},
}  # fmt: skip


def fixed_line(ticket: str, date: str, tm: str, store: str, sku: str, qty: int, price: int, cur: str) -> str:
    return f"{ticket:<9}{date:8}{tm:6}{store:<4}{sku:<10}{qty:>5}{price:>9}{cur:3}"


def parse(spec: dict[str, Any], data: bytes) -> tuple[list[PosTicket], list[str]]:
    result = parse_file(data, FileSpec(**spec), NOW)
    return result.tickets, [str(e) for e in result.errors]


def test_csv_cp1252_decimal_comma_local_time() -> None:
    data = "\r\n".join([CSV_HEADER, *CSV_GOOD]).encode("cp1252")
    (sale, refund), errors = parse(CSV_SPEC, data)
    assert errors == []
    assert sale.ticket_id == "caisse-fr:paris-01:1001" and sale.store_id == "paris-01" and sale.terminal_id == "C1"
    assert sale.occurred_at == datetime(2026, 3, 14, 9, 15, tzinfo=UTC)  # 10:15 in Paris (CET)
    assert (sale.gross_amount, sale.net_amount, sale.tax_amount, sale.discount_amount) == (537, 517, 83, 20)
    assert sale.payments == (Payment(method=PaymentMethod.CARD, amount=600),)
    assert [(ln.sku, ln.description, ln.quantity, ln.net_amount, ln.category) for ln in sale.lines] == [
        ("SKU1", "Café crème", 2.0, 500, "Boissons"), ("SKU2", "Croissant", 1.0, 100, "Viennoiserie")]  # fmt: skip
    assert refund.kind is TicketKind.REFUND and refund.original_ticket_id == sale.ticket_id
    assert (refund.net_amount, refund.tax_amount) == (-109, -11)
    assert refund.payments == (Payment(method=PaymentMethod.CASH, amount=-120),)


def test_csv_malformed_lines_are_named() -> None:
    rows = [
        CSV_HEADER, CSV_GOOD[0],
        "PAR01;1003;31/02/2026;10:15;C1;V;;SKU1;x;1;2,50;0;0,42;CB;",  # no 31 February
        "PAR01;1004;14/03/2026;10:16;C1;Z;;SKU1;x;1;2,50;0;0,42;CB;",  # unknown kind
        "PAR01;1005;14/03/2026;10:17;C1;V;;SKU1;x;1;2.50;0;0,42;CB;",  # point as decimal
        "LYO02;1006;14/03/2026;10:18;C1;V;;SKU1;x;1;2,50;0;0,42;CB;",  # unmapped store
        "PAR01;1007;14/03/2026",  # truncated
    ]  # fmt: skip
    tickets, errors = parse(CSV_SPEC, "\n".join(rows).encode("cp1252"))
    assert [t.ticket_id for t in tickets] == ["caisse-fr:paris-01:1001"]
    assert errors == [
        "line 3: ticket 1003 not sent: time '31/02/2026 10:15' does not match the format '%d/%m/%Y %H:%M'",
        "line 4: ticket 1004 not sent: kind code 'Z' is unknown (known: A, R, V)",
        "line 5: ticket 1005 not sent: unit_price: '2.50' uses '.' but the spec's decimal separator is ','",
        "line 6: ticket 1006 not sent: store code 'LYO02' is not in the spec's stores",
        "line 7: ticket 1007 not sent: 3 columns, time is in column 4",
    ]


def test_one_bad_row_rejects_its_whole_ticket() -> None:
    """A multi-line ticket with one unreadable row is not sent with the rest: wrong totals would go out."""
    truncated = "PAR01;1001;14/03/2026;10:15;C1;V"  # second row of 1001, cut short
    tickets, errors = parse(CSV_SPEC, "\n".join([CSV_HEADER, CSV_GOOD[0], truncated, CSV_GOOD[2]]).encode("cp1252"))
    assert [t.ticket_id for t in tickets] == ["caisse-fr:paris-01:1002"]
    assert errors == [
        "line 2: ticket 1001 not sent: line 3 is bad",
        "line 3: ticket 1001 not sent: 6 columns, original_ticket is in column 7",
    ]
    # A bad value on the second row names that row, not the ticket's first.
    bad_qty = CSV_GOOD[1].replace(";1;1,20", ";x;1,20")
    tickets, errors = parse(CSV_SPEC, "\n".join([CSV_HEADER, CSV_GOOD[0], bad_qty, CSV_GOOD[2]]).encode("cp1252"))
    assert [t.ticket_id for t in tickets] == ["caisse-fr:paris-01:1002"]
    assert errors == [
        "line 2: ticket 1001 not sent: line 3 is bad",
        "line 3: ticket 1001 not sent: quantity: 'x' is not a number",
    ]
    # The bad row first, two more rows after it; a fixed-width line too short still names its ticket.
    tickets, errors = parse(CSV_SPEC, "\n".join([CSV_HEADER, truncated, *CSV_GOOD]).encode("cp1252"))
    assert [t.ticket_id for t in tickets] == ["caisse-fr:paris-01:1002"]
    assert errors == [
        "line 2: ticket 1001 not sent: 6 columns, original_ticket is in column 7",
        "line 3: ticket 1001 not sent: line 2 is bad",
        "line 4: ticket 1001 not sent: line 2 is bad",
    ]


def test_rows_of_a_ticket_must_agree_on_ticket_fields() -> None:
    """Two rows with one ticket number but another time (numbers reset daily) are not merged into one ticket."""
    later = CSV_GOOD[1].replace("10:15", "11:15")
    tickets, errors = parse(CSV_SPEC, "\n".join([CSV_HEADER, CSV_GOOD[0], later]).encode("cp1252"))
    assert tickets == []
    assert errors == [
        "line 2: ticket 1001 not sent: line 3 is bad",
        "line 3: ticket 1001 not sent: time '11:15' differs from '10:15' on line 2",
    ]
    # An empty ticket-level cell on a later row is no disagreement.
    blank_tax = CSV_GOOD[1].replace(";0,83;", ";;")
    tickets, errors = parse(CSV_SPEC, "\n".join([CSV_HEADER, CSV_GOOD[0], blank_tax]).encode("cp1252"))
    assert errors == [] and tickets[0].tax_amount == 83


def test_empty_and_header_only_files_have_no_tickets_and_no_errors() -> None:
    assert parse(CSV_SPEC, b"") == ([], [])
    assert parse(CSV_SPEC, CSV_HEADER.encode("cp1252")) == ([], [])


def test_csv_wrong_encoding_and_missing_column() -> None:
    utf8 = "\n".join([CSV_HEADER, *CSV_GOOD]).encode("utf-8")
    spec = {**CSV_SPEC, "encoding": "ascii"}
    tickets, errors = parse(spec, utf8)
    assert tickets == [] and errors == ["line 1: not valid ascii: byte 0xc3"]
    tickets, errors = parse(CSV_SPEC, "Magasin;Ticket\nPAR01;1".encode("cp1252"))
    assert errors[0].startswith("line 1: header has no column(s) Date, Heure")


def test_xml_xpath_multiple_tenders_and_void() -> None:
    (sale, void), errors = parse(XML_SPEC, XML_GOOD.encode("iso-8859-1"))
    assert errors == []
    assert sale.ticket_id == "kasse-de:berlin-01:T-1" and sale.terminal_id == "3"
    assert (sale.gross_amount, sale.net_amount, sale.tax_amount, sale.discount_amount) == (2536, 2436, 463, 100)
    assert sale.payments == (
        Payment(method=PaymentMethod.CASH, amount=1000),
        Payment(method=PaymentMethod.CARD, amount=1899),
    )
    assert sale.lines[0].description == "Schal grün" and sale.lines[0].category == "Accessoires"
    assert sale.occurred_at == datetime(2026, 3, 14, 9, 15, tzinfo=UTC)
    assert void.kind is TicketKind.VOID and void.net_amount == -420  # signed, though the file says 4.20
    assert void.lines[0].quantity == -1 and void.tax_amount == -80


def test_xml_malformed() -> None:
    broken = XML_GOOD.replace("</Ticket>\n  <Ticket", "\n  <Ticket", 1)
    tickets, errors = parse(XML_SPEC, broken.encode("iso-8859-1"))
    assert tickets == [] and len(errors) == 1
    assert errors[0].startswith("line ") and "not well-formed XML" in errors[0]
    no_lines = XML_GOOD.replace('<Line sku="B2" qty="1" price="5.00" discount="0"/>', "")
    tickets, errors = parse(XML_SPEC, no_lines.encode("iso-8859-1"))
    assert [t.ticket_id for t in tickets] == ["kasse-de:berlin-01:T-1"]
    assert errors == ["line 10: ticket T-2 not sent: ticket has neither lines nor a total"]
    bad_line = XML_GOOD.replace('qty="2"', 'qty="zwei"')
    tickets, errors = parse(XML_SPEC, bad_line.encode("iso-8859-1"))
    assert [t.ticket_id for t in tickets] == ["kasse-de:berlin-01:T-2"]
    assert errors == [  # the <Ticket> element, then its bad <Line>
        "line 3: ticket T-1 not sent: line 5 is bad",
        "line 5: ticket T-1 not sent: quantity: 'zwei' is not a number",
    ]


def test_xml_without_declaration_uses_spec_encoding() -> None:
    body = XML_GOOD.split("\n", 1)[1]  # no <?xml ... encoding=...?> line
    spec = {**XML_SPEC, "encoding": "cp1252"}
    for text in (body, '<?xml version="1.0"?>\n' + body):
        tickets, errors = parse(spec, text.encode("cp1252"))
        assert errors == [] and tickets[0].lines[0].description == "Schal grün"
    # Without the spec's encoding the same bytes are not UTF-8: rejected, not misread.
    tickets, errors = parse(XML_SPEC, body.encode("cp1252"))
    assert tickets == [] and "not well-formed XML" in errors[0]
    # A file that declares its encoding is read by its declaration, whatever the spec says.
    tickets, errors = parse({**XML_SPEC, "encoding": "utf-16"}, XML_GOOD.encode("iso-8859-1"))
    assert errors == [] and tickets[0].lines[0].description == "Schal grün"


def test_txt_tab_separated_minor_units() -> None:
    data = b"20260314\t101500\tS7\t5001\tSKU9\t3\t450\t50\tCASH\n20260314\t101500\tS7\t5001\tSKU8\t1\t99\t0\tCASH\n" \
           b"20260314\t101700\tS7\t5002\tSKU9\n"  # fmt: skip
    tickets, errors = parse(TXT_SPEC, data)
    [t] = tickets
    assert t.ticket_id == "till-uk:london-07:5001" and t.currency == "GBP"
    assert t.occurred_at == datetime(2026, 3, 14, 10, 15, tzinfo=UTC)  # GMT in March
    assert (t.net_amount, t.discount_amount, t.gross_amount) == (1399, 50, 1449)  # 3 x 4.50 - 0.50 + 0.99
    assert t.payments == (Payment(method=PaymentMethod.CASH, amount=1399),)
    assert errors == ["line 3: ticket 5002 not sent: 5 columns, quantity is in column 6"]


def test_fixed_width() -> None:
    lines = [
        "HEADER EXPORT 2026-03-14",
        fixed_line("000123", "20260314", "093000", "NY12", "SKU-0001", 2, 1250, "USD"),
        fixed_line("000123", "20260314", "093000", "NY12", "SKU-0002", 1, 399, "USD"),
        fixed_line("000124", "20260314", "093500", "NY12", "SKU-0001", 1, 1250, "USD")[:30],
        fixed_line("000125", "20260314", "09X500", "NY12", "SKU-0001", 1, 1250, "USD"),
    ]
    tickets, errors = parse(FIXED_SPEC, "\n".join(lines).encode())
    [t] = tickets
    assert t.ticket_id == "mainframe:NY12:000123" and t.store_id == "NY12"
    assert t.occurred_at == datetime(2026, 3, 14, 13, 30, tzinfo=UTC)  # EDT since 8 March
    assert t.net_amount == 2899 and [ln.quantity for ln in t.lines] == [2.0, 1.0]
    assert errors == [
        "line 4: ticket 000124 not sent: line is 30 characters, too short for quantity, unit_price, currency",
        "line 5: ticket 000125 not sent: time '20260314 09X500' does not match the format '%Y%m%d %H%M%S'",
    ]


def test_spec_validation(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**FIXED_SPEC, "fields": {**FIXED_SPEC["fields"], "sku": "Article"}}))
    with pytest.raises(SpecError, match=r"needs \[start, end\] positions; not for sku"):
        load_spec(path)
    path.write_text(yaml.safe_dump({**CSV_SPEC, "encoding": "klingon"}))
    with pytest.raises(SpecError, match="unknown encoding 'klingon'"):
        load_spec(path)


# --- the watcher -----------------------------------------------------------------------------------------------


def _old(path: Path) -> None:
    past = time.time() - 60
    os.utime(path, (past, past))


def test_watcher_moves_files_and_is_idempotent(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    ledger: list[PosTicket] = []
    store = CheckpointStore(tmp_path / "files.sqlite")
    watcher = FileWatcher(FileSpec(**CSV_SPEC), inbox, ListSink(ledger), store)
    good = inbox / "ventes-0314.csv"
    good.write_bytes("\n".join([CSV_HEADER, *CSV_GOOD]).encode("cp1252"))
    growing = inbox / "ventes-0315.csv"
    growing.write_bytes(CSV_HEADER.encode("cp1252"))  # just written: not taken yet
    (inbox / "ventes-0316.csv.part").write_bytes(b"x")
    _old(good)
    [outcome] = watcher.scan()
    assert outcome.published == 2 and outcome.moved_to == inbox / "processed" / "ventes-0314.csv"
    assert growing.exists() and not good.exists()
    # The same file dropped again: moved aside, nothing published twice.
    again = inbox / "ventes-0314.csv"
    again.write_bytes((inbox / "processed" / "ventes-0314.csv").read_bytes())
    _old(again)
    [second] = watcher.scan()
    assert (second.tickets, second.published) == (2, 0)
    assert second.moved_to == inbox / "processed" / "ventes-0314.csv.1"
    assert len(ledger) == 2


def test_watcher_rejects_with_report(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    ledger: list[PosTicket] = []
    watcher = FileWatcher(FileSpec(**CSV_SPEC), inbox, ListSink(ledger), CheckpointStore(tmp_path / "f.sqlite"))
    bad = inbox / "ventes.csv"
    bad.write_bytes(
        "\n".join([CSV_HEADER, CSV_GOOD[0], "PAR01;1009;14/03/2026;xx:yy;C1;V;;S;x;1;1;0;0;CB;"]).encode("cp1252")
    )
    _old(bad)
    [o] = watcher.scan()
    assert o.moved_to == inbox / "rejected" / "ventes.csv"
    report = (inbox / "rejected" / "ventes.csv.errors.txt").read_text()
    assert "ventes.csv: line 3: ticket 1009 not sent: time '14/03/2026 xx:yy' does not match" in report
    assert [t.ticket_id for t in ledger] == ["caisse-fr:paris-01:1001"]  # the good ticket is published


def test_watcher_ready_marker(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    spec = FileSpec(**{**XML_SPEC, "ready_suffix": ".done", "settle_seconds": 0})
    watcher = FileWatcher(spec, inbox, ListSink([]), CheckpointStore(tmp_path / "f.sqlite"))
    (inbox / "export.xml").write_text(XML_GOOD, encoding="iso-8859-1")
    assert watcher.scan() == []
    (inbox / "export.xml.done").write_text("")
    [o] = watcher.scan()
    assert o.published == 2 and not (inbox / "export.xml.done").exists()


def test_watcher_restart_mid_file_publishes_each_ticket_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_mod, "BATCH", 2)
    inbox = tmp_path / "in"
    inbox.mkdir()
    rows = [CSV_HEADER] + [f"PAR01;{2000 + i};14/03/2026;10:15;C1;V;;SKU1;x;1;2,50;0;0,42;CB;" for i in range(7)]
    path = inbox / "big.csv"
    path.write_bytes("\n".join(rows).encode("cp1252"))
    _old(path)
    ledger: list[PosTicket] = []
    store_path = tmp_path / "f.sqlite"
    with pytest.raises(KafkaUnavailable, match="DeliveryError"):
        FileWatcher(FileSpec(**CSV_SPEC), inbox, ListSink(ledger, fail_at=3), CheckpointStore(store_path)).scan()
    assert len(ledger) == 4 and path.exists()  # two batches acknowledged; the file stays in the inbox
    [o] = FileWatcher(FileSpec(**CSV_SPEC), inbox, ListSink(ledger), CheckpointStore(store_path)).scan()
    assert (o.tickets, o.published) == (7, 3)
    assert sorted(t.ticket_id for t in ledger) == [f"caisse-fr:paris-01:{2000 + i}" for i in range(7)]
