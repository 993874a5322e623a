"""Vendor payloads (documented shapes, in producers/pos/examples.py) mapped to tickets: exact amounts."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from producers.pos import clover, lightspeed, shopify, square
from producers.pos.common import MapContext, MappingError, minor_units
from producers.pos.examples import (
    clover_order,
    clover_refund,
    lightspeed_sale,
    shopify_order,
    shopify_refund,
    shopify_transactions,
    square_order,
    square_return_order,
)
from schemas.models import Channel, Payment, PaymentMethod, PosTicket, TicketKind

AT = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
NOW = datetime(2026, 3, 14, 16, 0, tzinfo=UTC)
PERSONAL = ("Lovelace", "Norman", "bob.norman", "Sheppard", "kate@", "Hopper", "grace@", "+336", "GRACE H", "1111")


def ctx(**kw: object) -> MapContext:
    base: dict[str, object] = {
        "source": "test", "ingested_at": NOW, "tenant_id": "t1", "currency": "NZD",
        "stores": {"L8RY5ZZ0T8RZM": "s1", "48752903": "s2", "0adaafb3-6583-11e5-fb60-d3e7e1dbd1a1": "s3",
                   "MJ3ZB0FP6X2P1": "s4"},
    }  # fmt: skip
    base.update(kw)
    return MapContext(**base)  # type: ignore[arg-type]


def no_personal_data(tickets: list[PosTicket]) -> None:
    text = json.dumps([t.to_json() for t in tickets])
    for needle in PERSONAL:
        assert needle not in text
    assert "customer" not in text


def balanced(t: PosTicket, tip: int = 0) -> None:
    """Payments cover net + tax, and gross = net + discount."""
    assert t.gross_amount == t.net_amount + t.discount_amount
    if t.payments:
        assert sum(p.amount for p in t.payments) == t.net_amount + t.tax_amount + tip


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [("199.00", "EUR", 19900), ("0.005", "USD", 1), ("-4.165", "EUR", -417), (42.6087, "NZD", 4261),
     ("1500", "JPY", 1500), ("1.2345", "KWD", 1235), (7, "USD", 700)],
)  # fmt: skip
def test_minor_units(value: object, currency: str, expected: int) -> None:
    assert minor_units(value, currency) == expected


@pytest.mark.parametrize("bad", [None, "", "12,50", "NaN", "inf", True])
def test_minor_units_refuses(bad: object) -> None:
    with pytest.raises(MappingError):
        minor_units(bad, "EUR", "total_price")


def test_square_sale() -> None:
    [t] = square.map_order(square_order(1, AT), ctx(categories={"VAR-MUFFIN": "bakery"}))
    assert t.ticket_id == "square:SQ000001ORDER" and t.kind is TicketKind.SALE and t.store_id == "s1"
    assert (t.currency, t.gross_amount, t.net_amount, t.tax_amount, t.discount_amount) == ("USD", 1225, 1135, 97, 90)
    assert [(p.method, p.amount) for p in t.payments] == [(PaymentMethod.CARD, 1000), (PaymentMethod.CASH, 232)]
    assert [(ln.sku, ln.quantity, ln.unit_price, ln.discount_amount, ln.net_amount, ln.category) for ln in t.lines] == [
        ("VAR-LATTE-L", 2.0, 450, 90, 810, None), ("VAR-MUFFIN", 1.0, 325, 0, 325, "bakery")]  # fmt: skip
    assert t.occurred_at == datetime(2026, 3, 14, 15, 8, 26, tzinfo=UTC)  # closed_at
    assert t.channel is Channel.IN_STORE and t.tenant_id == "t1"
    balanced(t)
    no_personal_data([t])


def test_square_return_order_is_refund_of_source() -> None:
    ret = square_return_order(2, "SQ000001ORDER", AT)
    ret["source_tenders"] = [{"id": t["id"], "type": t["type"]} for t in square_order(1, AT)["tenders"]]
    [t] = square.map_order(ret, ctx())
    assert t.kind is TicketKind.REFUND and t.original_ticket_id == "square:SQ000001ORDER"
    assert (t.net_amount, t.tax_amount, t.gross_amount) == (-325, -28, -325)
    # The refund names the sale's cash tender (T1B) by id; its type comes from the sale.
    assert t.payments == (Payment(method=PaymentMethod.CASH, amount=-353),)
    assert t.lines[0].quantity == -1.0 and t.lines[0].net_amount == -325
    no_personal_data([t])


def test_square_refund_tender_without_the_sale_is_other() -> None:
    ret = square_return_order(2, "SQ000001ORDER", AT)
    assert square.map_order(ret, ctx())[0].payments == (Payment(method=PaymentMethod.OTHER, amount=-353),)
    ret["source_tenders"] = [{"id": "T1B", "type": "CASH"}]
    assert square.map_order(ret, ctx(payment_types={"CASH": "MOBILE"}))[0].payments[0].method is PaymentMethod.MOBILE


def test_square_canceled_is_sale_plus_void_and_open_is_skipped() -> None:
    order = square_order(3, AT)
    order["state"] = "CANCELED"
    sale, void = square.map_order(order, ctx())
    assert void.kind is TicketKind.VOID and void.original_ticket_id == sale.ticket_id == "square:SQ000003ORDER"
    assert void.ticket_id == "square:SQ000003ORDER:void" and void.net_amount == -sale.net_amount
    order["state"] = "OPEN"
    assert square.map_order(order, ctx()) == []


def test_square_delivery_channel_and_unmapped_location() -> None:
    order = square_order(4, AT)
    order["fulfillments"] = [{"type": "DELIVERY", "state": "COMPLETED"}]
    assert square.map_order(order, ctx())[0].channel is Channel.DELIVERY
    order["location_id"] = "ELSEWHERE"
    with pytest.raises(MappingError, match=r"square order SQ000004ORDER: location 'ELSEWHERE' is not mapped"):
        square.map_order(order, ctx())


def test_square_bad_money_names_the_field() -> None:
    order = square_order(5, AT)
    order["total_tax_money"] = {"amount": "9.7", "currency": "USD"}
    with pytest.raises(MappingError, match="total_tax_money"):
        square.map_order(order, ctx())


def test_shopify_pos_sale_taxes_included() -> None:
    order = shopify_order(1, AT)
    order["transactions"] = shopify_transactions(order)
    [t] = shopify.map_order(order, ctx())
    assert (
        t.ticket_id == f"shopify:{order['legacyResourceId']}" and t.store_id == "s2" and t.channel is Channel.IN_STORE
    )
    assert (t.currency, t.gross_amount, t.net_amount, t.tax_amount, t.discount_amount) == ("EUR", 5167, 4667, 933, 500)
    assert [(p.method, p.amount) for p in t.payments] == [(PaymentMethod.CARD, 4000), (PaymentMethod.CASH, 1600)]
    assert [(ln.sku, ln.quantity, ln.unit_price, ln.discount_amount, ln.net_amount) for ln in t.lines] == [
        ("MUG-BLK", 2.0, 1800, 500, 2583), ("TOTE-01", 1.0, 2500, 0, 2084)]  # fmt: skip
    balanced(t)
    no_personal_data([t])


def test_shopify_refund_and_web_channel() -> None:
    order = shopify_order(2, AT, source_name="web")
    order["refunds"] = [shopify_refund(order, 509562969, AT)]
    sale, refund = shopify.map_order(order, ctx())
    assert sale.channel is Channel.ONLINE
    assert refund.ticket_id == f"shopify:{order['legacyResourceId']}:refund:509562969"
    assert refund.kind is TicketKind.REFUND and refund.original_ticket_id == sale.ticket_id
    assert (refund.net_amount, refund.tax_amount) == (-2084, -416)
    assert refund.payments == (Payment(method=PaymentMethod.CASH, amount=-2500),)
    assert refund.lines[0].sku == "TOTE-01" and refund.lines[0].quantity == -1.0
    no_personal_data([sale, refund])


def test_shopify_cancelled_without_refund_is_voided() -> None:
    order = shopify_order(3, AT)
    order["cancelledAt"] = AT.isoformat()
    sale, void = shopify.map_order(order, ctx())
    assert void.kind is TicketKind.VOID and void.original_ticket_id == sale.ticket_id
    assert void.gross_amount == -sale.gross_amount


def test_lightspeed_sale_rounds_tax_exclusive_prices() -> None:
    [t] = lightspeed.map_sale(lightspeed_sale(1, AT, 100), ctx())
    assert t.ticket_id == "lightspeed:5e9b7a3c-0000-4000-8000-000000000001" and t.store_id == "s3"
    assert (t.currency, t.gross_amount, t.net_amount, t.tax_amount, t.discount_amount) == ("NZD", 4522, 4261, 639, 261)
    assert t.terminal_id == "0adaafb3-6583-11e5-fb60-d3e7e1f2f0a1"
    assert t.payments == (Payment(method=PaymentMethod.CASH, amount=4900),)
    assert [(ln.quantity, ln.unit_price, ln.discount_amount, ln.net_amount) for ln in t.lines] == [
        (3.0, 870, 261, 2348), (1.0, 1913, 0, 1913)]  # fmt: skip
    balanced(t)
    no_personal_data([t])


def test_lightspeed_return_void_layby_and_saved() -> None:
    ret = lightspeed_sale(2, AT, 101)
    ret.update(return_for="5e9b7a3c-0000-4000-8000-000000000001", total_price=-19.130435, total_tax=-2.869565)
    ret["line_items"] = [dict(ret["line_items"][1], quantity=-1, total_price=-19.130435)]
    ret["payments"][0]["amount"] = -22.0
    [t] = lightspeed.map_sale(ret, ctx())
    assert t.kind is TicketKind.REFUND and t.original_ticket_id == "lightspeed:5e9b7a3c-0000-4000-8000-000000000001"
    assert (t.net_amount, t.tax_amount) == (-1913, -287)
    voided = lightspeed_sale(3, AT, 102)
    voided["status"] = "VOIDED"
    assert [x.kind for x in lightspeed.map_sale(voided, ctx())] == [TicketKind.SALE, TicketKind.VOID]
    voided["status"] = "LAYBY"
    assert lightspeed.map_sale(voided, ctx())[0].kind is TicketKind.LAYAWAY
    voided["status"] = "SAVED"
    assert lightspeed.map_sale(voided, ctx()) == []


def test_lightspeed_needs_a_currency() -> None:
    with pytest.raises(MappingError, match="no currency"):
        lightspeed.map_sale(lightspeed_sale(4, AT, 1), ctx(currency=None))


def test_clover_order_with_weighed_line_and_order_discount() -> None:
    at_ms = int(AT.timestamp() * 1000)
    order = clover_order(1, at_ms)
    [t] = clover.map_order(order, ctx(), "MJ3ZB0FP6X2P1")
    assert t.ticket_id == "clover:CLV000001" and t.store_id == "s4"
    assert (t.currency, t.gross_amount, t.net_amount, t.tax_amount, t.discount_amount) == ("USD", 2700, 2430, 194, 270)
    assert [(ln.sku, ln.quantity, ln.net_amount, ln.category) for ln in t.lines] == [
        ("BRG-1", 1.0, 1200, None), ("BEAN-LB", 1.5, 1500, "Coffee")]  # fmt: skip
    assert t.payments == (Payment(method=PaymentMethod.CARD, amount=2624),)
    assert t.terminal_id == "8f0b3c5a-0000-4000-8000-c1a7e0d1e0aa"
    balanced(t)
    no_personal_data([t])


def test_clover_refund_void_and_open() -> None:
    at_ms = int(AT.timestamp() * 1000)
    order = clover_order(2, at_ms)
    order["refunds"] = {"elements": [clover_refund(order, "RF1", at_ms + 1000)]}
    sale, refund = clover.map_order(order, ctx(), "MJ3ZB0FP6X2P1")
    assert refund.ticket_id == "clover:refund:RF1" and refund.original_ticket_id == sale.ticket_id
    assert (refund.net_amount, refund.tax_amount) == (-1080, -86)
    assert refund.payments == (Payment(method=PaymentMethod.CARD, amount=-1166),)
    voided = copy.deepcopy(order)
    voided["refunds"] = {"elements": []}
    voided["payments"]["elements"][0]["result"] = "VOIDED"
    assert [x.kind for x in clover.map_order(voided, ctx(), "MJ3ZB0FP6X2P1")] == [TicketKind.SALE, TicketKind.VOID]
    voided["payments"] = {"elements": []}
    assert clover.map_order(voided, ctx(), "MJ3ZB0FP6X2P1") == []


def test_mapping_is_deterministic() -> None:
    """The same payload maps to the same ticket: what de-duplication across polls relies on."""
    a = square.map_order(square_order(9, AT), ctx())
    b = square.map_order(copy.deepcopy(square_order(9, AT)), ctx())
    assert a == b


def test_minor_units_fast_path_agrees_with_decimal_half_up() -> None:
    import random
    from decimal import ROUND_HALF_UP, Decimal

    from producers.pos.common import exponent

    rng = random.Random(7)
    for _ in range(5000):
        currency = rng.choice(["EUR", "JPY", "KWD"])
        if rng.random() < 0.7:
            value: object = f"{rng.choice(['', '-'])}{rng.randint(0, 10**6)}.{rng.randint(0, 10**6)}"
        else:
            value = rng.uniform(-1e4, 1e4)
        expected = int(Decimal(str(value)).scaleb(exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert minor_units(value, currency) == expected, (value, currency)


def test_shopify_line_category_comes_from_the_source_map() -> None:
    """The query asks for no product type: categories come from `categories:` by product, variant or SKU (the
    numeric ids of the product's and variant's global ids)."""
    order = shopify_order(3, AT)
    [t] = shopify.map_order(order, ctx(categories={"632910392": "kitchen", "TOTE-01": "bags"}))
    assert [(ln.sku, ln.category) for ln in t.lines] == [("MUG-BLK", "kitchen"), ("TOTE-01", "bags")]
