"""Square Orders API (``POST /v2/orders/search``) orders to tickets.

Square sends money as ``{"amount": <int, smallest denomination>, "currency": "USD"}``. A refund is a separate
*return order* whose ``returns[].source_order_id`` names the sale; it becomes a REFUND ticket. Its refunds name
the sale's tender by ``tender_id`` only; the poller attaches the sale's tenders as ``source_tenders``
(``[{"id", "type"}]``) so that a cash refund is CASH (OTHER when the sale cannot be found). A CANCELED order
is published as its SALE plus a VOID that reverses it (the pair sums to zero), if anything was rung up.
OPEN and DRAFT orders are not tickets yet.
"""

from __future__ import annotations

from typing import Any

from producers.pos.common import MapContext, MappingError, as_int, build, merge_payments, parse_time, void_of
from schemas.models import Channel, PaymentMethod, PosTicket, TicketKind, TicketLine, reversed_amounts

VENDOR = "square"

_TENDERS = {
    "CASH": PaymentMethod.CASH,
    "CARD": PaymentMethod.CARD,
    "THIRD_PARTY_CARD": PaymentMethod.CARD,
    "SQUARE_GIFT_CARD": PaymentMethod.GIFT_CARD,
    "WALLET": PaymentMethod.MOBILE,
}


def ticket_id(order_id: str) -> str:
    return f"{VENDOR}:{order_id}"


def _money(obj: Any, what: str) -> int:
    if obj is None:
        return 0
    if not isinstance(obj, dict):
        raise MappingError(f"{what} is not a Money object")
    return as_int(obj.get("amount", 0), what)


def _currency(order: dict[str, Any]) -> str:
    for key in ("total_money", "return_amounts"):
        money = order.get(key) or {}
        if key == "return_amounts":
            money = money.get("total_money") or {}
        if money.get("currency"):
            return str(money["currency"])
    raise MappingError(f"square order {order.get('id')}: no currency on total_money")


def _channel(order: dict[str, Any]) -> Channel:
    for f in order.get("fulfillments") or ():
        if f.get("type") in ("DELIVERY", "SHIPMENT"):
            return Channel.DELIVERY
    name = ((order.get("source") or {}).get("name") or "").lower()
    if not name or "point of sale" in name or name in ("square pos", "pos"):
        return Channel.IN_STORE
    return Channel.ONLINE


def _lines(items: list[dict[str, Any]], ctx: MapContext, what: str) -> tuple[TicketLine, ...]:
    lines = []
    for i, item in enumerate(items):
        where = f"{what} line {i}"
        try:
            qty = float(item.get("quantity", "1"))
        except ValueError:
            raise MappingError(f"{where}: quantity {item.get('quantity')!r} is not a number") from None
        total = _money(item.get("total_money"), f"{where} total_money")
        tax = _money(item.get("total_tax_money"), f"{where} total_tax_money")
        name = item.get("name")
        if item.get("variation_name"):
            name = f"{name} ({item['variation_name']})" if name else item["variation_name"]
        sku = item.get("catalog_object_id") or item.get("uid") or f"line-{i}"
        lines.append(
            TicketLine(
                sku=str(sku),
                description=name,
                quantity=qty,
                unit_price=_money(item.get("base_price_money"), f"{where} base_price_money"),
                discount_amount=_money(item.get("total_discount_money"), f"{where} total_discount_money"),
                net_amount=total - tax,
                category=ctx.category(item.get("catalog_object_id"), item.get("uid")),
            )
        )
    return tuple(lines)


def _method(tender_type: Any, ctx: MapContext) -> PaymentMethod:
    return ctx.payment_override(tender_type) or _TENDERS.get(str(tender_type), PaymentMethod.OTHER)


def _tenders(order: dict[str, Any], ctx: MapContext) -> list[tuple[PaymentMethod, int]]:
    out = []
    for t in order.get("tenders") or ():
        if t.get("type") == "NO_SALE":
            continue
        out.append(
            (
                _method(t.get("type"), ctx),
                _money(t.get("amount_money"), f"square order {order.get('id')} tender amount"),
            )
        )
    return out


def map_order(order: dict[str, Any], ctx: MapContext) -> list[PosTicket]:
    """One Square order as tickets: a SALE, a REFUND (return order) or a VOID (canceled order)."""
    oid = order.get("id")
    if not oid:
        raise MappingError("square order without an id")
    what = f"square order {oid}"
    state = order.get("state")
    if state not in ("COMPLETED", "CANCELED"):
        return []
    currency = _currency(order)
    store = ctx.store(order.get("location_id"), what)
    occurred = parse_time(order.get("closed_at") or order.get("updated_at") or order.get("created_at"), what)
    returns = order.get("returns") or []
    common: dict[str, Any] = {
        "source": ctx.source, "store_id": store, "tenant_id": ctx.tenant_id, "currency": currency,
        "channel": _channel(order), "ingested_at": ctx.ingested_at, "occurred_at": occurred,
    }  # fmt: skip

    if returns:
        # A return order: the refunded lines and the money sent back, as a REFUND of the source order.
        source_ids = {r.get("source_order_id") for r in returns if r.get("source_order_id")}
        if len(source_ids) != 1:
            raise MappingError(f"{what}: a return order must name exactly one source_order_id, got {source_ids}")
        amounts = order.get("return_amounts") or {}
        total = _money(amounts.get("total_money"), f"{what} return_amounts.total_money")
        tax = _money(amounts.get("tax_money"), f"{what} return_amounts.tax_money")
        discount = _money(amounts.get("discount_money"), f"{what} return_amounts.discount_money")
        tip = _money(amounts.get("tip_money"), f"{what} return_amounts.tip_money")
        net = total - tax - tip
        lines = _lines([li for r in returns for li in r.get("return_line_items") or ()], ctx, what)
        # A Refund names the sale's tender by id only; the poller attaches the sale's tenders (source_tenders).
        source_types = {t.get("id"): t.get("type") for t in order.get("source_tenders") or ()}
        refunded = [
            (_method(source_types.get(r.get("tender_id")), ctx), _money(r.get("amount_money"), what))
            for r in order.get("refunds") or ()
            if r.get("status") in (None, "APPROVED", "COMPLETED", "PENDING")
        ]
        if not refunded and order.get("tenders"):
            refunded = _tenders(order, ctx)
        fields = {
            **common, "ticket_id": ticket_id(oid), "kind": TicketKind.REFUND,
            "gross_amount": net + discount, "net_amount": net, "tax_amount": tax, "discount_amount": discount,
            "payments": merge_payments(refunded), "lines": lines,
            "original_ticket_id": ticket_id(next(iter(source_ids))),
        }  # fmt: skip
        return [build(what, **reversed_amounts(fields))]

    total = _money(order.get("total_money"), f"{what} total_money")
    tax = _money(order.get("total_tax_money"), f"{what} total_tax_money")
    discount = _money(order.get("total_discount_money"), f"{what} total_discount_money")
    tip = _money(order.get("total_tip_money"), f"{what} total_tip_money")
    service = _money(order.get("total_service_charge_money"), f"{what} total_service_charge_money")
    net = total - tax - tip - service
    sale = {
        **common, "ticket_id": ticket_id(oid), "kind": TicketKind.SALE,
        "gross_amount": net + discount, "net_amount": net, "tax_amount": tax, "discount_amount": discount,
        "payments": merge_payments(_tenders(order, ctx)), "lines": _lines(order.get("line_items") or [], ctx, what),
    }  # fmt: skip
    if state == "CANCELED":
        if not sale["lines"]:
            return []
        return [build(what, **sale), void_of(sale, what)]
    return [build(what, **sale)]


def updated_at(order: dict[str, Any]) -> str:
    return str(order.get("updated_at") or "")
