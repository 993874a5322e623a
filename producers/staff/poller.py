"""Incremental, checkpointed polling of shifts from POS labour APIs into ``staff.shifts``.

The same machinery as the ticket pollers (producers/pos): a source file (vendor, stores, auth, options), the
vendor client with retries and OAuth refresh, and the SQLite checkpoint store. Neither vendor can filter on
"changed since", so each scope (Square location, Clover merchant) is read over a window of shift *starts*
``[position, now)``: the position stays at the oldest shift still open (up to ``open_shift_max`` back, a
forgotten clock-out is let go) and otherwise ``overlap`` (at least a day) behind the newest start, so clock-outs,
breaks and manager corrections of recent shifts are read again. A shift is published only when it is new or
its content changed (fingerprints in the checkpoint store, committed with the page after Kafka acknowledged
it). A crash between the acknowledgement and the commit sends those shifts again on restart, which is
harmless: a shift is an upsert by ``shift_id`` downstream.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from producers.pos.checkpoint import CheckpointStore
from producers.pos.http import VendorClient
from producers.pos.poller import SyncResult, VendorPoller
from producers.pos.source import SourceConfig
from producers.staff.mapping import ShiftMappingError, clover_shift, scrub_staff, square_timecard
from schemas.storeops import StaffShift
from schemas.topics import STAFF_SHIFTS, deadletter_topic
from tillflow.errors import ConfigError

log = logging.getLogger(__name__)

SQUARE_VERSION = "2025-05-21"
"""Timecards need Square-Version 2025-05-21 or later."""
FIRST_RUN_LOOKBACK = timedelta(days=1)
MIN_OVERLAP = timedelta(days=1)
OPEN_SHIFT_MAX = timedelta(hours=16)


def shift_fingerprint(shift: StaffShift) -> str:
    data = shift.to_json()
    data.pop("ingested_at", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


class ShiftSink(Protocol):
    def send(self, shift: StaffShift) -> None: ...

    def reject(self, source: str, record_id: str, payload: Any, reason: str) -> None: ...

    def flush(self) -> None: ...


class KafkaShiftSink:
    """Shifts to ``staff.shifts`` (keyed by store), rejects to ``staff.shifts.dlq`` without names."""

    def __init__(self, sender: Any, topic: str = STAFF_SHIFTS) -> None:
        self.sender = sender
        self.topic = topic

    def send(self, shift: StaffShift) -> None:
        self.sender.send(self.topic, shift, headers={"source": shift.source, "shift": shift.shift_id})

    def reject(self, source: str, record_id: str, payload: Any, reason: str) -> None:
        body = json.dumps({"source": source, "record": record_id, "error": reason, "payload": scrub_staff(payload)})
        self.sender.send_raw(deadletter_topic(self.topic), record_id.encode(), body.encode(), {"error": reason[:500]})

    def flush(self) -> None:
        self.sender.flush()


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


class LaborAdapter:
    vendor = ""

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg

    def scopes(self) -> list[str]:
        return sorted(self.cfg.stores)

    def pages(self, client: VendorClient, scope: str, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        raise NotImplementedError

    def map(self, record: dict[str, Any], scope: str, ingested_at: datetime) -> StaffShift:
        raise NotImplementedError


class SquareLabor(LaborAdapter):
    """``POST /v2/labor/timecards/search``: filter by location and start range, sorted by START_AT, cursor paging."""

    vendor = "square"

    def pages(self, client: VendorClient, scope: str, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        base = (self.cfg.base_url or "https://connect.squareup.com").rstrip("/")
        body: dict[str, Any] = {
            "query": {
                "filter": {"location_ids": [scope], "start": {"start_at": _iso(start), "end_at": _iso(end)}},
                "sort": {"field": "START_AT", "order": "ASC"},
            },
            "limit": min(self.cfg.page_size, 200),
        }
        while True:
            data = client.request("POST", f"{base}/v2/labor/timecards/search", json=body).json()
            yield list(data.get("timecards") or [])
            if not data.get("cursor"):
                return
            body["cursor"] = data["cursor"]

    def map(self, record: dict[str, Any], scope: str, ingested_at: datetime) -> StaffShift:
        return square_timecard(record, self.cfg.name, self.cfg.stores, ingested_at)


class CloverShifts(LaborAdapter):
    """``GET /v3/merchants/{mId}/shifts?filter=in_time>=..&filter=in_time<..&expand=employee``, offset paging."""

    vendor = "clover"

    def pages(self, client: VendorClient, scope: str, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        base = (self.cfg.base_url or "https://api.clover.com").rstrip("/")
        lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        offset = 0
        while True:
            params = [("filter", f"in_time>={lo}"), ("filter", f"in_time<{hi}"), ("expand", "employee"),
                      ("limit", str(self.cfg.page_size)), ("offset", str(offset))]  # fmt: skip
            data = client.request("GET", f"{base}/v3/merchants/{scope}/shifts", params=params).json()
            shifts = data.get("elements") or []
            yield shifts
            if len(shifts) < self.cfg.page_size:
                return
            offset += len(shifts)

    def map(self, record: dict[str, Any], scope: str, ingested_at: datetime) -> StaffShift:
        return clover_shift(record, self.cfg.name, self.cfg.stores[scope], ingested_at)


LABOR_ADAPTERS: dict[str, Callable[[SourceConfig], LaborAdapter]] = {"square": SquareLabor, "clover": CloverShifts}


def labor_adapter(cfg: SourceConfig) -> LaborAdapter:
    try:
        return LABOR_ADAPTERS[cfg.vendor](cfg)
    except KeyError:
        raise ConfigError(
            f"source {cfg.name}: vendor {cfg.vendor!r} has no shift API here (square and clover do)"
        ) from None


class ShiftPoller(VendorPoller[ShiftSink]):
    """Syncs one labour source's shifts into a sink; the position per scope lives in the checkpoint store."""

    def __init__(self, cfg: SourceConfig, sink: ShiftSink, store: CheckpointStore, client: VendorClient,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 stopped: Callable[[], bool] = lambda: False) -> None:  # fmt: skip
        super().__init__(cfg, sink, store, client, now, stopped)
        self.adapter = labor_adapter(cfg)
        self.overlap = max(cfg.overlap, MIN_OVERLAP)

    def sync(self) -> SyncResult:
        return self._until_stopped(self._sync)

    def _sync(self, result: SyncResult) -> None:
        name = self.cfg.name
        position: dict[str, str] = json.loads(self.store.position(name) or "{}")
        end = self.now()
        for scope in self.adapter.scopes():
            if self.stopped():
                result.stopped = True
                return
            start = datetime.fromisoformat(position[scope]) if scope in position else end - FIRST_RUN_LOOKBACK
            newest: datetime | None = None
            oldest_open: datetime | None = None
            for records in self.adapter.pages(self.client, scope, start, end):
                ingested = self.now()
                shifts: list[StaffShift] = []
                rejects: list[tuple[str, dict[str, Any], str]] = []
                for record in records:
                    try:
                        shifts.append(self.adapter.map(record, scope, ingested))
                    except ShiftMappingError as exc:
                        rejects.append((str(record.get("id")), record, str(exc)))
                keys = [(f"shift:{s.shift_id}", shift_fingerprint(s)) for s in shifts]
                reject_keys = [(f"reject:{rid}", hashlib.sha256((json.dumps(rec, sort_keys=True, default=str) + why)
                                .encode()).hexdigest()[:32]) for rid, rec, why in rejects]  # fmt: skip
                fresh = set(self.store.unseen(name, keys + reject_keys))
                new = [s for s, k in zip(shifts, keys, strict=True) if k in fresh]
                for shift in new:
                    self.sink.send(shift)
                for (rid, rec, why), key in zip(rejects, reject_keys, strict=True):
                    if key in fresh:
                        log.warning("rejected %s: %s", rid, why)
                        self.sink.reject(name, rid, rec, why)
                self.sink.flush()  # raises if Kafka did not acknowledge: nothing is recorded
                self.store.commit(name, [], None, keys=sorted(fresh))
                for s in shifts:
                    newest = s.start_at if newest is None or s.start_at > newest else newest
                    if s.end_at is None and end - s.start_at <= OPEN_SHIFT_MAX:
                        oldest_open = s.start_at if oldest_open is None or s.start_at < oldest_open else oldest_open
                result.pages += 1
                result.records += len(records)
                result.published += len(new)
                result.unchanged += len(shifts) - len(new)
                result.rejected += len(rejects)
                result.errors += [r[2] for r in rejects[:20]]
                if self.stopped():
                    result.stopped = True
                    return
            candidates = [newest - self.overlap] if newest is not None else [end - self.overlap]
            if oldest_open is not None:
                candidates.append(oldest_open)
            position[scope] = max(start, min(candidates)).isoformat()
            self.store.commit(name, [], json.dumps(position, sort_keys=True))
        result.position = position


def labor_auth(adapter: Any) -> Any:
    """The POS adapter's auth for the labour API: Square timecards need Square-Version 2025-05-21 or later."""
    if getattr(adapter, "vendor", "") != "square":
        return adapter
    header = adapter.auth_header

    class _Auth:
        vendor = "square"
        token_request = adapter.token_request

        @staticmethod
        def auth_header(token: str) -> dict[str, str]:
            return {**header(token), "Square-Version": SQUARE_VERSION}

    return _Auth()
