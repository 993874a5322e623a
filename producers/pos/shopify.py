"""Shopify Admin REST orders (``GET /admin/api/<version>/orders.json``) with their transactions, to tickets.

Shopify sends money as decimal strings in the shop currency (``"199.00"``). ``source_name`` ``pos`` is a sale
in a shop (IN_STORE); ``web`` and apps are ONLINE, DELIVERY when the order was shipped. Each element of
``refunds`` becomes a REFUND ticket; a cancelled order without refunds is published as its SALE plus a VOID.
Tenders come from the order's transactions (``GET /orders/<id>/transactions.json``), attached by the poller
under ``transactions``.
"""

from __future__ import annotations

from typing import Any

from producers.pos.common import (
    MapContext,
    MappingError,
    build,
    merge_payments,
    method_from_name,
    minor_units,
    parse_time,
    void_of,
)
from schemas.models import Channel, PaymentMethod, PosTicket, TicketKind, TicketLine

VENDOR = "shopify"


def ticket_id(order_id: Any) -> str:
    return f"{VENDOR}:{order_id}"


def _channel(order: dict[str, Any]) -> Channel:
    if order.get("source_name") == "pos":
        return Channel.IN_STORE
    if order.get("shipping_lines"):
        return Channel.DELIVERY
    return Channel.ONLINE


def _gateway(gateway: str | None, ctx: MapContext) -> PaymentMethod:
    override = ctx.payment_override(gateway)
    if override:
        return override
    if gateway in ("shopify_payments", "stripe"):
        return PaymentMethod.CARD
    return method_from_name(gateway)


def _transactions(
    txs: list[dict[str, Any]], kinds: tuple[str, ...], currency: str, ctx: MapContext, what: str
) -> list[tuple[PaymentMethod, int]]:
    out = []
    for tx in txs:
        if tx.get("status") not in (None, "success") or tx.get("kind") not in kinds:
            continue
        amount = minor_units(tx.get("amount"), currency, f"{what} transaction {tx.get('id')} amount")
        if tx.get("kind") == "change":
            amount = -amount
        out.append((_gateway(tx.get("gateway"), ctx), amount))
    return out


def _line(
    item: dict[str, Any], currency: str, ctx: MapContext, what: str, taxes_included: bool, qty: float | None = None
) -> TicketLine:
    where = f"{what} line_item {item.get('id')}"
    quantity = float(qty if qty is not None else item.get("quantity", 1))
    price = minor_units(item.get("price"), currency, f"{where} price")
    allocations = item.get("discount_allocations")
    if allocations:
        discount = sum(minor_units(a.get("amount"), currency, f"{where} discount") for a in allocations)
    else:
        discount = minor_units(item.get("total_discount", "0"), currency, f"{where} total_discount")
    tax = sum(minor_units(t.get("price"), currency, f"{where} tax") for t in item.get("tax_lines") or ())
    full_qty = float(item.get("quantity") or quantity or 1)
    if quantity != full_qty and full_qty:  # a partial refund of the line
        discount = round(discount * quantity / full_qty)
        tax = round(tax * quantity / full_qty)
    net = round(price * quantity) - discount
    if taxes_included:
        net -= tax
    return TicketLine(
        sku=str(item.get("sku") or item.get("variant_id") or item.get("id")),
        description=item.get("title") or item.get("name"),
        quantity=quantity,
        unit_price=price,
        discount_amount=discount,
        net_amount=net,
        category=ctx.category(item.get("product_id"), item.get("variant_id"), item.get("sku")),
    )


def map_order(order: dict[str, Any], ctx: MapContext) -> list[PosTicket]:
    """One Shopify order as its SALE, one REFUND per refund, and a VOID when cancelled without refunds."""
    oid = order.get("id")
    if oid is None:
        raise MappingError("shopify order without an id")
    what = f"shopify order {oid}"
    currency = order.get("currency")
    if not currency:
        raise MappingError(f"{what}: no currency")
    store = ctx.store(order.get("location_id"), what)
    taxes_included = bool(order.get("taxes_included"))
    total = minor_units(order.get("total_price"), currency, f"{what} total_price")
    tax = minor_units(order.get("total_tax", "0"), currency, f"{what} total_tax")
    discount = minor_units(order.get("total_discounts", "0"), currency, f"{what} total_discounts")
    tip = minor_units(order.get("total_tip_received", "0") or "0", currency, f"{what} total_tip_received")
    shipping_set = ((order.get("total_shipping_price_set") or {}).get("shop_money") or {}).get("amount", "0")
    shipping = minor_units(shipping_set, currency, f"{what} shipping")
    net = total - tax - tip - shipping
    txs = order.get("transactions") or []
    common: dict[str, Any] = {
        "source": ctx.source, "store_id": store, "tenant_id": ctx.tenant_id, "currency": currency,
        "channel": _channel(order), "ingested_at": ctx.ingested_at,
    }  # fmt: skip
    sale = {
        **common, "ticket_id": ticket_id(oid), "kind": TicketKind.SALE,
        "occurred_at": parse_time(order.get("processed_at") or order.get("created_at"), f"{what} processed_at"),
        "gross_amount": net + discount, "net_amount": net, "tax_amount": tax, "discount_amount": discount,
        "payments": merge_payments(_transactions(txs, ("sale", "capture", "change"), currency, ctx, what)),
        "lines": tuple(_line(li, currency, ctx, what, taxes_included) for li in order.get("line_items") or ()),
    }  # fmt: skip
    tickets = [build(what, **sale)]
    refunds = order.get("refunds") or []
    for refund in refunds:
        rid = refund.get("id")
        rwhat = f"{what} refund {rid}"
        lines = []
        r_net = r_tax = r_disc = 0
        for rli in refund.get("refund_line_items") or ():
            item = rli.get("line_item") or {}
            qty = float(rli.get("quantity", 0))
            line_tax = minor_units(rli.get("total_tax", "0"), currency, f"{rwhat} total_tax")
            subtotal = minor_units(rli.get("subtotal", "0"), currency, f"{rwhat} subtotal")
            line = _line(item, currency, ctx, rwhat, False, qty) if item else None
            if taxes_included:
                subtotal -= line_tax
            r_net += subtotal
            r_tax += line_tax
            if line is not None:
                r_disc += line.discount_amount
                lines.append(
                    line.model_copy(
                        update={"quantity": -qty, "net_amount": -subtotal, "discount_amount": -line.discount_amount}
                    )
                )
        refund_txs = _transactions(refund.get("transactions") or [], ("refund",), currency, ctx, rwhat)
        if not lines and refund_txs:  # an amount-only refund (no items returned)
            r_net = sum(a for _, a in refund_txs)
        tickets.append(build(rwhat, **{
            **common, "ticket_id": f"{ticket_id(oid)}:refund:{rid}", "kind": TicketKind.REFUND,
            "occurred_at": parse_time(refund.get("processed_at") or refund.get("created_at"), f"{rwhat} created_at"),
            "gross_amount": -(r_net + r_disc), "net_amount": -r_net, "tax_amount": -r_tax, "discount_amount": -r_disc,
            "payments": merge_payments((m, -a) for m, a in refund_txs), "lines": tuple(lines),
            "original_ticket_id": ticket_id(oid),
        }))  # fmt: skip
    if order.get("cancelled_at") and not refunds:
        void = {**sale, "occurred_at": parse_time(order["cancelled_at"], f"{what} cancelled_at")}
        tickets.append(void_of(void, what))
    return tickets


def updated_at(order: dict[str, Any]) -> str:
    return str(order.get("updated_at") or "")
