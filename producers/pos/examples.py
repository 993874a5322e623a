"""Example vendor payloads in each API's documented shape, for tests, the local vendor stand-ins and bench/.

Every example carries the customer fields the vendors really send (names, e-mails, phones, addresses, card
holder names) so that tests can prove the mappings never pass them on.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def square_order(n: int, at: datetime, location: str = "L8RY5ZZ0T8RZM") -> dict[str, Any]:
    """A COMPLETED Square order: 2 x latte with a 10% discount, 1 muffin, 8.5% additive tax, card + cash."""
    m = lambda amount: {"amount": amount, "currency": "USD"}  # noqa: E731
    return {
        "id": f"SQ{n:06d}ORDER",
        "location_id": location,
        "source": {"name": "Point of Sale"},
        "customer_id": "JDKYHBWT1D4F8MFH63DBMEN8Y4",
        "line_items": [
            {
                "uid": f"li-{n}-1", "catalog_object_id": "VAR-LATTE-L", "catalog_version": 1, "name": "Latte",
                "variation_name": "Large", "quantity": "2", "base_price_money": m(450),
                "gross_sales_money": m(900), "total_discount_money": m(90), "total_tax_money": m(69),
                "total_money": m(879), "variation_total_price_money": m(900),
            },
            {
                "uid": f"li-{n}-2", "catalog_object_id": "VAR-MUFFIN", "name": "Blueberry muffin", "quantity": "1",
                "base_price_money": m(325), "gross_sales_money": m(325), "total_discount_money": m(0),
                "total_tax_money": m(28), "total_money": m(353),
            },
        ],
        "taxes": [{"uid": "tax-1", "name": "Sales tax", "percentage": "8.5", "type": "ADDITIVE", "scope": "ORDER"}],
        "discounts": [{"uid": "d-1", "name": "Latte 10%", "percentage": "10", "scope": "LINE_ITEM"}],
        "total_money": m(1232), "total_tax_money": m(97), "total_discount_money": m(90), "total_tip_money": m(0),
        "total_service_charge_money": m(0),
        "tenders": [
            {
                "id": f"T{n}A", "location_id": location, "type": "CARD", "amount_money": m(1000),
                "customer_id": "JDKYHBWT1D4F8MFH63DBMEN8Y4",
                "card_details": {"status": "CAPTURED", "entry_method": "EMV",
                                 "card": {"card_brand": "VISA", "last_4": "1111", "cardholder_name": "Ada Lovelace"}},
            },
            {"id": f"T{n}B", "location_id": location, "type": "CASH", "amount_money": m(232),
             "cash_details": {"buyer_tendered_money": m(300), "change_back_money": m(68)}},
        ],
        "fulfillments": [],
        "state": "COMPLETED",
        "version": 4,
        "created_at": _iso(at - timedelta(minutes=3)),
        "updated_at": _iso(at),
        "closed_at": _iso(at - timedelta(minutes=1)),
    }  # fmt: skip


def square_return_order(n: int, source_order_id: str, at: datetime, location: str = "L8RY5ZZ0T8RZM") -> dict[str, Any]:
    """The return order Square creates when one muffin of ``source_order_id`` (a :func:`square_order`) is refunded
    in cash. Its refund names the sale's cash tender by id only: Square's Refund object has no tender type."""
    m = lambda amount: {"amount": amount, "currency": "USD"}  # noqa: E731
    digits = source_order_id[2:8]
    cash_tender = f"T{int(digits)}B" if digits.isdigit() else "T0B"  # square_order(k)'s cash tender
    return {
        "id": f"SQ{n:06d}RETURN",
        "location_id": location,
        "source": {"name": "Point of Sale"},
        "customer_id": "JDKYHBWT1D4F8MFH63DBMEN8Y4",
        "returns": [{
            "uid": f"ret-{n}", "source_order_id": source_order_id,
            "return_line_items": [{
                "uid": f"rli-{n}", "source_line_item_uid": "li-x-2", "catalog_object_id": "VAR-MUFFIN",
                "name": "Blueberry muffin", "quantity": "1", "base_price_money": m(325),
                "gross_return_money": m(325), "total_tax_money": m(28), "total_discount_money": m(0),
                "total_money": m(353),
            }],
        }],
        "return_amounts": {"total_money": m(353), "tax_money": m(28), "discount_money": m(0), "tip_money": m(0),
                           "service_charge_money": m(0)},
        "refunds": [{"id": f"R{n}", "location_id": location, "tender_id": cash_tender, "reason": "Stale",
                     "amount_money": m(353), "status": "APPROVED"}],
        "tenders": [],
        "state": "COMPLETED",
        "version": 1,
        "created_at": _iso(at), "updated_at": _iso(at), "closed_at": _iso(at),
    }  # fmt: skip


def _bag(amount: str, currency: str = "EUR") -> dict[str, Any]:
    """A Shopify GraphQL ``MoneyBag`` (shop and presentment money in the same currency here)."""
    money = {"amount": amount, "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


def _gid(kind: str, n: int) -> str:
    return f"gid://shopify/{kind}/{n}"


def shopify_order(n: int, at: datetime, location_id: int = 48752903, source_name: str = "pos") -> dict[str, Any]:
    """A paid Shopify POS order in EUR, taxes included: 2 mugs (one discounted 5.00) and a tote, card + cash,
    as the GraphQL Admin ``orders`` query returns the node (fields of vendors.SHOPIFY_ORDER_FIELDS), with its
    transactions: 40.00 on card, 20.00 cash, 4.00 change."""
    oid = 820982911946154500 + n
    order: dict[str, Any] = {
        "id": _gid("Order", oid), "legacyResourceId": str(oid), "name": f"#{1000 + n}",
        "createdAt": _iso(at - timedelta(minutes=2)), "processedAt": _iso(at - timedelta(minutes=2)),
        "updatedAt": _iso(at), "cancelledAt": None, "currencyCode": "EUR", "sourceName": source_name,
        "taxesIncluded": True, "retailLocation": {"id": _gid("Location", location_id)} if location_id else None,
        "totalPriceSet": _bag("56.00"), "totalTaxSet": _bag("9.33"), "totalDiscountsSet": _bag("5.00"),
        "totalTipReceivedSet": _bag("0.00"), "totalShippingPriceSet": _bag("0.00"),
        "shippingLines": {"nodes": []},
        "lineItems": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": [
            {"id": _gid("LineItem", 466157049 + n * 10), "sku": "MUG-BLK", "title": "Black mug", "name": "Black mug",
             "quantity": 2, "variant": {"id": _gid("ProductVariant", 39072856)},
             "product": {"id": _gid("Product", 632910392)}, "originalUnitPriceSet": _bag("18.00"),
             "totalDiscountSet": _bag("5.00"),
             "discountAllocations": [{"allocatedAmountSet": _bag("5.00")}],
             "taxLines": [{"priceSet": _bag("5.17"), "rate": 0.2, "title": "TVA"}]},
            {"id": _gid("LineItem", 466157050 + n * 10), "sku": "TOTE-01", "title": "Canvas tote",
             "name": "Canvas tote", "quantity": 1, "variant": {"id": _gid("ProductVariant", 49148385)},
             "product": {"id": _gid("Product", 632910393)}, "originalUnitPriceSet": _bag("25.00"),
             "totalDiscountSet": _bag("0.00"), "discountAllocations": [],
             "taxLines": [{"priceSet": _bag("4.16"), "rate": 0.2, "title": "TVA"}]},
        ]},
        "refunds": [],
    }  # fmt: skip
    order["transactions"] = shopify_transactions(order)
    return order


def shopify_transactions(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``transactions`` of :func:`shopify_order` (GraphQL ``OrderTransaction``: kind and status in capitals)."""
    oid = int(order["legacyResourceId"])
    return [
        {"id": _gid("OrderTransaction", oid * 10 + 1), "kind": "SALE", "status": "SUCCESS",
         "gateway": "shopify_payments", "amountSet": _bag("40.00")},
        {"id": _gid("OrderTransaction", oid * 10 + 2), "kind": "SALE", "status": "SUCCESS", "gateway": "cash",
         "amountSet": _bag("20.00")},
        {"id": _gid("OrderTransaction", oid * 10 + 3), "kind": "CHANGE", "status": "SUCCESS", "gateway": "cash",
         "amountSet": _bag("4.00")},
    ]  # fmt: skip


def shopify_refund(order: dict[str, Any], refund_id: int, at: datetime) -> dict[str, Any]:
    """One tote returned and refunded in cash (taxes included: subtotal 25.00 of which 4.16 tax), as a GraphQL
    ``Refund`` with its ``refundLineItems`` and ``transactions`` connections."""
    tote = order["lineItems"]["nodes"][1]
    return {
        "id": _gid("Refund", refund_id), "createdAt": _iso(at), "updatedAt": _iso(at), "note": "wrong colour",
        "refundLineItems": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": [
            {"id": _gid("RefundLineItem", refund_id + 1), "quantity": 1, "restockType": "RETURN",
             "subtotalSet": _bag("25.00"), "totalTaxSet": _bag("4.16"), "lineItem": copy.deepcopy(tote)}]},
        "transactions": {"nodes": [
            {"id": _gid("OrderTransaction", refund_id + 2), "kind": "REFUND", "status": "SUCCESS", "gateway": "cash",
             "amountSet": _bag("25.00")}]},
    }  # fmt: skip


LIGHTSPEED_OUTLET = "0adaafb3-6583-11e5-fb60-d3e7e1dbd1a1"


def lightspeed_sale(n: int, at: datetime, version: int, outlet: str = LIGHTSPEED_OUTLET) -> dict[str, Any]:
    """A CLOSED X-Series sale (prices tax-exclusive, 15% GST): 3 x socks with 1.00 off each, 1 beanie; cash."""
    return {
        "id": f"5e9b7a3c-0000-4000-8000-{n:012d}", "outlet_id": outlet,
        "register_id": "0adaafb3-6583-11e5-fb60-d3e7e1f2f0a1", "user_id": "0adaafb3-6583-11e5-fb60-d3e7e1e5b8f3",
        "customer_id": "0adaafb3-6583-11e5-fb60-d3e7e1d7b4c2",
        "customer": {"first_name": "Kate", "last_name": "Sheppard", "email": "kate@example.org"},
        "invoice_number": str(1000 + n), "receipt_number": str(1000 + n), "source": "USER", "status": "CLOSED",
        "state": "closed", "note": "", "short_code": "k2lq9z", "return_for": None,
        "sale_date": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "created_at": at.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "updated_at": at.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "deleted_at": None, "version": version,
        "total_price": 42.6087, "total_tax": 6.3913, "total_loyalty": 0,
        "line_items": [
            {"id": f"li-{n}-1", "product_id": "0adaafb3-6583-11e5-fb60-d3e7e1c0socks", "quantity": 3,
             "price": 7.826087, "price_total": 23.478261, "discount": 0.869565, "discount_total": 2.608696,
             "tax": 1.173913, "tax_total": 3.521739, "total_price": 23.478261, "total_tax": 3.521739,
             "is_return": False, "status": "CONFIRMED", "sequence": 0},
            {"id": f"li-{n}-2", "product_id": "0adaafb3-6583-11e5-fb60-d3e7e1beanie", "quantity": 1,
             "price": 19.130435, "price_total": 19.130435, "discount": 0, "discount_total": 0,
             "tax": 2.869565, "tax_total": 2.869565, "total_price": 19.130435, "total_tax": 2.869565,
             "is_return": False, "status": "CONFIRMED", "sequence": 1},
        ],
        "payments": [{"id": f"pay-{n}", "register_id": "0adaafb3-6583-11e5-fb60-d3e7e1f2f0a1",
                      "retailer_payment_type_id": "0adaafb3-6583-11e5-fb60-d3e7e1cash", "payment_type_id": "1",
                      "name": "Cash", "amount": 49.0, "payment_date": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "deleted_at": None}],
    }  # fmt: skip


def clover_order(n: int, at_ms: int) -> dict[str, Any]:
    """A paid Clover order in USD: a burger, 1.5 lb of coffee beans by weight, 10% order discount; card."""
    return {
        "href": f"https://api.clover.com/v3/merchants/MJ3ZB0FP6X2P1/orders/CLV{n:06d}", "id": f"CLV{n:06d}",
        "currency": "USD", "employee": {"id": "Q3YPK9TK4S3TE"}, "total": 2624, "paymentState": "PAID",
        "title": "", "note": "", "taxRemoved": False, "isVat": False, "state": "locked", "manualTransaction": False,
        "groupLineItems": True, "testMode": False, "createdTime": at_ms - 60_000, "clientCreatedTime": at_ms - 60_000,
        "modifiedTime": at_ms, "device": {"id": "8f0b3c5a-0000-4000-8000-c1a7e0d1e0aa"},
        "customers": {"elements": [{"id": "HX4M1Z8VJ2E3A", "firstName": "Grace", "lastName": "Hopper",
                                    "emailAddresses": {"elements": [{"emailAddress": "grace@example.com"}]}}]},
        "lineItems": {"elements": [
            {"id": f"LI{n}A", "item": {"id": "ITEMBURGER01"}, "name": "Burger", "price": 1200, "itemCode": "BRG-1",
             "printed": True, "isRevenue": True, "refunded": False, "exchanged": False,
             "taxRates": {"elements": [{"id": "TAX1", "name": "Sales", "rate": 800000}]}},
            {"id": f"LI{n}B",
             "item": {"id": "ITEMBEANS01", "categories": {"elements": [{"id": "C1", "name": "Coffee"}]}},
             "name": "Coffee beans", "price": 1000, "unitQty": 1500, "unitName": "lb", "itemCode": "BEAN-LB",
             "printed": True, "isRevenue": True, "refunded": False, "exchanged": False,
             "taxRates": {"elements": [{"id": "TAX1", "name": "Sales", "rate": 800000}]}},
        ]},
        "discounts": {"elements": [{"id": f"D{n}", "name": "10% off", "percentage": 10}]},
        "payments": {"elements": [
            {"id": f"PAY{n}", "order": {"id": f"CLV{n:06d}"}, "amount": 2624, "tipAmount": 0, "taxAmount": 194,
             "result": "SUCCESS", "createdTime": at_ms - 30_000,
             "tender": {"id": "TENDERCARD1", "labelKey": "com.clover.tender.credit_card", "label": "Credit Card"},
             "cardTransaction": {"cardType": "VISA", "last4": "1111", "first6": "411111", "cardholderName": "GRACE H",
                                 "type": "AUTH", "state": "CLOSED"}},
        ]},
        "refunds": {"elements": []},
    }  # fmt: skip


def clover_refund(order: dict[str, Any], refund_id: str, at_ms: int) -> dict[str, Any]:
    """A partial refund of the burger (12.00 less 10% = 10.80, plus 8% tax 0.86) to the card."""
    payment = order["payments"]["elements"][0]
    return {"id": refund_id, "orderRef": {"id": order["id"]}, "amount": 1166, "taxAmount": 86, "tipAmount": 0,
            "createdTime": at_ms, "payment": {"id": payment["id"]}}  # fmt: skip
