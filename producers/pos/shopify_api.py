"""Shopify GraphQL Admin API: the queries tillflow sends, cost-based throttling, bulk-operation output and the
API version support window. Pure functions, no I/O (the adapter in vendors.py sends the requests).

* ``orders`` by ``updated_at`` (a backfill: ``processed_at``) with cursor pagination; each order node carries its
  line items, transactions and refunds (their line items and transactions), so there is no request per order.
* Throttling: every answer carries ``extensions.cost`` (``requestedQueryCost``, ``actualQueryCost``,
  ``throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}``); the next query waits until the bucket
  holds its cost, and a ``THROTTLED`` error waits the same way before the query is sent again.
* Bulk operations (``bulkOperationRunQuery``) for long backfills: the result is JSONL where every node of a
  nested connection is its own line with ``__parentId``; :func:`assemble_bulk` puts the orders back together.
* Versions: quarterly releases (YYYY-01/04/07/10), each supported for 12 months after its release.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any, TypedDict

API_VERSION = "2026-10"
"""The stable Admin API version tillflow is written against (a test fails once it leaves the support window)."""
SUPPORT_MONTHS = 12
BULK_AFTER_DAYS = 7
"""A backfill window longer than this runs as a bulk operation instead of paged queries."""
ORDERS_PER_PAGE = 10
"""Orders per paged query: with the nested connections below its requested cost stays under Shopify's 1,000
points per query."""
LINES_PER_ORDER = 10
"""Line items read with the order (most tickets have fewer); an order with more reads the rest by itself."""
REFUNDS_PER_ORDER = 3
READ_ALL_ORDERS = "read_all_orders"
VISIBLE_DAYS_WITHOUT_READ_ALL_ORDERS = 60

_MONEY = "shopMoney { amount currencyCode }"
_LINE = (
    "id sku title name quantity variant { id } product { id } "
    f"originalUnitPriceSet {{ {_MONEY} }} totalDiscountSet {{ {_MONEY} }} "
    f"discountAllocations {{ allocatedAmountSet {{ {_MONEY} }} }} taxLines {{ rate title priceSet {{ {_MONEY} }} }}"
)
_TX = f"id kind status gateway amountSet {{ {_MONEY} }}"
_ORDER_SCALARS = (
    "id legacyResourceId name createdAt processedAt updatedAt cancelledAt currencyCode sourceName taxesIncluded "
    "retailLocation { id } "
    f"totalPriceSet {{ {_MONEY} }} totalTaxSet {{ {_MONEY} }} totalDiscountsSet {{ {_MONEY} }} "
    f"totalTipReceivedSet {{ {_MONEY} }} totalShippingPriceSet {{ {_MONEY} }}"
)


def order_fields(paged: bool = True) -> str:
    """The order node's selection. Paged queries bound every nested connection with ``first``; a bulk query
    must not (Shopify pages nested connections itself and writes their nodes as separate lines)."""
    if paged:
        return (
            f"{_ORDER_SCALARS} shippingLines(first: 1) {{ nodes {{ id }} }} "
            f"lineItems(first: {LINES_PER_ORDER}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {_LINE} }} }} "
            f"transactions(first: 10) {{ {_TX} }} "
            f"refunds(first: {REFUNDS_PER_ORDER}) {{ id createdAt updatedAt "
            f"refundLineItems(first: {LINES_PER_ORDER}) {{ pageInfo {{ hasNextPage endCursor }} "
            f"nodes {{ id quantity subtotalSet {{ {_MONEY} }} totalTaxSet {{ {_MONEY} }} lineItem {{ {_LINE} }} }} }} "
            f"transactions(first: 5) {{ nodes {{ {_TX} }} }} }}"
        )
    return (
        f"{_ORDER_SCALARS} shippingLines {{ edges {{ node {{ id }} }} }} "
        f"lineItems {{ edges {{ node {{ {_LINE} }} }} }} "
        f"transactions {{ {_TX} }} "
        f"refunds {{ id createdAt updatedAt "
        f"refundLineItems {{ edges {{ node {{ id quantity subtotalSet {{ {_MONEY} }} totalTaxSet {{ {_MONEY} }} "
        f"lineItem {{ {_LINE} }} }} }} }} transactions {{ edges {{ node {{ {_TX} }} }} }} }}"
    )


ORDERS_QUERY = (
    "query Orders($first: Int!, $after: String, $query: String, $sortKey: OrderSortKeys) { "
    "orders(first: $first, after: $after, query: $query, sortKey: $sortKey) { "
    f"pageInfo {{ hasNextPage endCursor }} nodes {{ {order_fields()} }} }} }}"
)
ORDER_QUERY = f"query Order($id: ID!) {{ order(id: $id) {{ {order_fields()} }} }}"
ORDER_LINES_QUERY = (
    "query OrderLines($id: ID!, $after: String) { order(id: $id) { "
    f"lineItems(first: 100, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {_LINE} }} }} }} }}"
)
ACCESS_SCOPES_QUERY = "query AccessScopes { currentAppInstallation { accessScopes { handle } } }"
BULK_RUN_MUTATION = (
    "mutation BulkRun($query: String!) { bulkOperationRunQuery(query: $query) { "
    "bulkOperation { id status } userErrors { field message } } }"
)
BULK_STATUS_QUERY = (
    "query BulkStatus($id: ID!) { node(id: $id) { ... on BulkOperation { "
    "id status errorCode objectCount url partialDataUrl } } }"
)


def search(field: str, start: str, end: str) -> str:
    """Shopify search syntax for ``start <= field < end`` (ISO times)."""
    return f"{field}:>='{start}' AND {field}:<'{end}'"


def bulk_orders_query(field: str, start: str, end: str) -> str:
    sort = field.upper()
    return (
        f'{{ orders(query: "{search(field, start, end)}", sortKey: {sort}) '
        f"{{ edges {{ node {{ {order_fields(paged=False)} }} }} }} }}"
    )


class ThrottleStatus(TypedDict):
    maximumAvailable: float
    currentlyAvailable: float
    restoreRate: float


def throttle_wait(cost: dict[str, Any] | None, next_cost: float) -> float:
    """Seconds to wait before a query of ``next_cost`` points, from the last answer's ``extensions.cost``."""
    if not cost:
        return 0.0
    status: ThrottleStatus | None = cost.get("throttleStatus")
    if not status:
        return 0.0
    missing = min(next_cost, float(status["maximumAvailable"])) - float(status["currentlyAvailable"])
    if missing <= 0:
        return 0.0
    return missing / max(float(status["restoreRate"]), 1e-9)


def throttled(body: dict[str, Any]) -> bool:
    return any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in body.get("errors") or ())


def release_date(version: str) -> date:
    year, month = version.split("-")
    return date(int(year), int(month), 1)


def supported_until(version: str) -> date:
    released = release_date(version)
    months = released.month - 1 + SUPPORT_MONTHS
    return date(released.year + months // 12, months % 12 + 1, 1)


def is_supported(version: str, today: date) -> bool:
    """A stable version is served from its release for 12 months; ``unstable`` is never for production."""
    try:
        return release_date(version) <= today < supported_until(version)
    except ValueError:
        return False


_CHILD = {"LineItem": "lineItems", "RefundLineItem": "refundLineItems", "ShippingLine": "shippingLines"}


def assemble_bulk(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Orders from a bulk operation's JSONL: a line with ``__parentId`` is a node of a nested connection and is
    put back under its parent (an order or a refund) as ``{"nodes": [...]}``; order as in the file."""
    orders: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for text in lines:
        if not text.strip():
            continue
        obj = json.loads(text)
        parent_id = obj.pop("__parentId", None)
        if parent_id is None:
            for refund in obj.get("refunds") or ():
                by_id[refund["id"]] = refund
            by_id[obj["id"]] = obj
            orders.append(obj)
            continue
        parent = by_id.get(parent_id)
        if parent is None:
            raise ValueError(f"bulk line {obj.get('id')} names parent {parent_id}, not seen before it")
        kind = str(obj.get("id", "")).split("/")[-2] if "/" in str(obj.get("id", "")) else ""
        key = _CHILD.get(kind) or ("transactions" if kind == "OrderTransaction" else None)
        if key is None:
            raise ValueError(f"bulk line {obj.get('id')}: unexpected node type under {parent_id}")
        holder = parent.get(key)
        if not isinstance(holder, dict) or "nodes" not in holder:
            holder = {"nodes": []}
            parent[key] = holder
        holder["nodes"].append(obj)
    return orders
