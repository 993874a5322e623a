"""Shopify GraphQL Admin API orders (``orders`` query or a bulk operation, see vendors.ShopifyAdapter) to tickets.

The order node carries its line items, transactions and refunds (with their line items and transactions): one
query, no request per order. Money comes as ``MoneyBag`` objects; tillflow reads ``shopMoney`` (the shop's
currency, ``currencyCode``). ``sourceName`` ``pos`` is a sale in a shop (IN_STORE); ``web`` and apps are ONLINE,
DELIVERY when the order has shipping lines. Each refund becomes a REFUND ticket; a cancelled order without
refunds is published as its SALE plus a VOID. Ids are GraphQL global ids (``gid://shopify/Order/123``); tickets
and the store map use their numeric tail (the legacy resource id), as the REST API did.
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


def legacy_id(gid: Any) -> str:
    """``gid://shopify/Order/820982911946154501`` -> ``820982911946154501`` (a plain id is kept as it is)."""
    text = str(gid or "")
    return text.rsplit("/", 1)[-1]


def ticket_id(order_id: Any) -> str:
    return f"{VENDOR}:{legacy_id(order_id)}"


def nodes(connection: Any) -> list[dict[str, Any]]:
    """The items of a connection (``{"nodes": [...]}`` or ``{"edges": [{"node"}]}``) or of a plain list."""
    if isinstance(connection, list):
        return connection
    if not isinstance(connection, dict):
        return []
    if "nodes" in connection:
        return list(connection["nodes"] or [])
    return [e["node"] for e in connection.get("edges") or [] if e.get("node")]


def money(bag: Any, currency: str, what: str) -> int:
    """A ``MoneyBag``'s shop amount in minor units; a missing bag is zero (Shopify leaves empty bags out)."""
    if bag is None:
        return 0
    amount = (bag.get("shopMoney") or {}).get("amount") if isinstance(bag, dict) else None
    return minor_units(amount, currency, what)


def _channel(order: dict[str, Any]) -> Channel:
    if order.get("sourceName") == "pos":
        return Channel.IN_STORE
    if nodes(order.get("shippingLines")):
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
        kind = str(tx.get("kind") or "").upper()
        if str(tx.get("status") or "SUCCESS").upper() != "SUCCESS" or kind not in kinds:
            continue
        amount = money(tx.get("amountSet"), currency, f"{what} transaction {legacy_id(tx.get('id'))} amountSet")
        if kind == "CHANGE":
            amount = -amount
        out.append((_gateway(tx.get("gateway"), ctx), amount))
    return out


def _line(
    item: dict[str, Any], currency: str, ctx: MapContext, what: str, taxes_included: bool, qty: float | None = None
) -> TicketLine:
    where = f"{what} lineItem {legacy_id(item.get('id'))}"
    full_qty = float(item.get("quantity") or 1)
    quantity = float(qty if qty is not None else full_qty)
    price = money(item.get("originalUnitPriceSet"), currency, f"{where} originalUnitPriceSet")
    allocations = item.get("discountAllocations")
    if allocations:
        discount = sum(money(a.get("allocatedAmountSet"), currency, f"{where} discount") for a in allocations)
    else:
        discount = money(item.get("totalDiscountSet"), currency, f"{where} totalDiscountSet")
    tax = sum(money(t.get("priceSet"), currency, f"{where} tax") for t in item.get("taxLines") or ())
    if quantity != full_qty and full_qty:  # a partial refund of the line
        discount = round(discount * quantity / full_qty)
        tax = round(tax * quantity / full_qty)
    net = round(price * quantity) - discount
    if taxes_included:
        net -= tax
    variant = legacy_id((item.get("variant") or {}).get("id")) or None
    product = legacy_id((item.get("product") or {}).get("id")) or None
    return TicketLine(
        sku=str(item.get("sku") or variant or legacy_id(item.get("id"))),
        description=item.get("title") or item.get("name"),
        quantity=quantity,
        unit_price=price,
        discount_amount=discount,
        net_amount=net,
        category=ctx.category(product, variant, item.get("sku")),
    )


def map_order(order: dict[str, Any], ctx: MapContext) -> list[PosTicket]:
    """One Shopify order node as its SALE, one REFUND per refund, and a VOID when cancelled without refunds."""
    oid = legacy_id(order.get("id"))
    if not oid:
        raise MappingError("shopify order without an id")
    what = f"shopify order {oid}"
    currency = order.get("currencyCode")
    if not currency:
        raise MappingError(f"{what}: no currencyCode")
    location = (order.get("retailLocation") or {}).get("id")
    store = ctx.store(legacy_id(location) if location else None, what)
    taxes_included = bool(order.get("taxesIncluded"))
    total = money(order.get("totalPriceSet"), currency, f"{what} totalPriceSet")
    tax = money(order.get("totalTaxSet"), currency, f"{what} totalTaxSet")
    discount = money(order.get("totalDiscountsSet"), currency, f"{what} totalDiscountsSet")
    tip = money(order.get("totalTipReceivedSet"), currency, f"{what} totalTipReceivedSet")
    shipping = money(order.get("totalShippingPriceSet"), currency, f"{what} totalShippingPriceSet")
    net = total - tax - tip - shipping
    txs = nodes(order.get("transactions"))
    common: dict[str, Any] = {
        "source": ctx.source, "store_id": store, "tenant_id": ctx.tenant_id, "currency": currency,
        "channel": _channel(order), "ingested_at": ctx.ingested_at,
    }  # fmt: skip
    sale = {
        **common, "ticket_id": ticket_id(oid), "kind": TicketKind.SALE,
        "occurred_at": parse_time(order.get("processedAt") or order.get("createdAt"), f"{what} processedAt"),
        "gross_amount": net + discount, "net_amount": net, "tax_amount": tax, "discount_amount": discount,
        "payments": merge_payments(_transactions(txs, ("SALE", "CAPTURE", "CHANGE"), currency, ctx, what)),
        "lines": tuple(_line(li, currency, ctx, what, taxes_included) for li in nodes(order.get("lineItems"))),
    }  # fmt: skip
    tickets = [build(what, **sale)]
    refunds = nodes(order.get("refunds"))
    for refund in refunds:
        rid = legacy_id(refund.get("id"))
        rwhat = f"{what} refund {rid}"
        if ((refund.get("refundLineItems") or {}).get("pageInfo") or {}).get("hasNextPage"):
            raise MappingError(f"{rwhat}: more refund lines than one query reads; backfill the order's day (a bulk "
                               "operation reads it whole)")  # fmt: skip
        lines = []
        r_net = r_tax = r_disc = 0
        for rli in nodes(refund.get("refundLineItems")):
            item = rli.get("lineItem") or {}
            qty = float(rli.get("quantity", 0))
            line_tax = money(rli.get("totalTaxSet"), currency, f"{rwhat} totalTaxSet")
            subtotal = money(rli.get("subtotalSet"), currency, f"{rwhat} subtotalSet")
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
        refund_txs = _transactions(nodes(refund.get("transactions")), ("REFUND",), currency, ctx, rwhat)
        if not lines and refund_txs:  # an amount-only refund (no items returned)
            r_net = sum(a for _, a in refund_txs)
        tickets.append(build(rwhat, **{
            **common, "ticket_id": f"{ticket_id(oid)}:refund:{rid}", "kind": TicketKind.REFUND,
            "occurred_at": parse_time(refund.get("createdAt"), f"{rwhat} createdAt"),
            "gross_amount": -(r_net + r_disc), "net_amount": -r_net, "tax_amount": -r_tax, "discount_amount": -r_disc,
            "payments": merge_payments((m, -a) for m, a in refund_txs), "lines": tuple(lines),
            "original_ticket_id": ticket_id(oid),
        }))  # fmt: skip
    if order.get("cancelledAt") and not refunds:
        void = {**sale, "occurred_at": parse_time(order["cancelledAt"], f"{what} cancelledAt")}
        tickets.append(void_of(void, what))
    return tickets


def updated_at(order: dict[str, Any]) -> str:
    return str(order.get("updatedAt") or "")
