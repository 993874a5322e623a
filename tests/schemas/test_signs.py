"""A ticket's amounts and its lines' quantities and net amounts carry the sign of the ticket's kind."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.models import PosTicket, reversed_amounts

LINE = {"sku": "A", "quantity": 2, "unit_price": 500, "net_amount": 1000}
SALE: dict[str, Any] = {
    "ticket_id": "T1", "source": "file", "store_id": "wg-volt", "kind": "SALE",
    "occurred_at": "2026-03-30T12:05:00Z", "currency": "EUR", "gross_amount": 1000, "net_amount": 1000,
    "tax_amount": 160, "discount_amount": 0, "lines": [LINE], "ingested_at": "2026-03-30T12:06:00Z",
}  # fmt: skip


def reason(fields: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        PosTicket.model_validate(fields)
    return str(caught.value.errors()[0]["msg"]).removeprefix("Value error, ")


def test_a_sale_and_its_reversal_are_accepted() -> None:
    sale = PosTicket.model_validate(SALE)
    for kind in ("REFUND", "VOID"):
        reversal = PosTicket.model_validate({**reversed_amounts(sale.model_dump()), "kind": kind})
        assert reversal.lines[0].quantity == -2 and reversal.lines[0].net_amount == -1000
    assert PosTicket.model_validate({**SALE, "kind": "EMPLOYEE_SALE"}).lines[0].quantity == 2


def test_a_line_against_its_tickets_sign_is_refused_with_the_ticket_and_line_named() -> None:
    negative_quantity = {**SALE, "lines": [LINE, {**LINE, "sku": "B", "quantity": -1}]}
    assert reason(negative_quantity) == "SALE ticket T1: line 2 (sku B) quantity -1 must be >= 0 (signed amounts)"
    negative_net = {**SALE, "lines": [{**LINE, "net_amount": -1000}]}
    assert reason(negative_net) == "SALE ticket T1: line 1 (sku A) net_amount -1000 must be >= 0 (signed amounts)"
    refund = {**SALE, "kind": "REFUND", "gross_amount": -1000, "net_amount": -1000, "lines": [{**LINE, "quantity": 0.5,
              "net_amount": -250}]}  # fmt: skip
    assert reason(refund) == "REFUND ticket T1: line 1 (sku A) quantity 0.5 must be <= 0 (signed amounts)"


def test_the_ticket_amounts_are_checked_before_the_lines() -> None:
    refund = {**SALE, "kind": "REFUND"}
    assert reason(refund) == "REFUND ticket T1: gross_amount 1000 must be <= 0 (signed amounts)"
