"""Each vendor API's request and page shapes: what to ask for, how to page, and where a sync stands.

A *position* is a JSON object with one entry per checkpoint key: an ISO time (the highest ``updated_at`` /
``modifiedTime`` acknowledged) or, for Lightspeed, the highest sale ``version``. The keys are ``all`` (Shopify,
Lightspeed), the Clover merchant id, or the Square location id. A *scope* is what one series of requests reads:
one key, or for Square a group of up to 10 locations that advance together, so a failure in one group never
moves the position of another.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests

from producers.pos import clover, lightspeed, shopify, shopify_api, square
from producers.pos.common import MapContext, MappingError, parse_time
from producers.pos.http import SourceUnavailable, TokenRequest, VendorClient
from producers.pos.source import SourceConfig
from schemas.models import PosTicket

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOVER_MAX_RANGE = timedelta(days=90)
SQUARE_VERSION = "2025-01-23"


@dataclass
class Page:
    """One page of vendor records and the position to save once its tickets are acknowledged."""

    scope: str
    records: list[dict[str, Any]]
    position: Any
    """The scope's new position value (ISO time or version)."""
    progress: float | None = None
    """Fraction of the requested time window covered so far, when known."""
    rejected: list[tuple[str, str]] = field(default_factory=list)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _fraction(ts: datetime | None, start: datetime, end: datetime) -> float | None:
    if ts is None or end <= start:
        return None
    return max(0.0, min(1.0, (ts - start) / (end - start)))


def start_time(position: dict[str, Any], scope: str, overlap: timedelta, since: datetime | None,
               default: datetime) -> datetime:  # fmt: skip
    """Where a time-based scope starts: ``since`` if given, else its checkpoint less the overlap, else default."""
    if since is not None:
        return since
    saved = position.get(scope)
    if saved:
        return parse_time(saved, "checkpoint") - overlap
    return default


class Adapter:
    """A vendor: base URL, auth header, token refresh request, paging and mapping."""

    vendor = ""
    time_based = True

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def base_url(self) -> str:
        raise NotImplementedError

    def auth_header(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def token_request(self, refresh_token: str, client_secret: str | None) -> TokenRequest:
        raise NotImplementedError

    def scopes(self) -> list[str]:
        return ["all"]

    def scope_keys(self, scope: str) -> list[str]:
        """The checkpoint keys that a scope's pages advance."""
        return [scope]

    def migrate(self, position: dict[str, Any]) -> dict[str, Any]:
        """A saved position in this version's keys (older versions kept other keys)."""
        return position

    def pages(self, client: VendorClient, scope: str, start: datetime | None, end: datetime,
              after: Any = None, backfill: bool = False) -> Iterator[Page]:  # fmt: skip
        """Records changed in [start, end); with ``backfill``, records *made* in [start, end) (whenever they
        were last changed), so that a sale refunded after the window is still found."""
        raise NotImplementedError

    def map(self, record: dict[str, Any], ctx: MapContext, scope: str) -> list[PosTicket]:
        raise NotImplementedError

    def record_id(self, record: dict[str, Any]) -> str:
        return f"{self.vendor}:{record.get('id')}"

    def keep(self, record: dict[str, Any]) -> bool:
        """Whether the source takes this record (Shopify: only the configured sales channels)."""
        return True

    def later(self, a: Any, b: Any) -> Any:
        """The later of two positions of one scope."""
        if a is None:
            return b
        if b is None:
            return a
        return b if parse_time(b, "position") > parse_time(a, "position") else a


class SquareAdapter(Adapter):
    vendor = "square"

    def base_url(self) -> str:
        return (self.cfg.base_url or "https://connect.squareup.com").rstrip("/")

    def auth_header(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Square-Version": SQUARE_VERSION}

    def token_request(self, refresh_token: str, client_secret: str | None) -> TokenRequest:
        body = {"client_id": self.cfg.auth.client_id or "", "grant_type": "refresh_token",
                "refresh_token": refresh_token}  # fmt: skip
        if client_secret:
            body["client_secret"] = client_secret
        return TokenRequest(self.cfg.auth.token_url or f"{self.base_url()}/oauth2/token", body, as_json=True)

    def scopes(self) -> list[str]:
        locations = sorted(self.cfg.stores)  # SearchOrders takes at most 10 location ids
        return [",".join(locations[i : i + 10]) for i in range(0, len(locations), 10)]

    def scope_keys(self, scope: str) -> list[str]:
        return scope.split(",")

    def migrate(self, position: dict[str, Any]) -> dict[str, Any]:
        """Before per-location checkpoints, one ``all`` time covered every location: each starts from it."""
        if "all" not in position:
            return position
        old = position.pop("all")
        for location in self.cfg.stores:
            position.setdefault(location, old)
        return position

    def pages(self, client: VendorClient, scope: str, start: datetime | None, end: datetime,
              after: Any = None, backfill: bool = False) -> Iterator[Page]:  # fmt: skip
        start = start or EPOCH
        # SearchOrders filters on one of created_at, updated_at, closed_at and must sort on the same field;
        # closed_at (the ticket's time) needs a state filter with closed states only, which this one is.
        field = "closed_at" if backfill else "updated_at"
        body: dict[str, Any] = {
            "location_ids": self.scope_keys(scope),
            "limit": self.cfg.page_size,
            "return_entries": False,
            "query": {
                "filter": {
                    "date_time_filter": {field: {"start_at": iso(start), "end_at": iso(end)}},
                    "state_filter": {"states": ["COMPLETED", "CANCELED"]},
                },
                "sort": {"sort_field": field.upper(), "sort_order": "ASC"},
            },
        }
        while True:
            data = client.request("POST", f"{self.base_url()}/v2/orders/search", json=body).json()
            orders = data.get("orders") or []
            last = max((o.get(field) for o in orders if o.get(field)), default=None)
            frac = _fraction(parse_time(last, field) if last else None, start, end)
            if backfill:  # Square's end_at is inclusive; the window is not
                orders = [o for o in orders if _in_window(o.get(field), start, end, field)]
            yield Page(scope, self.with_source_tenders(client, orders), last, frac)
            if not data.get("cursor"):
                break
            body["cursor"] = data["cursor"]

    def with_source_tenders(self, client: VendorClient, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return orders with ``source_tenders``: the id and type of their sale's tenders (a Refund names its
        tender by id only), from the same page or ``POST /v2/orders/batch-retrieve`` (100 ids a request)."""
        wanted = {r["source_order_id"] for o in orders for r in o.get("returns") or () if r.get("source_order_id")}
        if not wanted:
            return orders
        found = {o["id"]: o for o in orders if o.get("id") in wanted}
        missing = sorted(wanted - set(found))
        for i in range(0, len(missing), 100):
            body = {"order_ids": missing[i : i + 100]}
            data = client.request("POST", f"{self.base_url()}/v2/orders/batch-retrieve", json=body).json()
            found.update((o["id"], o) for o in data.get("orders") or () if o.get("id"))
        out = []
        for order in orders:
            sources = [found[r.get("source_order_id")] for r in order.get("returns") or ()
                       if r.get("source_order_id") in found]  # fmt: skip
            if sources:
                tenders = [{"id": t.get("id"), "type": t.get("type")} for s in sources for t in s.get("tenders") or ()]
                order = {**order, "source_tenders": tenders}
            out.append(order)
        return out

    def map(self, record: dict[str, Any], ctx: MapContext, scope: str) -> list[PosTicket]:
        return square.map_order(record, ctx)


class QueryTooCostly(SourceUnavailable):
    """Shopify refused a query whose requested cost exceeds the single-query maximum (MAX_COST_EXCEEDED)."""


class ShopifyAdapter(Adapter):
    """Shopify on the GraphQL Admin API only (REST Admin is legacy): paged ``orders`` queries, bulk operations for
    long backfills, cost-based throttling (producers/pos/shopify_api.py)."""

    vendor = "shopify"

    def __init__(self, cfg: SourceConfig) -> None:
        super().__init__(cfg)
        self.last_cost: dict[str, Any] | None = None
        self.warnings: list[str] = []
        if not shopify_api.is_supported(cfg.api_version, date.today()):
            self._warn(f"source {cfg.name}: Shopify API version {cfg.api_version} is outside its 12-month support "
                       f"window; Shopify answers with the oldest supported version instead (use "
                       f"{shopify_api.API_VERSION})")  # fmt: skip

    def _warn(self, text: str) -> None:
        log.warning("%s", text)
        self.warnings.append(text)

    def base_url(self) -> str:
        if self.cfg.base_url:
            return self.cfg.base_url.rstrip("/")
        if not self.cfg.shop:
            raise MappingError(f"source {self.cfg.name}: Shopify needs `shop` (the myshopify.com subdomain)")
        return f"https://{self.cfg.shop}.myshopify.com"

    def auth_header(self, token: str) -> dict[str, str]:
        return {"X-Shopify-Access-Token": token}

    def token_request(self, refresh_token: str, client_secret: str | None) -> TokenRequest:
        body = {"client_id": self.cfg.auth.client_id or "", "client_secret": client_secret or "",
                "grant_type": "refresh_token", "refresh_token": refresh_token}  # fmt: skip
        return TokenRequest(self.cfg.auth.token_url or f"{self.base_url()}/admin/oauth/access_token", body, False)

    def graphql(self, client: VendorClient, operation: str, query: str, variables: dict[str, Any],
                cost: float = 50.0) -> dict[str, Any]:  # fmt: skip
        """One GraphQL request: waits first if the last answer's bucket cannot hold ``cost``; a THROTTLED answer
        waits for the bucket and is sent again (up to the source's max_attempts)."""
        url = f"{self.base_url()}/admin/api/{self.cfg.api_version}/graphql.json"
        body = {"query": query, "variables": variables, "operationName": operation}
        for _ in range(self.cfg.max_attempts):
            client.wait(shopify_api.throttle_wait(self.last_cost, cost))
            answer: dict[str, Any] = client.request("POST", url, json=body).json()
            self.last_cost = (answer.get("extensions") or {}).get("cost") or self.last_cost
            if shopify_api.throttled(answer):
                requested = float((self.last_cost or {}).get("requestedQueryCost") or cost)
                cost = max(cost, requested)
                client.wait(max(shopify_api.throttle_wait(self.last_cost, cost), 0.5))
                continue
            if answer.get("errors"):
                messages = "; ".join(str(e.get("message")) for e in answer["errors"])
                codes = {(e.get("extensions") or {}).get("code") for e in answer["errors"]}
                if "MAX_COST_EXCEEDED" in codes:
                    raise QueryTooCostly(f"Shopify {operation}: {messages}")
                raise SourceUnavailable(f"Shopify {operation}: {messages}")
            data: dict[str, Any] = answer.get("data") or {}
            return data
        raise SourceUnavailable(f"Shopify {operation}: still throttled after {self.cfg.max_attempts} attempts")

    def check_history_access(self, client: VendorClient, start: datetime, now: datetime) -> None:
        """Without the read_all_orders scope Shopify shows only the last 60 days of orders: say so when a
        backfill reaches further back (the older orders would silently be missing)."""
        if now - start <= timedelta(days=shopify_api.VISIBLE_DAYS_WITHOUT_READ_ALL_ORDERS):
            return
        data = self.graphql(client, "AccessScopes", shopify_api.ACCESS_SCOPES_QUERY, {}, cost=2)
        scopes = {s.get("handle") for s in ((data.get("currentAppInstallation") or {}).get("accessScopes") or ())}
        if shopify_api.READ_ALL_ORDERS not in scopes:
            self._warn(f"source {self.cfg.name}: the app lacks the {shopify_api.READ_ALL_ORDERS} scope; Shopify "
                       f"shows only the last {shopify_api.VISIBLE_DAYS_WITHOUT_READ_ALL_ORDERS} days of orders, so "
                       f"the backfill from {iso(start)} misses older ones")  # fmt: skip

    def pages(self, client: VendorClient, scope: str, start: datetime | None, end: datetime,
              after: Any = None, backfill: bool = False) -> Iterator[Page]:  # fmt: skip
        start = start or EPOCH
        # A backfill filters on processed_at (the sale's time, the ticket's occurred_at), not updated_at.
        field = "processed_at" if backfill else "updated_at"
        if backfill:
            self.check_history_access(client, start, self.now())
            if end - start > timedelta(days=shopify_api.BULK_AFTER_DAYS):
                yield from self._bulk(client, scope, field, start, end)
                return
        cursor: str | None = None
        first = min(self.cfg.page_size, shopify_api.ORDERS_PER_PAGE)
        variables: dict[str, Any] = {"first": first, "query": shopify_api.search(field, iso(start), iso(end)),
                                     "sortKey": field.upper()}  # fmt: skip
        cost = 0.0
        while True:
            try:
                data = self.graphql(client, "Orders", shopify_api.ORDERS_QUERY, {**variables, "after": cursor},
                                    cost=cost or first * 70.0)  # fmt: skip
            except QueryTooCostly:
                if variables["first"] == 1:
                    raise
                variables["first"] = max(1, variables["first"] // 2)  # fewer orders per query, same cursor
                cost = 0.0
                continue
            cost = float((self.last_cost or {}).get("requestedQueryCost") or first * 70.0)
            conn = data.get("orders") or {}
            orders = [self.complete(client, o) for o in shopify.nodes(conn)]
            yield self._page(scope, orders, field, start, end)
            info = conn.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            cursor = info.get("endCursor")

    def _page(self, scope: str, orders: list[dict[str, Any]], field: str, start: datetime, end: datetime) -> Page:
        key = "processedAt" if field == "processed_at" else "updatedAt"
        kept = [o for o in orders if self.keep(o)]
        last = max((str(o[key]) for o in orders if o.get(key)), default=None)
        return Page(scope, kept, last, _fraction(parse_time(last, key) if last else None, start, end))

    def complete(self, client: VendorClient, order: dict[str, Any]) -> dict[str, Any]:
        """An order whose line items did not fit the page's query, with the rest of them (rare: > 25 lines)."""
        conn = order.get("lineItems") or {}
        info = conn.get("pageInfo") or {}
        while info.get("hasNextPage"):
            data = self.graphql(client, "OrderLines", shopify_api.ORDER_LINES_QUERY,
                                {"id": order["id"], "after": info.get("endCursor")}, cost=110)  # fmt: skip
            more = ((data.get("order") or {}).get("lineItems")) or {}
            conn = {"nodes": [*shopify.nodes(conn), *shopify.nodes(more)], "pageInfo": more.get("pageInfo") or {}}
            info = conn["pageInfo"]
        return {**order, "lineItems": conn} if conn else order

    def fetch_order(self, client: VendorClient, order_id: str) -> dict[str, Any] | None:
        """One order node by id (numeric or global), for webhooks; None when Shopify does not know it."""
        gid = order_id if str(order_id).startswith("gid://") else f"gid://shopify/Order/{order_id}"
        data = self.graphql(client, "Order", shopify_api.ORDER_QUERY, {"id": gid}, cost=110)
        order = data.get("order")
        return self.complete(client, order) if order else None

    def _bulk(self, client: VendorClient, scope: str, field: str, start: datetime, end: datetime,
              poll_s: float = 2.0) -> Iterator[Page]:  # fmt: skip
        """A long backfill as one bulk operation: start it, poll until it completes, read its JSONL (from a
        signed storage URL, fetched without the access token), yield pages of ``page_size`` orders."""
        query = shopify_api.bulk_orders_query(field, iso(start), iso(end))
        data = self.graphql(client, "BulkRun", shopify_api.BULK_RUN_MUTATION, {"query": query}, cost=10)
        run = data.get("bulkOperationRunQuery") or {}
        if run.get("userErrors"):
            raise SourceUnavailable(f"Shopify bulk operation refused: {run['userErrors']}")
        op_id = (run.get("bulkOperation") or {}).get("id")
        while True:
            op = self.graphql(client, "BulkStatus", shopify_api.BULK_STATUS_QUERY, {"id": op_id}, cost=2)["node"]
            status = op.get("status")
            if status == "COMPLETED":
                break
            if status in ("FAILED", "CANCELED", "EXPIRED"):
                raise SourceUnavailable(f"Shopify bulk operation {op_id} {status}: {op.get('errorCode')}")
            client.wait(poll_s)
        if not op.get("url"):  # no order in the window
            return
        resp = requests.get(op["url"], timeout=self.cfg.timeout, stream=True)
        if resp.status_code >= 400:
            raise SourceUnavailable(f"Shopify bulk operation {op_id}: result download HTTP {resp.status_code}")
        orders = shopify_api.assemble_bulk(resp.iter_lines(decode_unicode=True))
        size = self.cfg.page_size
        for i in range(0, len(orders), size):
            yield self._page(scope, orders[i : i + size], field, start, end)

    def map(self, record: dict[str, Any], ctx: MapContext, scope: str) -> list[PosTicket]:
        return shopify.map_order(record, ctx)

    def record_id(self, record: dict[str, Any]) -> str:
        return shopify.ticket_id(record.get("id"))

    def keep(self, record: dict[str, Any]) -> bool:
        return record.get("sourceName") in self.cfg.source_names


class LightspeedAdapter(Adapter):
    vendor = "lightspeed"
    time_based = False

    def base_url(self) -> str:
        if self.cfg.base_url:
            return self.cfg.base_url.rstrip("/")
        if not self.cfg.domain_prefix:
            raise MappingError(f"source {self.cfg.name}: Lightspeed needs `domain_prefix`")
        return f"https://{self.cfg.domain_prefix}.retail.lightspeed.app"

    def token_request(self, refresh_token: str, client_secret: str | None) -> TokenRequest:
        body = {"client_id": self.cfg.auth.client_id or "", "client_secret": client_secret or "",
                "grant_type": "refresh_token", "refresh_token": refresh_token}  # fmt: skip
        return TokenRequest(self.cfg.auth.token_url or f"{self.base_url()}/api/1.0/token", body, as_json=False)

    def pages(self, client: VendorClient, scope: str, start: datetime | None, end: datetime,
              after: Any = None, backfill: bool = False) -> Iterator[Page]:  # fmt: skip
        version = int(after or 0)
        while True:
            data = client.request(
                "GET", f"{self.base_url()}/api/2.0/sales", params={"after": version, "page_size": self.cfg.page_size}
            ).json()
            sales = data.get("data") or []
            if not sales:
                return
            top = int((data.get("version") or {}).get("max") or max(lightspeed.version(s) for s in sales))
            if start is not None:  # a backfill window: versions are not times, so filter on sale_date
                sales = [s for s in sales if _in_window(s.get("sale_date"), start, end)]
            yield Page(scope, sales, top)
            if top <= version:
                return
            version = top

    def map(self, record: dict[str, Any], ctx: MapContext, scope: str) -> list[PosTicket]:
        return lightspeed.map_sale(record, ctx)

    def later(self, a: Any, b: Any) -> Any:
        if a is None or b is None:
            return b if a is None else a
        return max(int(a), int(b))


def _in_window(value: Any, start: datetime, end: datetime, what: str = "sale_date") -> bool:
    try:
        return start <= parse_time(value, what) < end
    except MappingError:
        return True  # let the mapping report it


class CloverAdapter(Adapter):
    vendor = "clover"
    # What the mapping reads: unexpanded, Clover leaves collections out and gives objects as {"id"} references
    # (a line's item without its categories, a payment's tender without its labelKey). A dotted path expands each
    # level on its way (lineItems.discounts brings lineItems too). Clover documents at most three expansions per
    # call, so a page is read twice with the same filter and paging: once per group, merged by order id.
    EXPAND_GROUPS = ("lineItems.discounts,lineItems.item.categories,payments.tender", "refunds,discounts")
    MAX_EXPANSIONS = 3

    def base_url(self) -> str:
        return (self.cfg.base_url or "https://api.clover.com").rstrip("/")

    def token_request(self, refresh_token: str, client_secret: str | None) -> TokenRequest:
        body = {"client_id": self.cfg.auth.client_id or "", "refresh_token": refresh_token}
        return TokenRequest(self.cfg.auth.token_url or f"{self.base_url()}/oauth/v2/refresh", body, as_json=True)

    def scopes(self) -> list[str]:
        return sorted(self.cfg.stores)

    def pages(self, client: VendorClient, scope: str, start: datetime | None, end: datetime,
              after: Any = None, backfill: bool = False) -> Iterator[Page]:  # fmt: skip
        start = start or EPOCH
        if not backfill:
            yield from self._keyset(client, scope, "modifiedTime", start, end, start, end)
            return
        # A backfill filters on createdTime, which Clover serves at most 90 days per request (a longer range is
        # silently cut to its last 90 days): one series of requests per 90-day slice.
        lo = start
        while lo < end:
            hi = min(lo + CLOVER_MAX_RANGE, end)
            yield from self._keyset(client, scope, "createdTime", lo, hi, start, end)
            lo = hi

    def _keyset(self, client: VendorClient, scope: str, field: str, since: datetime, until: datetime,
                start: datetime, end: datetime) -> Iterator[Page]:  # fmt: skip
        """Orders with ``since <= field < until``, by keyset paging on ``field`` (offset only within equal
        times): an order modified while we page moves past ``until`` and cannot shift the others out of a page,
        as plain offset paging would. Page positions are times of ``field``; progress is over [start, end)."""
        lo, hi = int(since.timestamp() * 1000), int(until.timestamp() * 1000)
        offset = 0
        while True:
            params = [
                ("filter", f"{field}>={lo}"), ("filter", f"{field}<{hi}"),
                ("orderBy", f"{field} ASC"), ("limit", str(self.cfg.page_size)), ("offset", str(offset)),
            ]  # fmt: skip
            orders = self._expanded_page(client, scope, params)
            last_ms = max((clover.time_of(o, field) for o in orders), default=None)
            last = iso(datetime.fromtimestamp(last_ms / 1000, tz=UTC)) if last_ms is not None else None
            frac = _fraction(parse_time(last, field) if last else None, start, end)
            yield Page(scope, orders, last, frac)
            if len(orders) < self.cfg.page_size or last_ms is None:
                return
            ties = sum(1 for o in orders if clover.time_of(o, field) == last_ms)
            offset = offset + ties if last_ms == lo else ties
            lo = last_ms

    def _expanded_page(self, client: VendorClient, scope: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """One page of orders with every expansion the mapping needs, in requests of at most three expansions.
        An order missing from a later request was modified in between (it left the filter's time range): it is
        left out of this page and read again, changed, by a later sync."""
        url = f"{self.base_url()}/v3/merchants/{scope}/orders"
        merged: dict[str, dict[str, Any]] | None = None
        order_ids: list[str] = []
        for group in self.EXPAND_GROUPS:
            assert len(group.split(",")) <= self.MAX_EXPANSIONS
            elements = client.request("GET", url, params=[*params, ("expand", group)]).json().get("elements") or []
            if merged is None:
                merged = {o["id"]: dict(o) for o in elements}
                order_ids = [o["id"] for o in elements]
                continue
            seen = {o["id"]: o for o in elements}
            for oid in list(merged):
                if oid in seen:
                    merged[oid].update({k: v for k, v in seen[oid].items() if k not in merged[oid]})
                else:
                    del merged[oid]
        return [merged[i] for i in order_ids if merged and i in merged]

    def fetch_order(self, client: VendorClient, merchant: str, order_id: str) -> dict[str, Any]:
        """One order with the mapping's expansions (``GET /v3/merchants/{mId}/orders/{orderId}``), for webhooks."""
        url = f"{self.base_url()}/v3/merchants/{merchant}/orders/{order_id}"
        order: dict[str, Any] = {}
        for group in self.EXPAND_GROUPS:
            part = client.request("GET", url, params=[("expand", group)]).json()
            order.update({k: v for k, v in part.items() if k not in order})
        return order

    def map(self, record: dict[str, Any], ctx: MapContext, scope: str) -> list[PosTicket]:
        return clover.map_order(record, ctx, scope)


ADAPTERS: dict[str, Callable[[SourceConfig], Adapter]] = {
    "square": SquareAdapter,
    "shopify": ShopifyAdapter,
    "lightspeed": LightspeedAdapter,
    "clover": CloverAdapter,
}


def window_records(
    adapter: Adapter, client: VendorClient, start: datetime, end: datetime
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(scope, record) of every record of [start, end) by the poller's backfill query (sales made in the window):
    what a dry run previews and what sync-check expects."""
    for scope in adapter.scopes():
        pages = (adapter.pages(client, scope, start, end, backfill=True) if adapter.time_based
                 else adapter.pages(client, scope, start, end, after=0))  # fmt: skip
        for page in pages:
            for record in page.records:
                yield scope, record


def adapter_for(cfg: SourceConfig) -> Adapter:
    return ADAPTERS[cfg.vendor](cfg)


def load_position(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    data = json.loads(text)
    return data if isinstance(data, dict) else {}
