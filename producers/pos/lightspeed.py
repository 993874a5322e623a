"""Lightspeed Retail X-Series sales (``GET /api/2.0/sales?after=<version>``) to tickets.

Lightspeed sends money as JSON numbers in the retailer's currency, tax-exclusive (``price``, ``total_price``)
with the tax beside it (``total_tax``), often with more than two decimals; they are rounded half up to minor
units. Sales carry no currency: it comes from the source configuration. A return (``return_for`` set, negative
totals) is a REFUND; a VOIDED sale is published as its SALE plus a VOID; layby and on-account sales are
LAYAWAY and DEFERRED; SAVED, OPEN and parked sales are not tickets yet.
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
from schemas.models import Channel, PosTicket, TicketKind, TicketLine

VENDOR = "lightspeed"

_KINDS = {
    "CLOSED": TicketKind.SALE,
    "ONACCOUNT_CLOSED": TicketKind.SALE,
    "LAYBY_CLOSED": TicketKind.SALE,
    "LAYBY": TicketKind.LAYAWAY,
    "ONACCOUNT": TicketKind.DEFERRED,
    "AWAITING_DISPATCH": TicketKind.SALE,
    "AWAITING_PICKUP": TicketKind.SALE,
    "DISPATCHED_CLOSED": TicketKind.SALE,
    "PICKED_UP_CLOSED": TicketKind.SALE,
    "VOIDED": TicketKind.SALE,
}


def ticket_id(sale_id: str) -> str:
    return f"{VENDOR}:{sale_id}"


def map_sale(sale: dict[str, Any], ctx: MapContext) -> list[PosTicket]:
    """One X-Series sale as tickets."""
    sid = sale.get("id")
    if not sid:
        raise MappingError("lightspeed sale without an id")
    what = f"lightspeed sale {sid}"
    status = str(sale.get("status") or "").upper()
    kind = _KINDS.get(status)
    if kind is None:
        return []
    if not ctx.currency:
        raise MappingError(f"{what}: the source configuration sets no currency (Lightspeed sales carry none)")
    cur = ctx.currency
    store = ctx.store(sale.get("outlet_id"), what)
    lines = []
    discount = 0
    for i, li in enumerate(sale.get("line_items") or ()):
        if str(li.get("status", "CONFIRMED")).upper() == "VOIDED":
            continue
        where = f"{what} line {i}"
        qty = float(li.get("quantity", 0))
        unit_discount = minor_units(li.get("discount", 0) or 0, cur, f"{where} discount")
        line_discount = round(unit_discount * qty)
        discount += line_discount
        lines.append(
            TicketLine(
                sku=str(li.get("product_id") or li.get("id") or f"line-{i}"),
                description=li.get("name") or li.get("note"),
                quantity=qty,
                unit_price=minor_units(li.get("price"), cur, f"{where} price") + unit_discount,
                discount_amount=line_discount,
                net_amount=minor_units(li.get("total_price", li.get("price_total")), cur, f"{where} total_price"),
                category=ctx.category(li.get("product_id")),
            )
        )
    net = minor_units(sale.get("total_price"), cur, f"{what} total_price")
    tax = minor_units(sale.get("total_tax", 0), cur, f"{what} total_tax")
    payments = merge_payments(
        (
            ctx.payment_override(p.get("retailer_payment_type_id"), p.get("payment_type_id"), p.get("name"))
            or method_from_name(p.get("name")),
            minor_units(p.get("amount"), cur, f"{what} payment {p.get('id')} amount"),
        )
        for p in sale.get("payments") or ()
        if not p.get("deleted_at")
    )
    is_return = bool(sale.get("return_for")) or net < 0
    fields: dict[str, Any] = {
        "ticket_id": ticket_id(sid), "source": ctx.source, "store_id": store, "tenant_id": ctx.tenant_id,
        "terminal_id": sale.get("register_id"), "occurred_at": parse_time(sale.get("sale_date"), f"{what} sale_date"),
        "currency": cur, "kind": TicketKind.REFUND if is_return else kind,
        "gross_amount": net + discount, "net_amount": net, "tax_amount": tax, "discount_amount": discount,
        "payments": payments, "channel": Channel.IN_STORE, "lines": tuple(lines),
        "original_ticket_id": ticket_id(sale["return_for"]) if sale.get("return_for") else None,
        "ingested_at": ctx.ingested_at,
    }  # fmt: skip
    if status == "VOIDED":
        return [build(what, **fields), void_of(fields, what)]
    return [build(what, **fields)]


def version(sale: dict[str, Any]) -> int:
    return int(sale.get("version") or 0)
