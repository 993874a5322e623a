"""A local stand-in for the four POS vendor APIs, which cannot be reached from here.

It reproduces each vendor's documented requests and responses closely enough to exercise the pollers:
Square ``POST /v2/orders/search`` (one of the updated_at/created_at/closed_at filters, inclusive at both ends,
with the matching sort; closed states only with CLOSED_AT; a cursor that must come with the same query) and
``POST /v2/orders/batch-retrieve``, Shopify's GraphQL Admin API ``POST /admin/api/<v>/graphql.json`` (the
``orders`` query with ``updated_at``/``processed_at`` search filters, the matching ``sortKey`` and cursor
pagination, nested ``lineItems(first:)`` cut with their ``pageInfo``; ``order(id:)``; the app's access scopes;
``bulkOperationRunQuery`` and the operation's status through ``node(id:)``, with a JSONL result where nested
connection nodes are lines with ``__parentId``; ``extensions.cost`` with a leaky-bucket ``throttleStatus``, a
``THROTTLED`` error when a query costs more than the bucket holds and ``MAX_COST_EXCEEDED`` above 1,000 points,
as shopify.dev documents them; requested cost is estimated from the ``first`` arguments), Lightspeed X-Series
``GET /api/2.0/sales?after=<version>`` (``{"data", "version": {"min", "max"}}``) and ``GET /api/2.0/sales/<id>``,
Clover ``GET /v3/merchants/<mId>/orders`` (``filter=modifiedTime>=..`` or ``createdTime``, a createdTime range cut
to its last 90 days, nested ``expand`` with references for what is not expanded, at most 3 expansions,
``orderBy``, ``limit``/``offset``) and ``GET /v3/merchants/<mId>/orders/<orderId>``.
Auth: bearer tokens (``X-Shopify-Access-Token`` for Shopify) and each vendor's OAuth refresh endpoint, which
rotates the refresh token (the old one stops working). Faults (429 with Retry-After, 5xx, 401) are scripted.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _enc(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()


def _dec(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text.encode()))


@dataclass
class VendorState:
    square: dict[str, dict[str, Any]] = field(default_factory=dict)
    shopify: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Shopify order nodes (GraphQL shape, every connection whole) by numeric id."""
    shopify_scopes: list[str] = field(default_factory=lambda: ["read_orders", "read_all_orders"])
    shopify_bucket: tuple[float, float] = (2000.0, 100.0)
    """Shopify's cost bucket: maximum points and restore rate per second (the Standard plan's)."""
    shopify_available: float | None = None
    shopify_at: float = 0.0
    graphql: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(operationName, variables) of each Shopify GraphQL request answered (throttled ones too)."""
    throttled: int = 0
    bulk: dict[str, dict[str, Any]] = field(default_factory=dict)
    bulk_downloads: list[dict[str, str]] = field(default_factory=list)
    """The headers of each bulk result download (it must carry no access token)."""
    clock: Callable[[], float] = time.monotonic
    lightspeed: dict[str, dict[str, Any]] = field(default_factory=dict)
    clover: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    version: int = 1000
    access_tokens: set[str] = field(default_factory=lambda: {"static-token"})
    refresh_tokens: set[str] = field(default_factory=set)
    issued: int = 0
    faults: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    expands: list[str] = field(default_factory=list)
    """The ``expand`` value of each Clover orders request answered."""
    expand_refused: int = 0
    retrieved: list[list[str]] = field(default_factory=list)
    """The order_ids of each Square BatchRetrieveOrders request."""
    on_request: Callable[[str, str], None] | None = None
    """Called with (method, path) before each request is answered (e.g. to signal the poller mid-sync)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put_lightspeed(self, sale: dict[str, Any]) -> None:
        """Store a sale with the next global version, as X-Series does on every change."""
        with self.lock:
            self.version += 7
            self.lightspeed[sale["id"]] = {**sale, "version": self.version}

    def fault(self, path_prefix: str, status: int, times: int = 1, **headers: str) -> None:
        self.faults.extend([(path_prefix, status, headers)] * times)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorized(self) -> bool:
        st = self.server.state
        token = self.headers.get("X-Shopify-Access-Token") or (self.headers.get("Authorization") or "")[7:]
        return token in st.access_tokens

    def _route(self, method: str) -> None:
        st = self.server.state
        url = urlsplit(self.path)
        st.log.append((method, self.path))
        if st.on_request is not None:
            st.on_request(method, url.path)
        with st.lock:
            for i, (prefix, status, headers) in enumerate(st.faults):
                if url.path.startswith(prefix):
                    del st.faults[i]
                    self._send(status, {"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED"}]}
                               if status == 429 else {"errors": "fault"}, headers)  # fmt: skip
                    return
        if url.path in ("/oauth2/token", "/admin/oauth/access_token", "/api/1.0/token", "/oauth/v2/refresh"):
            return self._token(url.path)
        if url.path.startswith("/bulk/"):  # a signed storage URL: no Shopify token, none expected
            return self._bulk_result(url.path.split("/")[-1].removesuffix(".jsonl"))
        if not self._authorized():
            return self._send(401, {"errors": [{"category": "AUTHENTICATION_ERROR", "code": "UNAUTHORIZED"}]})
        if method == "POST" and url.path == "/v2/orders/search":
            return self._square()
        if method == "POST" and url.path == "/v2/orders/batch-retrieve":
            return self._batch_retrieve()
        parts = url.path.strip("/").split("/")
        q = parse_qs(url.query)
        if method == "POST" and url.path.startswith("/admin/api/") and url.path.endswith("/graphql.json"):
            return self._shopify_graphql()
        if url.path.startswith("/admin/api/"):  # REST Admin: legacy, tillflow must not use it
            return self._send(410, {"errors": "tillflow reads Shopify through the GraphQL Admin API only"})
        if url.path == "/api/2.0/sales":
            return self._lightspeed(q)
        if len(parts) == 4 and parts[:3] == ["api", "2.0", "sales"]:
            sale = st.lightspeed.get(parts[3])
            return self._send(200, {"data": sale}) if sale else self._send(404, {"errors": "not found"})
        if len(parts) == 4 and parts[:2] == ["v3", "merchants"] and parts[3] == "orders":
            return self._clover(parts[2], parse_qsl(url.query))
        if len(parts) == 5 and parts[:2] == ["v3", "merchants"] and parts[3] == "orders":
            return self._clover_order(parts[2], parts[4], parse_qsl(url.query))
        self._send(404, {"message": "Not Found"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _token(self, path: str) -> None:
        st = self.server.state
        raw = self._body()
        body = json.loads(raw) if path in ("/oauth2/token", "/oauth/v2/refresh") else dict(parse_qsl(raw.decode()))
        rt = body.get("refresh_token")
        with st.lock:
            if rt not in st.refresh_tokens:
                return self._send(401, {"error": "invalid_grant"})
            st.refresh_tokens.discard(rt)  # rotation: a refresh token works once
            st.issued += 1
            access, refresh = f"access-{st.issued}", f"refresh-{st.issued}"
            st.access_tokens.add(access)
            st.refresh_tokens.add(refresh)
        self._send(200, {"access_token": access, "token_type": "bearer", "expires_in": 3600, "refresh_token": refresh})

    def _square(self) -> None:
        st = self.server.state
        req = json.loads(self._body())
        query = req.get("query") or {}
        f = query.get("filter") or {}
        dt = f.get("date_time_filter") or {}
        if len(dt) > 1:
            return self._send(400, {"errors": [{"code": "BAD_REQUEST", "detail": "one time range at a time"}]})
        field, rng = next(iter(dt.items()), ("updated_at", {}))
        rng = dict(rng)
        if len(req.get("location_ids") or []) > 10:
            return self._send(400, {"errors": [{"code": "INVALID_ARRAY_LENGTH", "field": "location_ids"}]})
        sort_field = query.get("sort", {}).get("sort_field", "CREATED_AT")
        if dt and sort_field != field.upper():
            return self._send(400, {"errors": [{"code": "BAD_REQUEST", "detail": "sort_field must match filter"}]})
        field = sort_field.lower()
        states = set((f.get("state_filter") or {}).get("states") or ["OPEN", "COMPLETED", "CANCELED", "DRAFT"])
        if field == "closed_at" and not states <= {"COMPLETED", "CANCELED"}:
            return self._send(400, {"errors": [{"code": "BAD_REQUEST", "detail": "CLOSED_AT needs closed states"}]})
        after = None
        if req.get("cursor"):
            cur = _dec(req["cursor"])
            if cur["q"] != _enc(query):
                return self._send(400, {"errors": [{"code": "BAD_REQUEST", "detail": "cursor/query mismatch"}]})
            after = tuple(cur["after"])
        start, end = _t(rng.get("start_at", "1970-01-01T00:00:00Z")), _t(rng.get("end_at", "2100-01-01T00:00:00Z"))
        rows = sorted(  # start and end are both inclusive (SearchOrdersDateTimeFilter)
            (o for o in st.square.values() if o["location_id"] in req.get("location_ids", [])
             and o["state"] in states and o.get(field) and start <= _t(o[field]) <= end),
            key=lambda o: (_t(o[field]), o["id"]),
        )  # fmt: skip
        if after:
            rows = [o for o in rows if (_t(o[field]).isoformat(), o["id"]) > after]
        page = rows[: req.get("limit", 500)]
        body: dict[str, Any] = {"orders": page} if page else {}
        if len(rows) > len(page):
            last = page[-1]
            body["cursor"] = _enc({"q": _enc(query), "after": [_t(last[field]).isoformat(), last["id"]]})
        self._send(200, body)

    def _batch_retrieve(self) -> None:
        req = json.loads(self._body())
        ids = req.get("order_ids") or []
        self.server.state.retrieved.append(ids)
        if not ids or len(ids) > 100:
            return self._send(400, {"errors": [{"code": "INVALID_ARRAY_LENGTH", "field": "order_ids"}]})
        sq = self.server.state.square
        self._send(200, {"orders": [sq[i] for i in ids if i in sq]})

    # --- Shopify GraphQL Admin API ----------------------------------------------------------------------------

    def _gql(self, body: dict[str, Any]) -> None:
        self._send(200, body)

    def _shopify_graphql(self) -> None:
        st = self.server.state
        req = json.loads(self._body())
        op, query, variables = req.get("operationName") or "", req.get("query") or "", req.get("variables") or {}
        st.graphql.append((op, variables))
        cost = _requested_cost(query, variables)
        if cost > SHOPIFY_MAX_QUERY_COST:
            message = f"Query cost is {cost}, which exceeds the single query max cost limit ({SHOPIFY_MAX_QUERY_COST})."
            ext = {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": SHOPIFY_MAX_QUERY_COST}
            return self._gql({"errors": [{"message": message, "extensions": ext}]})
        maximum, restore = st.shopify_bucket
        with st.lock:
            now = st.clock()
            available = maximum if st.shopify_available is None else st.shopify_available
            available = min(maximum, available + (now - st.shopify_at) * restore)
            st.shopify_at = now
            status = {"maximumAvailable": maximum, "currentlyAvailable": available, "restoreRate": restore}
            if cost > available:
                st.throttled += 1
                st.shopify_available = available
                return self._gql({
                    "errors": [{"message": "Throttled", "extensions": {
                        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": None,
                                            "throttleStatus": status}}})  # fmt: skip
        handler = {"Orders": self._gql_orders, "Order": self._gql_order, "OrderLines": self._gql_order_lines,
                   "AccessScopes": self._gql_scopes, "BulkRun": self._gql_bulk_run,
                   "BulkStatus": self._gql_bulk_status}.get(op)  # fmt: skip
        if handler is None:
            return self._gql({"errors": [{"message": f"unknown operation {op!r}"}]})
        data, errors = handler(query, variables)
        actual = max(1, cost // 2)  # answers cost less than requested; the difference is refunded
        with st.lock:
            st.shopify_available = available - actual
            status = {**status, "currentlyAvailable": st.shopify_available}
        body: dict[str, Any] = {"data": data, "extensions": {"cost": {
            "requestedQueryCost": cost, "actualQueryCost": actual, "throttleStatus": status}}}  # fmt: skip
        if errors:
            body["errors"] = errors
        self._gql(body)

    def _gql_orders(self, query: str, v: dict[str, Any]) -> tuple[Any, Any]:
        st = self.server.state
        m = re.fullmatch(r"(updated_at|processed_at|created_at):>='([^']+)' AND \1:<'([^']+)'", v.get("query") or "")
        if not m:
            return None, [{"message": f"unsupported search {v.get('query')!r}"}]
        field, lo, hi = m.group(1), _t(m.group(2)), _t(m.group(3))
        if (v.get("sortKey") or "ID") != field.upper():
            return None, [{"message": "sortKey must match the filtered field"}]
        key = {"updated_at": "updatedAt", "processed_at": "processedAt", "created_at": "createdAt"}[field]
        rows = sorted((o for o in st.shopify.values() if lo <= _t(o[key]) < hi),
                      key=lambda o: (_t(o[key]), int(o["legacyResourceId"])))  # fmt: skip
        if v.get("after"):
            cur = _dec(v["after"])
            if cur["q"] != v.get("query"):
                return None, [{"message": "cursor does not belong to this query"}]
            rows = [o for o in rows if (_t(o[key]).isoformat(), int(o["legacyResourceId"])) > tuple(cur["after"])]
        page = rows[: int(v["first"])]
        lines = _first_of(query, "lineItems") or 10**9
        end = None
        if page:
            end = _enc(
                {"q": v.get("query"), "after": [_t(page[-1][key]).isoformat(), int(page[-1]["legacyResourceId"])]}
            )
        conn = {"pageInfo": {"hasNextPage": len(rows) > len(page), "endCursor": end},
                "nodes": [_shopify_cut(o, lines) for o in page]}  # fmt: skip
        return {"orders": conn}, None

    def _shopify_node(self, gid: str) -> dict[str, Any] | None:
        try:
            return self.server.state.shopify.get(int(str(gid).rsplit("/", 1)[-1]))
        except ValueError:
            return None

    def _gql_order(self, query: str, v: dict[str, Any]) -> tuple[Any, Any]:
        order = self._shopify_node(v["id"])
        return {"order": _shopify_cut(order, _first_of(query, "lineItems") or 10**9) if order else None}, None

    def _gql_order_lines(self, query: str, v: dict[str, Any]) -> tuple[Any, Any]:
        order = self._shopify_node(v["id"])
        if order is None:
            return {"order": None}, None
        items = order["lineItems"]["nodes"]
        start = int(v.get("after") or 0)
        first = _first_of(query, "lineItems") or 100
        page = items[start : start + first]
        info = {"hasNextPage": start + first < len(items), "endCursor": str(start + len(page))}
        return {"order": {"lineItems": {"pageInfo": info, "nodes": copy.deepcopy(page)}}}, None

    def _gql_scopes(self, query: str, v: dict[str, Any]) -> tuple[Any, Any]:
        scopes = [{"handle": h} for h in self.server.state.shopify_scopes]
        return {"currentAppInstallation": {"accessScopes": scopes}}, None

    def _gql_bulk_run(self, query: str, v: dict[str, Any]) -> tuple[Any, Any]:
        st = self.server.state
        m = re.search(r'orders\(query: "([^"]+)", sortKey: (\w+)\)', v.get("query") or "")
        if not m or "(first:" in v["query"]:
            error = {"field": ["query"], "message": "Bulk queries take connections without first/after"}
            return {"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [error]}}, None
        inner, _ = self._gql_orders(query, {"query": m.group(1), "sortKey": m.group(2), "first": 10**9})
        op_id = f"gid://shopify/BulkOperation/{len(st.bulk) + 1}"
        st.bulk[op_id] = {"orders": [self._shopify_node(o["id"]) for o in inner["orders"]["nodes"]], "polls": 0}
        return {"bulkOperationRunQuery": {"bulkOperation": {"id": op_id, "status": "CREATED"}, "userErrors": []}}, None

    def _gql_bulk_status(self, query: str, v: dict[str, Any]) -> tuple[Any, Any]:
        st = self.server.state
        op = st.bulk.get(v["id"])
        if op is None:
            return {"node": None}, None
        op["polls"] += 1
        done = op["polls"] > 1  # RUNNING on the first poll
        url = f"http://{self.headers.get('Host')}/bulk/{v['id'].rsplit('/', 1)[-1]}.jsonl" if op["orders"] else None
        node = {"id": v["id"], "status": "COMPLETED" if done else "RUNNING", "errorCode": None,
                "objectCount": str(len(op["orders"])), "url": url if done else None,
                "partialDataUrl": None}  # fmt: skip
        return {"node": node}, None

    def _bulk_result(self, num: str) -> None:
        st = self.server.state
        st.bulk_downloads.append(dict(self.headers.items()))
        op = st.bulk.get(f"gid://shopify/BulkOperation/{num}")
        if op is None:
            return self._send(404, {"error": "no such result"})
        data = "".join(json.dumps(line) + "\n" for o in op["orders"] for line in _bulk_lines(o)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/jsonl")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _lightspeed(self, q: dict[str, list[str]]) -> None:
        st = self.server.state
        after = int(q.get("after", ["0"])[0])
        size = min(int(q.get("page_size", ["1000"])[0]), 1000)
        rows = sorted((s for s in st.lightspeed.values() if s["version"] > after), key=lambda s: s["version"])[:size]
        if not rows:
            return self._send(200, {"data": [], "version": {"min": None, "max": None}})
        self._send(200, {"data": rows, "version": {"min": rows[0]["version"], "max": rows[-1]["version"]}})

    def _clover_order(self, merchant: str, order_id: str, q: list[tuple[str, str]]) -> None:
        order = self.server.state.clover.get(merchant, {}).get(order_id)
        if order is None:
            return self._send(404, {"message": "Not Found"})
        expand = {e for e in dict(q).get("expand", "").split(",") if e}
        if len(expand) > CLOVER_MAX_EXPANSIONS:
            return self._send(400, {"message": f"at most {CLOVER_MAX_EXPANSIONS} expansions per request"})
        self._send(200, _clover_expanded(order, expand))

    def _clover(self, merchant: str, q: list[tuple[str, str]]) -> None:
        st = self.server.state
        rows = list(st.clover.get(merchant, {}).values())
        bounds: dict[str, list[int]] = {}
        for key, value in q:
            if key != "filter":
                continue
            m = re.fullmatch(r"(modifiedTime|createdTime)(>=|<=|<|>)(\d+)", value)
            if not m:
                return self._send(400, {"message": f"unsupported filter {value}"})
            name, op, ms = m.group(1), m.group(2), int(m.group(3))
            lo, hi = bounds.setdefault(name, [0, 2**62])
            bounds[name] = [max(lo, ms + (op == ">")), hi] if op[0] == ">" else [lo, min(hi, ms + (op == "<="))]
        for name, (lo, hi) in bounds.items():
            if name == "createdTime" and hi - lo > CLOVER_90_DAYS_MS:
                lo = hi - CLOVER_90_DAYS_MS  # Clover serves at most the last 90 days of a longer range
            rows = [o for o in rows if lo <= o[name] < hi]
        params = dict(q)
        order_by = params.get("orderBy", "").split(" ")[0]
        if order_by in ("modifiedTime", "createdTime"):
            rows.sort(key=lambda o: (o[order_by], o["id"]))
        expand = {e for e in params.get("expand", "").split(",") if e}
        if len(expand) > CLOVER_MAX_EXPANSIONS:
            st.expand_refused += 1
            return self._send(400, {"message": f"at most {CLOVER_MAX_EXPANSIONS} expansions per request"})
        st.expands.append(params.get("expand", ""))
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
        page = [_clover_expanded(o, expand) for o in rows[offset : offset + limit]]
        self._send(200, {"elements": page, "href": f"http://{self.headers.get('Host')}{urlsplit(self.path).path}"})


SHOPIFY_MAX_QUERY_COST = 1000


def _first_of(query: str, connection: str) -> int | None:
    m = re.search(rf"{connection}\(first: (\d+)", query)
    return int(m.group(1)) if m else None


def _requested_cost(query: str, variables: dict[str, Any]) -> int:
    """Shopify's requested cost, estimated the documented way from ``first`` arguments: a connection costs 2 plus
    ``first`` times what each node selects (1 per object); nested connections multiply. Here: the outermost
    connection's ``first`` (a number or ``$first``) times (1 + the sum of the nested ``first`` values)."""
    firsts = [int(n) if n.isdigit() else int(variables.get(n.lstrip("$"), 1))
              for n in re.findall(r"\(first: (\$?\w+)", query)]  # fmt: skip
    if not firsts:
        return 2 if "bulkOperation" not in query else 10
    return 2 + firsts[0] * (1 + sum(firsts[1:]))


def _shopify_cut(order: dict[str, Any], lines: int) -> dict[str, Any]:
    """An order node as a paged query returns it: ``lineItems(first: lines)`` with its pageInfo."""
    o = copy.deepcopy(order)
    items = o["lineItems"]["nodes"]
    o["lineItems"] = {"pageInfo": {"hasNextPage": len(items) > lines, "endCursor": str(min(lines, len(items)))},
                      "nodes": items[:lines]}  # fmt: skip
    return o


def _bulk_lines(order: dict[str, Any]) -> list[dict[str, Any]]:
    """An order as a bulk operation writes it: the order with its plain lists, then one line per node of each
    nested connection with ``__parentId`` (the order, or the refund that holds it)."""
    o = copy.deepcopy(order)
    out: list[dict[str, Any]] = []
    children: list[dict[str, Any]] = []
    for key in ("lineItems", "shippingLines"):
        for node in (o.pop(key, None) or {}).get("nodes") or ():
            children.append({**node, "__parentId": o["id"]})
    for refund in o.get("refunds") or ():
        for key in ("refundLineItems", "transactions"):
            for node in (refund.pop(key, None) or {}).get("nodes") or ():
                children.append({**node, "__parentId": refund["id"]})
    out.append(o)
    return out + children


CLOVER_90_DAYS_MS = 90 * 86_400_000
CLOVER_MAX_EXPANSIONS = 3
"""Clover: "Limit expansions to a maximum of three fields per API call" (docs.clover.com, expanding fields); the
stand-in refuses more with a 400 so that a poller asking for more fails its test."""


def _clover_expanded(order: dict[str, Any], expand: set[str]) -> dict[str, Any]:
    """An order as Clover returns it for ``expand``: unexpanded collections are left out, unexpanded objects are
    references (``{"id"}``). A dotted path (``lineItems.item.categories``) expands each level on its way."""

    def wanted(path: str) -> bool:
        return any(e == path or e.startswith(path + ".") for e in expand)

    def elements(obj: Any) -> list[dict[str, Any]]:
        return list(obj.get("elements") or []) if isinstance(obj, dict) else list(obj or [])

    o = copy.deepcopy(order)
    for key in ("lineItems", "payments", "refunds", "discounts", "customers"):
        if not wanted(key):
            o.pop(key, None)
    for li in elements(o.get("lineItems")):
        for key in ("discounts", "modifications", "taxRates"):
            if not wanted(f"lineItems.{key}"):
                li.pop(key, None)
        if li.get("item"):
            if not wanted("lineItems.item"):
                li["item"] = {"id": li["item"]["id"]}
            elif not wanted("lineItems.item.categories"):
                li["item"].pop("categories", None)
    for p in elements(o.get("payments")):
        if p.get("tender") and not wanted("payments.tender"):
            p["tender"] = {"id": p["tender"]["id"]}
    return o


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: VendorState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextmanager
def vendor_server(state: VendorState | None = None) -> Iterator[tuple[str, VendorState]]:
    """Serve the stand-in on a free port; yields its base URL and state."""
    st = state or VendorState()
    server = _Server(st)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", st
    finally:
        server.shutdown()
        server.server_close()
