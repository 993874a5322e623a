"""Clover orders (``GET /v3/merchants/<mId>/orders?expand=lineItems,lineItems.item.categories,payments.tender,...``)
to tickets.

Clover sends money as integers in cents, ``total`` tax-inclusive; line ``price`` is per unit, and ``unitQty``
(thousandths) is set for items sold by weight or measure. A discount is an ``amount`` (negative cents) or a
``percentage``. Each element of ``refunds`` becomes a REFUND ticket; an order whose payments were all voided
is published as its SALE plus a VOID; open (unpaid) orders are not tickets yet. The merchant id is the
location: Clover orders do not carry it, so the poller passes the merchant being polled.
"""

from __future__ import annotations

from typing import Any

from producers.pos.common import (
    MapContext,
    MappingError,
    as_int,
    build,
    merge_payments,
    method_from_name,
    parse_time,
    void_of,
)
from schemas.models import Channel, PaymentMethod, PosTicket, TicketKind, TicketLine

VENDOR = "clover"

_TENDERS = {
    "com.clover.tender.cash": PaymentMethod.CASH,
    "com.clover.tender.credit_card": PaymentMethod.CARD,
    "com.clover.tender.debit_card": PaymentMethod.CARD,
    "com.clover.tender.external_payment": PaymentMethod.OTHER,
    "com.clover.tender.external_gift_card": PaymentMethod.GIFT_CARD,
    "com.clover.tender.check": PaymentMethod.OTHER,
}


def ticket_id(order_id: str) -> str:
    return f"{VENDOR}:{order_id}"


def _elements(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict):
        return list(obj.get("elements") or ())
    return list(obj or ())


def _tender(payment: dict[str, Any], ctx: MapContext) -> PaymentMethod:
    tender = payment.get("tender") or {}
    override = ctx.payment_override(tender.get("id"), tender.get("labelKey"), tender.get("label"))
    if override:
        return override
    return _TENDERS.get(str(tender.get("labelKey"))) or method_from_name(tender.get("label"))


def _discount(d: dict[str, Any], base: int, what: str) -> int:
    if d.get("amount") is not None:
        return abs(as_int(d["amount"], f"{what} discount amount"))
    if d.get("percentage") is not None:
        return round(base * float(d["percentage"]) / 100)
    return 0


def map_order(order: dict[str, Any], ctx: MapContext, merchant_id: str) -> list[PosTicket]:
    """One Clover order as its SALE, one REFUND per refund, and a VOID when every payment was voided."""
    oid = order.get("id")
    if not oid:
        raise MappingError("clover order without an id")
    what = f"clover order {oid}"
    payments = _elements(order.get("payments"))
    ok = [p for p in payments if p.get("result", "SUCCESS") == "SUCCESS"]
    voided = [p for p in payments if p.get("result") == "VOIDED"]
    if not ok and not voided:
        return []  # open or unpaid: not a ticket yet
    currency = order.get("currency") or ctx.currency
    if not currency:
        raise MappingError(f"{what}: no currency")
    store = ctx.store(merchant_id, what)
    lines = []
    line_discounts = 0
    for li in _elements(order.get("lineItems")):
        if li.get("exchanged"):
            continue
        where = f"{what} line item {li.get('id')}"
        price = as_int(li.get("price", 0), f"{where} price")
        qty = as_int(li["unitQty"], f"{where} unitQty") / 1000 if li.get("unitQty") else 1.0
        base = round(price * qty)
        disc = sum(_discount(d, base, where) for d in _elements(li.get("discounts")))
        line_discounts += disc
        item = li.get("item") or {}
        cats = _elements(item.get("categories"))
        lines.append(
            TicketLine(
                sku=str(li.get("itemCode") or item.get("id") or li.get("id")),
                description=li.get("name"),
                quantity=qty,
                unit_price=price,
                discount_amount=disc,
                net_amount=base - disc,
                category=(cats[0].get("name") if cats else None) or ctx.category(item.get("id"), li.get("itemCode")),
            )
        )
    subtotal = sum(ln.net_amount for ln in lines)
    order_discounts = sum(_discount(d, subtotal, what) for d in _elements(order.get("discounts")))
    counted = ok or voided
    tax = sum(as_int(p.get("taxAmount", 0), f"{what} payment taxAmount") for p in counted)
    total = as_int(order.get("total", 0), f"{what} total")
    net = total - tax
    discount = line_discounts + order_discounts
    device = (order.get("device") or {}).get("id")
    common: dict[str, Any] = {
        "source": ctx.source, "store_id": store, "tenant_id": ctx.tenant_id, "currency": currency,
        "terminal_id": device, "channel": Channel.IN_STORE, "ingested_at": ctx.ingested_at,
    }  # fmt: skip
    sale = {
        **common, "ticket_id": ticket_id(oid), "kind": TicketKind.SALE,
        "occurred_at": parse_time(order.get("clientCreatedTime") or order.get("createdTime"), f"{what} createdTime"),
        "gross_amount": net + discount, "net_amount": net, "tax_amount": tax, "discount_amount": discount,
        "payments": merge_payments(
            (_tender(p, ctx), as_int(p.get("amount", 0), f"{what} payment amount")) for p in counted
        ),
        "lines": tuple(lines),
    }  # fmt: skip
    tickets = [build(what, **sale)]
    if not ok:
        tickets.append(void_of(sale, what))
        return tickets
    by_payment = {p.get("id"): p for p in payments}
    for refund in _elements(order.get("refunds")):
        rid = refund.get("id")
        rwhat = f"{what} refund {rid}"
        amount = as_int(refund.get("amount", 0), f"{rwhat} amount")
        r_tax = as_int(refund.get("taxAmount", 0), f"{rwhat} taxAmount")
        r_tip = as_int(refund.get("tipAmount", 0), f"{rwhat} tipAmount")
        paid = by_payment.get((refund.get("payment") or {}).get("id"), {})
        r_net = amount - r_tax - r_tip
        tickets.append(build(rwhat, **{
            **common, "ticket_id": f"{VENDOR}:refund:{rid}", "kind": TicketKind.REFUND,
            "occurred_at": parse_time(refund.get("createdTime"), f"{rwhat} createdTime"),
            "gross_amount": -r_net, "net_amount": -r_net, "tax_amount": -r_tax, "discount_amount": 0,
            "payments": merge_payments([(_tender(paid, ctx), -amount)]), "original_ticket_id": ticket_id(oid),
        }))  # fmt: skip
    return tickets


def time_of(order: dict[str, Any], field: str) -> int:
    """An epoch-milliseconds field of an order (``modifiedTime``, ``createdTime``); 0 if absent."""
    return int(order.get(field) or 0)
