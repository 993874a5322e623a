"""Assembling Debezium change events into PosTickets: pure logic driven with an explicit clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from producers.cdc.normalize import (
    DeadLetter,
    Emit,
    MappingError,
    MemoryStore,
    TicketAssembler,
    minor_units,
    parse_envelope,
    to_utc,
)
from schemas.models import PaymentMethod, PosTicket, TicketKind
from tests.support.cdc_events import SOURCE, Db, header


def line(lid: int, tid: int, sku: str = "SKU1", qty: str = "1.000", price: str = "12.50") -> dict[str, Any]:
    return {"id": lid, "ticket_id": tid, "sku": sku, "label": "Tea", "qty": qty, "unit_price": price,
            "discount": "0.00", "line_total": price, "category": "food"}  # fmt: skip


def payment(pid: int, tid: int, tender: str = "card", amount: str = "12.50") -> dict[str, Any]:
    return {"id": pid, "ticket_id": tid, "tender": tender, "amount": amount}


def emitted(outputs: list[Any]) -> list[PosTicket]:
    assert all(isinstance(o, Emit) for o in outputs), outputs
    return [o.ticket for o in outputs]


def test_lines_and_payments_before_the_header_make_one_ticket_after_the_settle_time() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=2.0)
    asm.apply("lines", db.event("c", None, line(1, 7)), now=0.0)
    asm.apply("payments", db.event("c", None, payment(1, 7)), now=0.1)
    assert asm.tick(now=10.0) == []  # no header yet: wait
    asm.apply("tickets", db.event("c", None, header(7)), now=10.0)
    assert asm.tick(now=11.0) == []  # settling
    (t,) = emitted(asm.tick(now=12.1))
    assert t.ticket_id == "7" and t.kind == TicketKind.SALE and t.source == "pos-paris-postgres"
    assert t.store_id == "paris-01" and t.terminal_id == "3" and t.currency == "EUR"
    assert (t.gross_amount, t.net_amount, t.tax_amount, t.discount_amount) == (1250, 1042, 208, 0)
    assert [(p.method, p.amount) for p in t.payments] == [(PaymentMethod.CARD, 1250)]
    assert [(ln.sku, ln.quantity, ln.unit_price, ln.net_amount) for ln in t.lines] == [("SKU1", 1.0, 1250, 1250)]
    # closed_at is the Paris wall clock 2026-11-18 11:06:40 (written as if UTC): one hour earlier in UTC (winter)
    assert t.occurred_at == datetime(2026, 11, 18, 10, 6, 40, tzinfo=UTC)
    assert asm.tick(now=100.0) == []  # published once


def test_lines_after_the_header_in_one_transaction_publish_as_soon_as_the_transaction_is_complete() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=60.0)
    asm.apply("tickets", db.event("c", None, header(1), tx="571:1000"), now=0.0)
    asm.apply("lines", db.event("c", None, line(10, 1, price="5.00"), tx="571:1000"), now=0.0)
    assert asm.tick(now=0.5) == []  # no END yet, settle not reached
    # Debezium's Postgres END event names the transaction with its commit LSN, not its first change's.
    asm.apply_transaction({"status": "END", "id": "571:1096", "event_count": 3, "data_collections": [
        {"data_collection": "public.tickets", "event_count": 1},
        {"data_collection": "public.ticket_lines", "event_count": 2}]})  # fmt: skip
    assert asm.tick(now=0.6) == []  # one line still missing
    assert asm.tick(now=61.0) == []  # settle time passed, but the transaction says a line is missing
    asm.apply("lines", db.event("c", None, line(11, 1, sku="SKU2", price="7.50"), tx="571:1000"), now=61.0)
    assert asm.tick(now=61.1) == []  # complete: a short grace for events of earlier transactions in flight
    (t,) = emitted(asm.tick(now=61.25))
    assert [ln.sku for ln in t.lines] == ["SKU1", "SKU2"]


def test_an_incomplete_transaction_holds_the_ticket_at_most_max_wait() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=1.0, max_wait_s=30.0)
    asm.apply("tickets", db.event("c", None, header(31), tx="600:1"), now=0.0)
    asm.apply_transaction({"status": "END", "id": "600:9", "event_count": 2, "data_collections": [
        {"data_collection": "public.tickets", "event_count": 1},
        {"data_collection": "public.ticket_lines", "event_count": 1}]})  # fmt: skip
    assert asm.tick(now=29.0) == []
    (t,) = emitted(asm.tick(now=30.0))  # the line was filtered out upstream or lost: publish what is known
    assert t.ticket_id == "31" and t.lines == ()


def test_transaction_keys() -> None:
    from producers.cdc.normalize import transaction_key

    assert transaction_key("728:26454768") == transaction_key("728:26455560") == "728"
    gtid = "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"
    assert transaction_key(gtid) == gtid
    assert transaction_key("0000002d:00000a28:0003") == "0000002d:00000a28:0003"
    assert transaction_key(None) is None


def test_open_tickets_wait_until_closed() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=1.0)
    asm.apply("tickets", db.event("c", None, header(2, status="open")), now=0.0)
    asm.apply("lines", db.event("c", None, line(20, 2)), now=0.0)
    assert asm.tick(now=1000.0) == []
    asm.apply("tickets", db.event("u", header(2, status="open"), header(2)), now=1000.0)
    (t,) = emitted(asm.tick(now=1001.0))
    assert t.kind == TicketKind.SALE


def test_replays_and_snapshot_rereads_publish_nothing_twice() -> None:
    db, store = Db(), MemoryStore()
    events = [
        ("tickets", db.event("c", None, header(3))),
        ("lines", db.event("c", None, line(30, 3))),
        ("payments", db.event("c", None, payment(30, 3, tender="cash"))),
    ]
    asm = TicketAssembler(SOURCE, store=store, settle_s=1.0)
    for role, ev in events:
        asm.apply(role, ev, now=0.0)
    assert len(emitted(asm.tick(now=2.0))) == 1
    for role, ev in events:  # the same events again (an engine restart re-sends the last batch)
        asm.apply(role, ev, now=3.0)
    assert asm.tick(now=10.0) == []
    # a fresh normalizer with the same store (restart of the normalizer) reading everything again
    asm2 = TicketAssembler(SOURCE, store=store, settle_s=1.0)
    for role, ev in events:
        asm2.apply(role, ev, now=0.0)
    assert asm2.tick(now=10.0) == [] and asm2.stats["stale"] == 3


def test_update_of_a_published_ticket_is_a_void_plus_a_corrected_version() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=1.0)
    asm.apply("tickets", db.event("c", None, header(4)), now=0.0)
    asm.apply("lines", db.event("c", None, line(40, 4)), now=0.0)
    (first,) = emitted(asm.tick(now=2.0))
    asm.apply("lines", db.event("u", line(40, 4), line(40, 4, qty="2.000", price="6.25")), now=3.0)
    asm.apply("tickets", db.event("u", header(4), header(4, gross="12.60")), now=3.0)
    void, corrected = emitted(asm.tick(now=5.0))
    assert void.kind == TicketKind.VOID and void.ticket_id == "4~void" and void.original_ticket_id == "4"
    # The VOID negates what stood (signed amounts), so the pair sums to zero.
    assert -void.gross_amount == first.gross_amount == 1250
    assert [(ln.sku, -ln.quantity, -ln.net_amount) for ln in void.lines] == [
        (ln.sku, ln.quantity, ln.net_amount) for ln in first.lines
    ]
    assert corrected.ticket_id == "4~r2" and corrected.original_ticket_id == "4" and corrected.kind == TicketKind.SALE
    assert (
        corrected.gross_amount == 1260 and corrected.lines[0].quantity == 2.0 and corrected.lines[0].unit_price == 625
    )
    # a second correction reverses the first one
    asm.apply("tickets", db.event("u", header(4, gross="12.60"), header(4, gross="12.70")), now=6.0)
    void2, third = emitted(asm.tick(now=8.0))
    assert void2.ticket_id == "4~r2~void" and void2.original_ticket_id == "4~r2" and third.ticket_id == "4~r3"


def test_voided_and_deleted_tickets_become_voids_of_what_was_published() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=1.0)
    asm.apply("tickets", db.event("c", None, header(5)), now=0.0)
    asm.apply("tickets", db.event("c", None, header(6)), now=0.0)
    assert len(emitted(asm.tick(now=2.0))) == 2
    asm.apply("tickets", db.event("u", header(5), header(5, status="void")), now=3.0)
    asm.apply("tickets", db.event("d", header(6), None), now=3.0)
    asm.apply("tickets", None, now=3.0)  # the tombstone after the delete
    out = emitted(asm.tick(now=5.0))
    assert sorted((t.ticket_id, t.kind, t.original_ticket_id) for t in out) == [
        ("5~void", TicketKind.VOID, "5"),
        ("6~void", TicketKind.VOID, "6"),
    ]
    assert asm.stats["tombstones"] == 1
    asm.apply("tickets", db.event("d", header(5, status="void"), None), now=6.0)  # deleting a voided ticket
    assert asm.tick(now=8.0) == []


def test_a_ticket_voided_before_publication_is_published_once_as_a_void() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=1.0)
    asm.apply("tickets", db.event("c", None, header(8, status="void")), now=0.0)
    (t,) = emitted(asm.tick(now=2.0))
    assert t.kind == TicketKind.VOID and t.ticket_id == "8" and t.original_ticket_id is None
    assert t.gross_amount < 0 and t.net_amount < 0  # the database holds positive figures; the contract signs them
    # an open ticket deleted before closing publishes nothing
    asm.apply("tickets", db.event("c", None, header(9, status="open")), now=3.0)
    asm.apply("tickets", db.event("d", header(9, status="open"), None), now=3.0)
    assert asm.tick(now=5.0) == []


def test_line_deleted_after_publication_corrects_the_ticket() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=1.0)
    asm.apply("tickets", db.event("c", None, header(11)), now=0.0)
    asm.apply("lines", db.event("c", None, line(1, 11)), now=0.0)
    asm.apply("lines", db.event("c", None, line(2, 11, sku="SKU2")), now=0.0)
    assert len(emitted(asm.tick(now=2.0))) == 1
    # REPLICA IDENTITY DEFAULT: the delete's before image has only the key; the message key has the ticket id
    asm.apply("lines", db.event("d", {"id": 2}, None), now=3.0, key={"ticket_id": 11})
    void, corrected = emitted(asm.tick(now=5.0))
    assert [ln.sku for ln in corrected.lines] == ["SKU1"] and len(void.lines) == 2


def test_unmappable_records_are_dead_lettered_with_the_reason() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=1.0, max_wait_s=30.0)
    asm.apply("tickets", db.event("c", None, header(12, gross="twelve")), now=0.0)
    asm.apply("tickets", db.event("c", None, header(13, status="layaway??")), now=0.0)
    (dl,) = asm.apply("lines", db.event("c", None, {"id": 5, "sku": "X"}), now=0.0)  # no ticket id at all
    assert isinstance(dl, DeadLetter) and "ticket_lines: change has no ticket_id" in dl.reason
    asm.apply("payments", db.event("c", None, payment(1, 99)), now=0.0)  # header never comes
    out = asm.tick(now=2.0)
    reasons = sorted(o.reason for o in out if isinstance(o, DeadLetter))
    assert reasons == [
        "ticket 12: gross_amount: amount 'twelve' is not a number",
        "ticket 13: status 'layaway??' is neither in status_map (closed, void, refund, staff) "
        "nor in open_statuses (open)",
    ]
    (orphan,) = asm.tick(now=31.0)
    assert (
        isinstance(orphan, DeadLetter)
        and orphan.ticket_id == "99"
        and "without a ticket header after 30s" in orphan.reason
    )
    assert orphan.payload["payments"] == [payment(1, 99)]
    assert asm.pending_count == 0


def test_columns_outside_the_allowlist_are_dropped() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=1.0, store=(store := MemoryStore()))
    asm.apply("tickets", db.event("c", None, {**header(14), "cashier_name": "Alice"}), now=0.0)
    assert len(emitted(asm.tick(now=2.0))) == 1
    assert "cashier_name" not in str(store.data["14"])


def test_held_offsets_are_released_only_when_the_ticket_is_published() -> None:
    db, asm = Db(), TicketAssembler(SOURCE, settle_s=1.0)
    asm.apply("lines", db.event("c", None, line(1, 15)), now=0.0, ref=("raw.lines", 0, 40))
    asm.apply("lines", db.event("c", None, line(1, 16)), now=0.0, ref=("raw.lines", 0, 41))
    asm.apply("tickets", db.event("c", None, header(16)), now=0.0, ref=("raw.tickets", 0, 7))
    asm.tick(now=2.0)
    assert asm.lowest_held("raw.lines", 0) == 40  # ticket 15 still waits for its header
    assert asm.lowest_held("raw.tickets", 0) is None
    asm.apply("tickets", db.event("c", None, header(15)), now=3.0, ref=("raw.tickets", 0, 8))
    assert asm.lowest_held("raw.tickets", 0) == 8
    asm.tick(now=5.0)
    assert asm.lowest_held("raw.lines", 0) is None and asm.lowest_held("raw.tickets", 0) is None


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [("12.50", "EUR", 1250), ("0.005", "EUR", 1), ("0.015", "EUR", 2), ("1200", "JPY", 1200), ("1.234", "KWD", 1234),
     ("-3.10", "EUR", -310), (7, "EUR", 700), ("12.3400", "USD", 1234)],
)  # fmt: skip
def test_minor_units(value: Any, currency: str, expected: int) -> None:
    assert minor_units(value, currency) == expected


def test_minor_units_refuses_non_numbers() -> None:
    for bad in ("", "NaN", "1,50", None, True):
        with pytest.raises(MappingError):
            minor_units(bad, "EUR")
    assert minor_units("1250", "EUR", already_minor=True) == 1250
    with pytest.raises(MappingError, match="integer minor units"):
        minor_units("12.5", "EUR", already_minor=True)


def test_times() -> None:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    assert to_utc("2026-07-01T10:00:00Z", paris) == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert to_utc("2026-07-01T10:00:00", paris) == datetime(2026, 7, 1, 8, tzinfo=UTC)
    assert to_utc(1_782_900_000_000_000, paris) == to_utc(1_782_900_000_000, paris)  # micros or millis


def test_envelope_with_embedded_schema_and_heartbeats() -> None:
    env = parse_envelope({"schema": {"type": "struct"}, "payload": {"op": "r", "before": None, "after": {"id": 1},
                          "source": {"lsn": 5, "ts_ms": 9}, "ts_ms": 10}})  # fmt: skip
    assert env is not None and env.op == "r" and env.position == (0, 5, 0) and env.ts_ms == 10
    assert parse_envelope({"ts_ms": 123}) is None  # heartbeat
    with pytest.raises(MappingError, match="unknown operation"):
        parse_envelope({"op": "x"})
