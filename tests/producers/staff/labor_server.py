"""A local stand-in for the POS labour APIs, which cannot be reached from here.

It reproduces the documented requests and responses the shift pollers use:

- Square ``POST /v2/labor/timecards/search`` (Square-Version 2025-05-21 or later; older versions get the
  retired ``/v2/labor/shifts/search`` behaviour of a 404 here): ``query.filter.location_ids`` (required),
  ``query.filter.start`` ``{start_at, end_at}`` (inclusive), ``query.sort`` ``{field, order}``, ``limit`` (at most
  200), an opaque ``cursor`` that must come with the same query; the response is ``{"timecards": [...],
  "cursor": ...}``, ``{}`` when nothing matches. Timecard: id, location_id, team_member_id, start_at, end_at
  (absent while OPEN), breaks, wage {title}, status, version, created_at, updated_at.
- Clover ``GET /v3/merchants/{mId}/shifts`` with ``filter=in_time>=<ms>`` / ``filter=in_time<<ms>``,
  ``expand=employee`` (otherwise the employee is a ``{"id"}`` reference), ``limit``/``offset``; the response is
  ``{"elements": [...], "href": ...}``. Shift: id, employee, inTime, outTime, overrideInTime, overrideOutTime.

Bearer tokens only (``static-token``); faults (429, 5xx) are scripted per path prefix.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class LaborState:
    timecards: dict[str, dict[str, Any]] = field(default_factory=dict)
    clover: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    faults: list[tuple[str, int]] = field(default_factory=list)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        st = self.server.state
        url = urlsplit(self.path)
        st.log.append((method, self.path, dict(self.headers)))
        with st.lock:
            for i, (prefix, status) in enumerate(st.faults):
                if url.path.startswith(prefix):
                    del st.faults[i]
                    return self._send(status, {"errors": [{"category": "API_ERROR", "code": "SERVICE_UNAVAILABLE"}]})
        if (self.headers.get("Authorization") or "") != "Bearer static-token":
            return self._send(401, {"errors": [{"category": "AUTHENTICATION_ERROR", "code": "UNAUTHORIZED"}]})
        if method == "POST" and url.path == "/v2/labor/timecards/search":
            if (self.headers.get("Square-Version") or "") < "2025-05-21":
                return self._send(404, {"errors": [{"category": "INVALID_REQUEST_ERROR", "code": "NOT_FOUND"}]})
            return self._square(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
        parts = url.path.strip("/").split("/")
        if method == "GET" and len(parts) == 4 and parts[:2] == ["v3", "merchants"] and parts[3] == "shifts":
            return self._clover(parts[2], parse_qsl(url.query))
        self._send(404, {"message": "not found"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _square(self, body: dict[str, Any]) -> None:
        st = self.server.state
        cursor = body.pop("cursor", None)
        query = body.get("query") or {}
        flt = query.get("filter") or {}
        if not flt.get("location_ids"):
            return self._send(400, {"errors": [{"code": "MISSING_REQUIRED_PARAMETER", "field": "location_ids"}]})
        limit = int(body.get("limit") or 200)
        if limit > 200:
            return self._send(400, {"errors": [{"code": "INVALID_VALUE", "field": "limit"}]})
        offset = 0
        if cursor:
            saved = json.loads(base64.urlsafe_b64decode(cursor))
            if saved["q"] != query:
                return self._send(400, {"errors": [{"code": "INVALID_CURSOR"}]})
            offset = saved["o"]
        rng = flt.get("start") or {}
        with st.lock:
            cards = [c for c in st.timecards.values() if c["location_id"] in flt["location_ids"]]
        if rng.get("start_at"):
            cards = [c for c in cards if _t(c["start_at"]) >= _t(rng["start_at"])]
        if rng.get("end_at"):
            cards = [c for c in cards if _t(c["start_at"]) <= _t(rng["end_at"])]
        sort = query.get("sort") or {"field": "START_AT", "order": "ASC"}
        key = {"START_AT": "start_at", "END_AT": "end_at", "CREATED_AT": "created_at", "UPDATED_AT": "updated_at"}
        cards.sort(key=lambda c: (c.get(key[sort["field"]]) or "", c["id"]), reverse=sort.get("order") == "DESC")
        page = cards[offset : offset + limit]
        out: dict[str, Any] = {"timecards": page} if page else {}
        if offset + limit < len(cards):
            out["cursor"] = base64.urlsafe_b64encode(json.dumps({"q": query, "o": offset + limit}).encode()).decode()
        self._send(200, out)

    def _clover(self, merchant: str, q: list[tuple[str, str]]) -> None:
        st = self.server.state
        with st.lock:
            shifts = list(st.clover.get(merchant, {}).values())
        for name, value in q:
            if name == "filter":
                if value.startswith("in_time>="):
                    shifts = [s for s in shifts if s["inTime"] >= int(value.split(">=")[1])]
                elif value.startswith("in_time<"):
                    shifts = [s for s in shifts if s["inTime"] < int(value.split("<")[1])]
                else:
                    return self._send(400, {"message": f"unsupported filter {value}"})
        params = dict(q)
        expanded = "employee" in (params.get("expand") or "").split(",")
        shifts.sort(key=lambda s: (s["inTime"], s["id"]))
        offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 100)
        page = []
        for s in shifts[offset : offset + limit]:
            s = dict(s)
            if not expanded:
                s["employee"] = {"id": s["employee"]["id"]}
            page.append(s)
        self._send(200, {"elements": page, "href": f"/v3/merchants/{merchant}/shifts"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: LaborState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextmanager
def labor_server(state: LaborState | None = None) -> Iterator[tuple[str, LaborState]]:
    server = _Server(state or LaborState())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.state
    finally:
        server.shutdown()
        server.server_close()
