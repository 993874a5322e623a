"""A local stand-in for the four POS vendor APIs, which cannot be reached from here.

It reproduces each vendor's documented requests and responses closely enough to exercise the pollers:
Square ``POST /v2/orders/search`` (one of the updated_at/created_at/closed_at filters, inclusive at both ends,
with the matching sort; closed states only with CLOSED_AT; a cursor that must come with the same query) and
``POST /v2/orders/batch-retrieve``, Shopify ``GET /admin/api/<v>/orders.json`` (``status=any``,
``updated_at_min``/``processed_at_min``/``created_at_min`` and ``_max``, ``Link`` header with ``page_info``
that refuses other filters) and ``orders/<id>/transactions.json``, Lightspeed X-Series
``GET /api/2.0/sales?after=<version>`` (``{"data", "version": {"min", "max"}}``), Clover
``GET /v3/merchants/<mId>/orders`` (``filter=modifiedTime>=..`` or ``createdTime``, a createdTime range cut to
its last 90 days, nested ``expand`` with references for what is not expanded, ``orderBy``, ``limit``/``offset``).
Auth: bearer tokens (``X-Shopify-Access-Token`` for Shopify) and each vendor's OAuth refresh endpoint, which
rotates the refresh token (the old one stops working). Faults (429 with Retry-After, 5xx, 401) are scripted.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
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
    shopify_tx: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
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
        if not self._authorized():
            return self._send(401, {"errors": [{"category": "AUTHENTICATION_ERROR", "code": "UNAUTHORIZED"}]})
        if method == "POST" and url.path == "/v2/orders/search":
            return self._square()
        if method == "POST" and url.path == "/v2/orders/batch-retrieve":
            return self._batch_retrieve()
        parts = url.path.strip("/").split("/")
        q = parse_qs(url.query)
        if url.path.startswith("/admin/api/") and url.path.endswith("/orders.json"):
            return self._shopify(q)
        if url.path.startswith("/admin/api/") and url.path.endswith("/transactions.json"):
            return self._send(200, {"transactions": st.shopify_tx.get(int(parts[-2]), [])})
        if url.path == "/api/2.0/sales":
            return self._lightspeed(q)
        if len(parts) == 4 and parts[:2] == ["v3", "merchants"] and parts[3] == "orders":
            return self._clover(parts[2], parse_qsl(url.query))
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

    def _shopify(self, q: dict[str, list[str]]) -> None:
        st = self.server.state
        limit = int(q.get("limit", ["50"])[0])
        if "page_info" in q:
            extra = set(q) - {"page_info", "limit", "fields"}
            if extra:
                return self._send(
                    400, {"errors": {k: f"{k} cannot be passed when page_info is present." for k in extra}}
                )
            filt = _dec(q["page_info"][0])
        else:
            fields = ("updated_at", "processed_at", "created_at")
            field = next((f for f in fields if f"{f}_min" in q or f"{f}_max" in q), "created_at")
            filt = {"field": field, "min": q.get(f"{field}_min", ["1970-01-01T00:00:00Z"])[0],
                    "max": q.get(f"{field}_max", ["2100-01-01T00:00:00Z"])[0],
                    "any": q.get("status", ["open"])[0] == "any", "after": None}  # fmt: skip
        field = filt["field"]
        rows = sorted(
            (o for o in st.shopify.values() if _t(filt["min"]) <= _t(o[field]) <= _t(filt["max"])
             and (filt["any"] or not o.get("cancelled_at"))),
            key=lambda o: (_t(o[field]), o["id"]),
        )  # fmt: skip
        if filt["after"]:
            rows = [o for o in rows if (_t(o[field]).isoformat(), o["id"]) > tuple(filt["after"])]
        page = rows[:limit]
        headers = {}
        if len(rows) > len(page):
            nxt = {**filt, "after": [_t(page[-1][field]).isoformat(), page[-1]["id"]]}
            host = self.headers.get("Host")
            headers["Link"] = (
                f'<http://{host}{urlsplit(self.path).path}?limit={limit}&page_info={_enc(nxt)}>; rel="next"'
            )
        self._send(200, {"orders": page}, headers)

    def _lightspeed(self, q: dict[str, list[str]]) -> None:
        st = self.server.state
        after = int(q.get("after", ["0"])[0])
        size = min(int(q.get("page_size", ["1000"])[0]), 1000)
        rows = sorted((s for s in st.lightspeed.values() if s["version"] > after), key=lambda s: s["version"])[:size]
        if not rows:
            return self._send(200, {"data": [], "version": {"min": None, "max": None}})
        self._send(200, {"data": rows, "version": {"min": rows[0]["version"], "max": rows[-1]["version"]}})

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
