"""Assembling raw change events of the ticket, line and payment tables into ``PosTicket`` records.

Pure logic, no I/O: the caller feeds decoded Debezium envelopes with an explicit clock (``now``, seconds)
and sends what comes back. Rules:

- Rows are kept per ticket; lines and payments may arrive before or after their header.
- A ticket is published once its header has a closed status (``status_map``) and either every transaction
  that touched it is complete (Debezium transaction metadata) or ``settle_s`` passed since its last change.
- A later change of a published ticket publishes a VOID of the standing version (``<id>~void...``) and,
  unless the ticket was deleted or voided, the corrected version ``<id>~r<n>`` with ``original_ticket_id``.
- Each row remembers the source position of its last change: replayed or stale events change nothing, and
  an unchanged ticket is never published twice.
- Tombstones are skipped; what cannot be mapped comes back as a :class:`DeadLetter` with the reason.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from producers.cdc.source import CdcSource, TableSpec
from schemas import money
from schemas.models import Channel, PaymentMethod, PosTicket, TicketKind, reversed_amounts, signed_by_kind
from tillflow.documents import validation_reason
from tillflow.errors import MappingError

ROLES = ("tickets", "lines", "payments")


Ref = tuple[str, int, int]
"""(topic, partition, offset) of a raw record, held until the ticket it fed is published or rejected."""


@dataclass(frozen=True)
class Envelope:
    """A decoded Debezium change event."""

    op: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ts_ms: int
    position: tuple[Any, ...]
    tx_id: str | None


@dataclass(frozen=True)
class Emit:
    ticket: PosTicket


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    ticket_id: str | None
    payload: dict[str, Any]


Output = Emit | DeadLetter


def minor_units(value: Any, currency: str, already_minor: bool = False) -> int:
    """A decimal string (Debezium ``decimal.handling.mode=string``) or number to integer minor units
    (schemas.money: rounded half up below the minor unit, e.g. unit prices with 4 decimals); refuses anything
    not a number with a MappingError."""
    try:
        return money.minor_units(value, currency, "amount", already_minor=already_minor)
    except money.MoneyError as exc:
        raise MappingError(str(exc)) from None


def to_utc(value: Any, zone: ZoneInfo) -> datetime:
    """A Debezium time value to aware UTC.

    Integers are epoch milliseconds of a wall-clock time (``time.precision.mode=connect`` writes a
    ``timestamp without time zone`` as if it were UTC), read in ``zone``; microseconds are accepted too.
    ISO strings with an offset (``ZonedTimestamp``) are exact; without one they are read in ``zone``.
    """
    if isinstance(value, bool) or value is None:
        raise MappingError(f"time {value!r} is not a timestamp")
    if isinstance(value, int | float):
        millis = value / 1000 if abs(value) > 10**14 else value
        naive = datetime.fromtimestamp(millis / 1000, tz=UTC).replace(tzinfo=None)
        return naive.replace(tzinfo=zone).astimezone(UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise MappingError(f"time {value!r} is not ISO 8601") from None
        value = parsed
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    raise MappingError(f"time {value!r} is not a timestamp")


def _position(source: dict[str, Any]) -> tuple[Any, ...]:
    """An orderable position of the change in the source log (per connector kind)."""
    if "lsn" in source and source["lsn"] is not None:  # PostgreSQL
        return (0, int(source["lsn"]), 0)
    if "change_lsn" in source:  # SQL Server: hex strings of equal width compare in order
        return (1, str(source.get("commit_lsn") or ""), str(source.get("change_lsn") or ""))
    if "file" in source and "pos" in source:  # MySQL binlog
        return (2, str(source["file"]), int(source["pos"]) * 10_000 + int(source.get("row") or 0))
    if "seq" in source:  # tillflow's poller
        return (3, int(source["seq"]), 0)
    return (4, int(source.get("ts_ms") or 0), 0)


def transaction_key(tx_id: Any) -> str | None:
    """The key matching a data event to its transaction's END event.

    Debezium's PostgreSQL connector names a transaction ``<xid>:<lsn>`` with the LSN of its first change on
    data events but of its commit on the END event: the xid alone identifies it. MySQL GTIDs
    (``<uuid>:<n>``) and SQL Server commit LSNs are used whole.
    """
    if tx_id is None:
        return None
    text = str(tx_id)
    xid, sep, lsn = text.partition(":")
    return xid if sep and xid.isdigit() and lsn.isdigit() else text


def parse_envelope(value: dict[str, Any]) -> Envelope | None:
    """Read a Debezium value (JSON with or without ``schema``/``payload``, or Avro decoded to a dict).

    Returns None for events that carry no row (heartbeats, schema changes).
    """
    payload = value.get("payload", value) if "schema" in value else value
    if not isinstance(payload, dict) or "op" not in payload:
        return None
    op = payload["op"]
    if op not in ("c", "u", "d", "r"):
        if op == "t":  # truncate: nothing per row to do
            return None
        raise MappingError(f"unknown operation {op!r}")
    source = payload.get("source") or {}
    tx = payload.get("transaction") or {}
    tx_id = transaction_key(tx.get("id")) if isinstance(tx, dict) else None
    ts = payload.get("ts_ms") or source.get("ts_ms") or 0
    return Envelope(op, payload.get("before"), payload.get("after"), int(ts), _position(source), tx_id)


@dataclass
class _Row:
    data: dict[str, Any] | None
    """None: deleted."""
    position: tuple[Any, ...]


@dataclass
class TicketState:
    """What is known of one ticket: its rows and what was last published for it."""

    header: _Row | None = None
    lines: dict[str, _Row] = field(default_factory=dict)
    payments: dict[str, _Row] = field(default_factory=dict)
    fingerprint: str | None = None
    versions: int = 0
    standing: dict[str, Any] | None = None
    """The published PosTicket (JSON form) that stands, None if none or reversed."""

    def to_json(self) -> dict[str, Any]:
        def rows(d: dict[str, _Row]) -> dict[str, Any]:
            return {k: [r.data, list(r.position)] for k, r in d.items()}

        return {
            "header": None if self.header is None else [self.header.data, list(self.header.position)],
            "lines": rows(self.lines),
            "payments": rows(self.payments),
            "fingerprint": self.fingerprint,
            "versions": self.versions,
            "standing": self.standing,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TicketState:
        def rows(d: dict[str, Any]) -> dict[str, _Row]:
            return {k: _Row(v[0], tuple(v[1])) for k, v in d.items()}

        h = data.get("header")
        return cls(
            header=None if h is None else _Row(h[0], tuple(h[1])),
            lines=rows(data["lines"]),
            payments=rows(data["payments"]),
            fingerprint=data.get("fingerprint"),
            versions=data.get("versions", 0),
            standing=data.get("standing"),
        )


class StateStore(Protocol):
    """Where published tickets' states live between runs (the normalizer loop keeps them in SQLite)."""

    def get(self, key: str) -> TicketState | None: ...

    def put(self, key: str, state: TicketState) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> TicketState | None:
        raw = self.data.get(key)
        return None if raw is None else TicketState.from_json(raw)

    def put(self, key: str, state: TicketState) -> None:
        self.data[key] = state.to_json()


@dataclass
class _Pending:
    state: TicketState
    first_seen: float
    last_change: float
    ts_ms: int = 0
    refs: list[Ref] = field(default_factory=list)
    tx_ids: set[str] = field(default_factory=set)


class TicketAssembler:
    """Feeds on change events, returns PosTickets and dead letters. See the module docstring."""

    def __init__(
        self, source: CdcSource, store: StateStore | None = None, settle_s: float = 2.0, max_wait_s: float = 300.0
    ) -> None:
        self.source = source
        self.store: StateStore = store if store is not None else MemoryStore()
        self.settle_s = settle_s
        self.max_wait_s = max_wait_s
        self.tx_grace_s = min(0.25, settle_s)
        self.zone = ZoneInfo(source.timezone)
        self.specs: dict[str, TableSpec] = {
            "tickets": source.tables.tickets,
            "lines": source.tables.lines,
            "payments": source.tables.payments,
        }
        self._allow = {role: frozenset(spec.allowlist) for role, spec in self.specs.items()}
        self._pending: dict[str, _Pending] = {}
        self._tx_expected: dict[str, dict[str, int]] = {}
        self._tx_seen: dict[str, dict[str, int]] = {}
        self._tx_done: set[str] = set()
        self._held: dict[tuple[str, int], list[int]] = {}
        self._released: dict[tuple[str, int], set[int]] = {}
        self.stats = {"events": 0, "tombstones": 0, "stale": 0, "published": 0, "dead_letters": 0, "transactions": 0}

    # --- offsets -----------------------------------------------------------------------------------
    def _hold(self, ref: Ref | None) -> None:
        if ref is not None:
            heapq.heappush(self._held.setdefault((ref[0], ref[1]), []), ref[2])

    def _release(self, refs: Iterable[Ref]) -> None:
        """Release held offsets (a record never held needs no release: nothing waits for it)."""
        for topic, part, offset in refs:
            self._released.setdefault((topic, part), set()).add(offset)

    def lowest_held(self, topic: str, partition: int) -> int | None:
        """The lowest offset of this partition still needed by an unpublished ticket (None: none held)."""
        heap = self._held.get((topic, partition))
        released = self._released.get((topic, partition), set())
        while heap and heap[0] in released:
            released.discard(heapq.heappop(heap))
        return heap[0] if heap else None

    # --- input -------------------------------------------------------------------------------------
    def _row_id(self, role: str, row: dict[str, Any]) -> str:
        spec = self.specs[role]
        col = spec.columns["line_id" if role == "lines" else "payment_id"]
        if row.get(col) is None:
            raise MappingError(f"{spec.name}: row has no {col} (the {role[:-1]} id)")
        return str(row[col])

    def _ticket_id(self, role: str, row: dict[str, Any] | None, key: Any) -> str:
        col = self.specs[role].columns["ticket_id"]
        if row is not None and row.get(col) is not None:
            return str(row[col])
        if isinstance(key, dict) and key.get(col) is not None:  # message.key.columns carries the ticket id
            return str(key[col])
        raise MappingError(f"{self.specs[role].name}: change has no {col}; set REPLICA IDENTITY FULL on the table")

    def _state(self, ticket_id: str, now: float) -> _Pending:
        pending = self._pending.get(ticket_id)
        if pending is None:
            stored = self.store.get(ticket_id)
            pending = _Pending(stored or TicketState(), now, now)
            self._pending[ticket_id] = pending
        return pending

    def apply(
        self, role: str, value: dict[str, Any] | None, now: float, key: Any = None, ref: Ref | None = None
    ) -> list[Output]:
        """Take one change event of ``role`` (tickets, lines or payments). Returns dead letters at once;
        tickets come out of :meth:`tick`."""
        self.stats["events"] += 1
        if value is None:  # tombstone after a delete
            self.stats["tombstones"] += 1
            return []
        try:
            env = parse_envelope(value)
            if env is None:
                return []
            row = env.after if env.op != "d" else env.before
            ticket_id = self._ticket_id(role, row, key)
            row_id = self._row_id(role, row or {}) if role != "tickets" else ""
        except MappingError as exc:
            self.stats["dead_letters"] += 1
            return [DeadLetter(f"{role}: {exc}", None, {"role": role, "key": key, "value": value})]
        pending = self._state(ticket_id, now)
        state = pending.state
        rows = None if role == "tickets" else (state.lines if role == "lines" else state.payments)
        current = state.header if rows is None else rows.get(row_id)
        if current is not None and current.position >= env.position:
            self.stats["stale"] += 1  # a replay or an older event: the row already reflects it
            if not pending.refs and state.fingerprint is not None:
                self._pending.pop(ticket_id, None)  # nothing new: forget it again
            return []
        allow = self._allow[role]
        data = None if env.op == "d" else {k: v for k, v in (env.after or {}).items() if k in allow}
        new = _Row(data, env.position)
        if rows is None:
            state.header = new
        else:
            rows[row_id] = new
        pending.last_change = now
        pending.ts_ms = max(pending.ts_ms, env.ts_ms)
        if ref is not None:
            pending.refs.append(ref)
            self._hold(ref)
        if env.tx_id:
            pending.tx_ids.add(env.tx_id)
            seen = self._tx_seen.setdefault(env.tx_id, {})
            table = self.specs[role].name
            seen[table] = seen.get(table, 0) + 1
        return []

    def apply_transaction(self, value: dict[str, Any] | None) -> None:
        """Take a Debezium transaction metadata event (BEGIN/END with per-table event counts)."""
        if not value:
            return
        payload = value.get("payload", value) if "schema" in value else value
        if payload.get("status") != "END":
            return
        expected: dict[str, int] = {}
        for entry in payload.get("data_collections") or []:
            table = str(entry.get("data_collection", "")).rsplit(".", 1)[-1]
            expected[table] = int(entry.get("event_count", 0))
        key = transaction_key(payload.get("id"))
        if key is not None:
            self._tx_expected[key] = expected

    def _ready(self, pending: _Pending, now: float) -> bool:
        """Every transaction that touched the ticket is complete (and ``tx_grace_s`` passed, for events of an
        earlier transaction still in flight on another topic); or, while a transaction's END is unknown (no
        metadata, or not read yet), ``settle_s`` passed since the last change. A transaction whose END says
        events are still missing holds the ticket for up to ``max_wait_s``."""
        quiet = now - pending.last_change
        if not pending.tx_ids:
            return quiet >= self.settle_s
        complete = [self._tx_complete(t) for t in pending.tx_ids]
        if all(complete):
            return quiet >= self.tx_grace_s
        if any(t in self._tx_expected for t, done in zip(pending.tx_ids, complete, strict=True) if not done):
            return quiet >= self.max_wait_s
        return quiet >= self.settle_s

    def _tx_complete(self, tx_id: str) -> bool:
        if tx_id in self._tx_done:
            return True
        expected = self._tx_expected.get(tx_id)
        if expected is None:
            return False
        seen = self._tx_seen.get(tx_id, {})
        if all(seen.get(t, 0) >= n for t, n in expected.items()):
            self.stats["transactions"] += 1
            self._tx_done.add(tx_id)
            self._tx_expected.pop(tx_id, None)
            self._tx_seen.pop(tx_id, None)
            return True
        return False

    # --- output ------------------------------------------------------------------------------------
    def tick(self, now: float, flush: bool = False) -> list[Output]:
        """Publish the tickets that are ready; dead-letter rows whose header never came within max_wait_s.

        ``flush``: treat every settled wait as elapsed (end of a bounded input, shutdown).
        """
        outputs: list[Output] = []
        if len(self._tx_done) > 100_000 or len(self._tx_seen) > 100_000:
            self._tx_done.clear()  # bounded memory; waiting tickets fall back to settle_s
            self._tx_seen.clear()
            self._tx_expected.clear()
        for ticket_id in list(self._pending):
            pending = self._pending[ticket_id]
            header = pending.state.header
            if header is None:
                if now - pending.first_seen >= self.max_wait_s:
                    outputs.append(self._orphan(ticket_id, pending))
                continue
            if not (flush or self._ready(pending, now)):
                continue
            outputs.extend(self._evaluate(ticket_id, pending, now))
        return outputs

    def _orphan(self, ticket_id: str, pending: _Pending) -> DeadLetter:
        self._pending.pop(ticket_id)
        self._release(pending.refs)
        self.stats["dead_letters"] += 1
        state = pending.state
        return DeadLetter(
            f"ticket {ticket_id}: lines or payments without a ticket header after {self.max_wait_s:.0f}s",
            ticket_id,
            {
                "lines": [r.data for r in state.lines.values()],
                "payments": [r.data for r in state.payments.values()],
            },
        )

    def _fingerprint(self, state: TicketState) -> str:
        content = [
            None if state.header is None else state.header.data,
            sorted((k, r.data) for k, r in state.lines.items() if r.data is not None),
            sorted((k, r.data) for k, r in state.payments.items() if r.data is not None),
        ]
        return hashlib.sha1(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()

    def _evaluate(self, ticket_id: str, pending: _Pending, now: float) -> list[Output]:
        state = pending.state
        header = state.header
        assert header is not None
        spec = self.specs["tickets"]
        status_col = spec.columns.get("status")
        deleted = header.data is None
        status = None if deleted or status_col is None else header.data.get(status_col)  # type: ignore[union-attr]
        if not deleted and status is not None and str(status) in self.source.open_statuses:
            return []  # still open: wait for it to close, however long
        outputs: list[Output] = []
        fingerprint = self._fingerprint(state)
        try:
            if fingerprint != state.fingerprint:
                kind = None if deleted else self._kind(status)
                outputs = self._publish(ticket_id, state, kind, pending.ts_ms)
        except (MappingError, ValidationError) as exc:
            reason = str(exc) if isinstance(exc, MappingError) else validation_reason(exc)
            self.stats["dead_letters"] += 1
            self._pending.pop(ticket_id)
            self._release(pending.refs)
            return [
                DeadLetter(
                    f"ticket {ticket_id}: {reason}",
                    ticket_id,
                    {
                        "header": header.data,
                        "lines": [r.data for r in state.lines.values()],
                        "payments": [r.data for r in state.payments.values()],
                    },
                )
            ]
        state.fingerprint = fingerprint
        self.store.put(ticket_id, state)
        self._pending.pop(ticket_id)
        self._release(pending.refs)
        self.stats["published"] += len(outputs)
        return outputs

    def _kind(self, status: Any) -> TicketKind:
        if "status" not in self.specs["tickets"].columns:
            return TicketKind.SALE
        kind = self.source.status_map.get(str(status))
        if kind is None:
            raise MappingError(
                f"status {status!r} is neither in status_map ({', '.join(self.source.status_map)}) "
                f"nor in open_statuses ({', '.join(self.source.open_statuses)})"
            )
        return kind

    def _publish(self, ticket_id: str, state: TicketState, kind: TicketKind | None, ts_ms: int) -> list[Output]:
        """Tickets to send for the new content; updates ``state.versions``/``standing``."""
        ingested = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
        outputs: list[Output] = []
        if state.standing is not None and state.standing["kind"] != TicketKind.VOID.value:
            void = reversed_amounts(dict(PosTicket.model_validate(state.standing)))
            void.update(
                ticket_id=f"{state.standing['ticket_id']}~void",
                kind=TicketKind.VOID.value,
                original_ticket_id=state.standing["ticket_id"],
                occurred_at=ingested,
                ingested_at=ingested,
            )
            outputs.append(Emit(PosTicket.model_validate(void)))
            state.standing = None
        if kind is None or (kind == TicketKind.VOID and state.versions > 0):
            return outputs  # deleted, or voided after publication: the VOID above reverses it
        version = state.versions + 1
        ticket = self._build(ticket_id, state, kind, ingested)
        if version > 1:
            ticket = ticket.model_copy(update={"ticket_id": f"{ticket_id}~r{version}", "original_ticket_id": ticket_id})
        outputs.append(Emit(ticket))
        state.versions = version
        state.standing = ticket.to_json()
        return outputs

    def _build(self, ticket_id: str, state: TicketState, kind: TicketKind, ingested: datetime) -> PosTicket:
        src = self.source
        h = state.header.data if state.header else None
        assert h is not None
        cols = self.specs["tickets"].columns

        def col(field: str, default: Any = None) -> Any:
            name = cols.get(field)
            return h.get(name, default) if name else default

        currency = str(col("currency") or src.currency)

        def money(value: Any, what: str) -> int:
            try:
                return minor_units(value, currency, src.amounts_in_minor_units)
            except MappingError as exc:
                raise MappingError(f"{what}: {exc}") from None

        lines = []
        lc = self.specs["lines"].columns
        for line_id, row in sorted(state.lines.items(), key=lambda kv: _natural(kv[0])):
            if row.data is None:
                continue
            r = row.data

            def lget(field: str, r: dict[str, Any] = r) -> Any:
                return r.get(lc[field]) if field in lc else None

            try:
                quantity = float(Decimal(str(lget("quantity"))))
            except (InvalidOperation, ValueError):
                raise MappingError(f"line {line_id}: quantity {lget('quantity')!r} is not a number") from None
            lines.append(
                {
                    "sku": str(lget("sku") or ""),
                    "description": lget("description"),
                    "quantity": quantity,
                    "unit_price": money(lget("unit_price"), f"line {line_id} unit_price"),
                    "discount_amount": money(lget("discount_amount") or 0, f"line {line_id} discount_amount"),
                    "net_amount": money(lget("net_amount"), f"line {line_id} net_amount"),
                    "category": lget("category"),
                }
            )
        payments = []
        pc = self.specs["payments"].columns
        for pay_id, row in sorted(state.payments.items(), key=lambda kv: _natural(kv[0])):
            if row.data is None:
                continue
            tender = str(row.data.get(pc["method"]) or "")
            method = src.method_map.get(tender) or src.method_map.get(tender.lower()) or PaymentMethod.OTHER
            payments.append({"method": method, "amount": money(row.data.get(pc["amount"]), f"payment {pay_id} amount")})
        occurred = col("occurred_at")
        if occurred is None:
            raise MappingError(f"{cols['occurred_at']} is empty on a closed ticket")
        channel = col("channel")
        try:
            channel_value = Channel(str(channel).upper()) if channel else Channel.IN_STORE
        except ValueError:
            raise MappingError(f"channel {channel!r} is not one of {[c.value for c in Channel]}") from None
        # POS databases keep refunds and voids as positive figures with a status; the contract signs them.
        return PosTicket.model_validate(
            signed_by_kind(
                {
                    "ticket_id": ticket_id,
                    "source": src.name,
                    "store_id": str(col("store_id") or src.store_id or ""),
                    "tenant_id": src.tenant_id,
                    "terminal_id": None if col("terminal_id") is None else str(col("terminal_id")),
                    "kind": kind,
                    "occurred_at": to_utc(occurred, self.zone),
                    "currency": currency,
                    "gross_amount": money(col("gross_amount"), "gross_amount"),
                    "net_amount": money(col("net_amount"), "net_amount"),
                    "tax_amount": money(col("tax_amount", 0) or 0, "tax_amount"),
                    "discount_amount": money(col("discount_amount", 0) or 0, "discount_amount"),
                    "payments": payments,
                    "channel": channel_value,
                    "lines": lines,
                    "ingested_at": ingested,
                }
            )
        )

    @property
    def pending_count(self) -> int:
        return len(self._pending)


def _natural(key: str) -> tuple[int, Any]:
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)
