"""`tillflow webhooks serve`: POS vendors push notifications; tillflow publishes the changed tickets at once.

``POST /webhooks/<source name>`` for each source file given (with a ``webhook:`` section). A request is:

1. verified (the vendor's signature, constant-time) — 401 otherwise, never retried usefully;
2. read for what changed (producers/webhooks/verify.py) and refused as a replay when older than the source's
   tolerance (400); a notification already handled (its event id is kept as long as the tolerance) is
   answered 200 without publishing again;
3. completed: the full order is fetched from the vendor API where the notification carries only an id, with
   the poller's client (auth, retries), mapped with the poller's mapping;
4. published to ``pos.tickets`` (a record that cannot be mapped goes to ``pos.tickets.dlq``), and answered 200
   only after Kafka acknowledged it. Any failure before that answers 503, so the vendor sends it again.

Published tickets are recorded in the source's checkpoint store, so the poller (the safety net, reconciling what
webhooks missed) does not send them again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from producers.pos.checkpoint import CheckpointStore
from producers.pos.common import MappingError
from producers.pos.http import RecordNotFound, VendorClient
from producers.pos.poller import map_context, reject_fingerprint
from producers.pos.publish import TicketPublisher
from producers.pos.source import SourceConfig
from producers.pos.vendors import Adapter, CloverAdapter, ShopifyAdapter, SquareAdapter
from producers.webhooks.verify import DEFAULT_TOLERANCE, Notice, Refused, check_fresh, notices, verify
from schemas.models import PosTicket
from tillflow.durable import open_durable

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """The vendor API does not know the record a notification names (deleted since, or another shop)."""


def fetch_record(adapter: Adapter, client: VendorClient, notice: Notice) -> dict[str, Any]:
    """The full vendor record a notification names, in the shape the mapping reads."""
    if isinstance(adapter, SquareAdapter):
        body: dict[str, Any] = {"order_ids": [notice.record_id]}
        if notice.scope:
            body["location_id"] = notice.scope
        orders = client.request("POST", f"{adapter.base_url()}/v2/orders/batch-retrieve", json=body).json()
        found = orders.get("orders") or []
        if not found:
            raise NotFound(f"square order {notice.record_id}")
        return adapter.with_source_tenders(client, found)[0]
    if isinstance(adapter, ShopifyAdapter):
        order = adapter.fetch_order(client, notice.record_id)
        if order is None:
            raise NotFound(f"shopify order {notice.record_id}")
        return order
    if isinstance(adapter, CloverAdapter):
        return adapter.fetch_order(client, notice.scope, notice.record_id)
    data = client.request("GET", f"{adapter.base_url()}/api/2.0/sales/{notice.record_id}").json()
    sale: dict[str, Any] | None = data.get("data")
    if not sale:
        raise NotFound(f"lightspeed sale {notice.record_id}")
    return sale


class SeenEvents:
    """Event ids handled per source, kept as long as a replay of them could be accepted."""

    def __init__(self, path: Path) -> None:
        self.db = open_durable(path, check_same_thread=False)  # used under self.lock only
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS seen (source TEXT NOT NULL, event_id TEXT NOT NULL, at REAL NOT NULL, "
            "PRIMARY KEY (source, event_id))"
        )
        self.lock = threading.Lock()

    def seen(self, source: str, event_id: str) -> bool:
        with self.lock:
            row = self.db.execute("SELECT 1 FROM seen WHERE source = ? AND event_id = ?", (source, event_id))
            return row.fetchone() is not None

    def add(self, source: str, event_ids: list[str], keep: timedelta) -> None:
        now = time.time()
        with self.lock, self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO seen (source, event_id, at) VALUES (?, ?, ?)",
                [(source, e, now) for e in event_ids],
            )
            self.db.execute("DELETE FROM seen WHERE source = ? AND at < ?", (source, now - keep.total_seconds() * 2))


@dataclass
class Endpoint:
    """One source's webhook: its config, vendor adapter and client, and where its tickets go."""

    cfg: SourceConfig
    adapter: Adapter
    client: VendorClient
    sink: TicketPublisher
    store: CheckpointStore
    secret: str
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    published: int = 0
    rejected: int = 0
    duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def tolerance(self) -> timedelta:
        hook = self.cfg.webhook
        return (hook.tolerance if hook and hook.tolerance else None) or DEFAULT_TOLERANCE[self.cfg.vendor]

    def handle(self, headers: dict[str, str], body: bytes, seen: SeenEvents) -> tuple[int, str]:
        """Verify, fetch, map and publish one notification (blocking); returns (HTTP status, text)."""
        name = self.cfg.name
        hook = self.cfg.webhook
        verify(self.cfg.vendor, self.secret, headers, body, hook.notification_url if hook else None)
        if self.cfg.vendor == "clover" and b"verificationCode" in body and b"merchants" not in body:
            log.warning("%s: Clover endpoint verification request received: %s", name, body.decode()[:200])
            return 200, "verification code logged"
        now = self.now()
        todo = []
        for notice in notices(self.cfg.vendor, headers, body):
            if self.cfg.vendor in ("clover", "square") and notice.scope and notice.scope not in self.cfg.stores:
                continue  # another merchant or location of the same account: not this source's (as in polling)
            check_fresh(notice, now, self.tolerance)
            if seen.seen(name, notice.event_id):
                self.duplicates += 1
                continue
            todo.append(notice)
        if not todo:
            return 200, "nothing new"
        with self.lock:  # one publish at a time per source: the sink and the store are not shared by threads
            tickets: list[PosTicket] = []
            rejects: list[tuple[str, dict[str, Any], str]] = []
            for notice in todo:
                try:
                    record = fetch_record(self.adapter, self.client, notice)
                except (NotFound, RecordNotFound) as exc:
                    log.warning("%s: %s named by %s is not there; left to the poller", name, exc, notice.event_id)
                    continue
                if not self.adapter.keep(record):
                    continue  # e.g. a Shopify web order when the source takes POS sales only
                ctx = map_context(self.cfg, now)
                try:
                    tickets.extend(self.adapter.map(record, ctx, notice.scope or "all"))
                except MappingError as exc:
                    rejects.append((self.adapter.record_id(record), record, str(exc)))
            new = self.store.unpublished(name, tickets)
            for ticket in new:
                self.sink.send(ticket)
            keys = [(f"reject:{rid}", reject_fingerprint(rec, why)) for rid, rec, why in rejects]
            fresh = self.store.unseen(name, keys)
            for (rid, rec, why), key in zip(rejects, keys, strict=True):
                if key in fresh:
                    log.warning("rejected %s: %s", rid, why)
                    self.sink.reject(name, rid, rec, why)
            self.sink.flush()  # raises when Kafka did not acknowledge: answered 503, the vendor retries
            self.store.commit(name, new, None, fresh, clear_inflight=False)
            seen.add(name, [n.event_id for n in todo], self.tolerance)
            self.published += len(new)
            self.rejected += len(rejects)
        return 200, f"{len(new)} tickets published"


def make_app(endpoints: dict[str, Endpoint], seen: SeenEvents) -> web.Application:
    """The aiohttp application: ``POST /webhooks/{source}``, and ``GET /healthz``."""

    async def receive(request: web.Request) -> web.Response:
        endpoint = endpoints.get(request.match_info["source"])
        if endpoint is None:
            return web.Response(status=404, text="unknown source")
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            status, text = await asyncio.get_running_loop().run_in_executor(None, endpoint.handle, headers, body, seen)
        except Refused as exc:
            log.warning("%s: refused a notification: %s", endpoint.cfg.name, exc.reason)
            return web.Response(status=exc.status, text=exc.reason)
        except (sqlite3.Error, Exception) as exc:  # not acknowledged: the vendor must send it again
            digest = hashlib.sha256(body).hexdigest()[:12]
            log.error("%s: notification %s not published: %s: %s", endpoint.cfg.name, digest,
                      type(exc).__name__, exc)  # fmt: skip
            return web.Response(status=503, text="not published; retry")
        return web.Response(status=status, text=text)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({name: {"published": e.published, "rejected": e.rejected,
                                         "duplicates": e.duplicates} for name, e in endpoints.items()})  # fmt: skip

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/webhooks/{source}", receive)
    app.router.add_get("/healthz", health)
    return app
