"""Incremental sync of one POS source: pages from the vendor, tickets to the sink, checkpoint after the ack.

Each page is mapped, filtered to the tickets that are new or changed (fingerprints in the checkpoint store),
sent, flushed, and only then recorded with the page's position in one SQLite transaction. A restart starts
from the last recorded position less the overlap window; re-read tickets are recognised and not sent again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from producers.pos.checkpoint import CheckpointStore
from producers.pos.common import MapContext, MappingError
from producers.pos.http import OAuth, StopRequested, TokenFile, VendorClient
from producers.pos.publish import TicketPublisher, note_inflight, reconcile_inflight
from producers.pos.source import SourceConfig
from producers.pos.vendors import Adapter, adapter_for, load_position, start_time
from tillflow.errors import ConfigError

log = logging.getLogger(__name__)

FIRST_RUN_LOOKBACK = timedelta(days=1)
SinkT = TypeVar("SinkT")


def reject_fingerprint(record: dict[str, Any], reason: str) -> str:
    """Identifies one rejection, so a re-read of the same bad record is not dead-lettered again."""
    text = json.dumps(record, sort_keys=True, default=str) + reason
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class SyncResult:
    pages: int = 0
    records: int = 0
    published: int = 0
    unchanged: int = 0
    rejected: int = 0
    position: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stopped: bool = False
    """A stop was asked for: the sync ended after its last acknowledged page, before the end of the range."""


def make_client(cfg: SourceConfig, adapter: Adapter, token_file: TokenFile,
                sleep: Callable[[float], None] | None = None,
                stopped: Callable[[], bool] | None = None) -> VendorClient:  # fmt: skip
    """A vendor client with the source's auth; secrets are read here and never logged. With ``stopped``, a wait
    before a retry ends (StopRequested) as soon as it returns True."""
    kw: dict[str, Any] = {
        "max_attempts": cfg.max_attempts, "backoff_base": cfg.backoff_base, "backoff_max": cfg.backoff_max,
        "retry_after_max": cfg.retry_after_max, "timeout": cfg.timeout, "stopped": stopped,
    }  # fmt: skip
    if sleep is not None:
        kw["sleep"] = sleep
    if cfg.auth.kind == "api_key":
        if cfg.auth.token is None:
            raise ConfigError(f"source {cfg.name}: auth.kind api_key needs auth.token (env or file)")
        return VendorClient(adapter.auth_header, api_key=cfg.auth.token.read(f"source {cfg.name} auth.token"), **kw)
    auth = cfg.auth
    if auth.refresh_token is None:
        raise ConfigError(f"source {cfg.name}: auth.kind oauth2 needs auth.refresh_token (env or file)")
    first = auth.refresh_token
    secret = auth.client_secret.read(f"source {cfg.name} auth.client_secret") if auth.client_secret else None
    oauth = OAuth(
        token_file,
        lambda: first.read(f"source {cfg.name} auth.refresh_token"),
        lambda refresh: adapter.token_request(refresh, secret),
    )
    return VendorClient(adapter.auth_header, oauth=oauth, **kw)


def map_context(cfg: SourceConfig, now: datetime) -> MapContext:
    """What a source's mapping needs beyond the vendor record."""
    return MapContext(source=cfg.name, stores=cfg.stores, ingested_at=now, tenant_id=cfg.tenant_id,
                      currency=cfg.currency, categories=cfg.categories, payment_types=cfg.payment_types)  # fmt: skip


class VendorPoller(Generic[SinkT]):
    """What every poller of a vendor API holds (the ticket poller here, the shift poller of producers/staff): its
    source, a sink, the checkpoint store of its position, the HTTP client, a clock and the stop flag."""

    def __init__(self, cfg: SourceConfig, sink: SinkT, store: CheckpointStore, client: VendorClient,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 stopped: Callable[[], bool] = lambda: False) -> None:  # fmt: skip
        self.cfg = cfg
        self.sink = sink
        self.store = store
        self.client = client
        self.now = now
        self.stopped = stopped

    def _until_stopped(self, run: Callable[[SyncResult], None]) -> SyncResult:
        """``run`` on a fresh result; a stop asked for (StopRequested from the client) ends it with ``stopped``."""
        result = SyncResult()
        try:
            run(result)
        except StopRequested:
            result.stopped = True
        return result


class Poller(VendorPoller[TicketPublisher]):
    """Syncs one source's tickets into a sink, keeping its position in a checkpoint store."""

    def __init__(self, cfg: SourceConfig, sink: TicketPublisher, store: CheckpointStore, client: VendorClient,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 stopped: Callable[[], bool] = lambda: False) -> None:  # fmt: skip
        super().__init__(cfg, sink, store, client, now, stopped)
        self.adapter = adapter_for(cfg)
        self.adapter.now = now

    def context(self) -> MapContext:
        return map_context(self.cfg, self.now())

    def reconcile(self) -> int:
        """After a crash with a page in flight, record as published the tickets of it that reached Kafka."""
        return reconcile_inflight(self.store, self.sink, self.cfg.name)

    def sync(self, since: datetime | None = None, until: datetime | None = None,
             on_progress: Callable[[str, float | None, SyncResult], None] | None = None) -> SyncResult:  # fmt: skip
        """One incremental sync (or a backfill of [since, until)). Raises when the vendor or broker fails;
        everything acknowledged before that is checkpointed. When ``stopped()`` turns True it ends after the
        page being handled (or during a wait to retry), with ``result.stopped`` set."""
        result = self._until_stopped(lambda r: self._sync(since, until, on_progress, r))
        if result.stopped:
            log.info("%s: stopped on request after %d pages; checkpoint saved", self.cfg.name, result.pages)
        return result

    def _sync(self, since: datetime | None, until: datetime | None,
              on_progress: Callable[[str, float | None, SyncResult], None] | None,
              result: SyncResult) -> None:  # fmt: skip
        name = self.cfg.name
        self.reconcile()
        position = self.adapter.migrate(load_position(self.store.position(name)))
        end = until or self.now()
        default_start = end - FIRST_RUN_LOOKBACK
        result.position = position
        for scope in self.adapter.scopes():
            if self.stopped():
                result.stopped = True
                return
            keys = self.adapter.scope_keys(scope)
            if self.adapter.time_based:  # a scope starts where the least advanced of its keys stands
                start = min(start_time(position, k, self.cfg.overlap, since, default_start) for k in keys)
                pages = self.adapter.pages(self.client, scope, start, end, backfill=since is not None)
            else:
                after = 0 if since is not None else position.get(scope)
                pages = self.adapter.pages(self.client, scope, since, end, after=after)
            for page in pages:
                ctx = self.context()
                tickets = []
                rejects: list[tuple[str, dict[str, Any], str]] = []
                for record in page.records:
                    try:
                        tickets.extend(self.adapter.map(record, ctx, scope))
                    except MappingError as exc:
                        rejects.append((self.adapter.record_id(record), record, str(exc)))
                new = self.store.unpublished(name, tickets)
                note_inflight(self.store, self.sink, name, new)
                for ticket in new:
                    self.sink.send(ticket)
                reject_keys = {f"reject:{rid}": reject_fingerprint(rec, why) for rid, rec, why in rejects}
                fresh = self.store.unseen(name, reject_keys.items())
                for record_id, record, reason in rejects:
                    if (f"reject:{record_id}", reject_keys[f"reject:{record_id}"]) in fresh:
                        log.warning("rejected %s: %s", record_id, reason)
                        self.sink.reject(name, record_id, record, reason)
                self.sink.flush()  # raises if the broker did not acknowledge: the position stays where it was
                if page.position is not None and since is None:  # a backfill never moves the position
                    for key in keys:
                        position[key] = self.adapter.later(position.get(key), page.position)
                self.store.commit(name, new, json.dumps(position, sort_keys=True), fresh)
                result.pages += 1
                result.records += len(page.records)
                result.published += len(new)
                result.unchanged += len(tickets) - len(new)
                result.rejected += len(rejects)
                result.errors.extend(r[2] for r in rejects[:20])
                if on_progress is not None:
                    on_progress(scope, page.progress, result)
                if self.stopped():
                    result.stopped = True
                    return
