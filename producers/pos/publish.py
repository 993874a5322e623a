"""Publishing tickets: ``pos.tickets`` through RecordSender, rejected records to ``pos.tickets.dlq``.

(Not a sink of sinks/: this is the producers' side of Kafka.) A publisher's ``flush`` returns only when the
broker acknowledged everything sent, so callers checkpoint after it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

from producers.pos.checkpoint import CheckpointStore, fingerprint
from producers.tail import CLOCK_MARGIN, end_offsets, header_values_since
from schemas.models import _PERSONAL_DATA, PosTicket
from schemas.topics import POS_TICKETS, deadletter_topic
from tillflow.sender import RecordSender
from tillflow.settings import Settings

log = logging.getLogger(__name__)


def scrub(value: Any) -> Any:
    """A vendor payload without the keys that look like customer personal data (for dead-letter records)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not (isinstance(k, str) and _PERSONAL_DATA.search(k))}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


class TicketPublisher(Protocol):
    def send(self, ticket: PosTicket) -> None: ...

    def reject(self, source: str, record_id: str, payload: Any, reason: str) -> None: ...

    def flush(self) -> None:
        """Block until everything sent is acknowledged; raise if anything was not."""


class KafkaTicketPublisher:
    """Tickets to ``pos.tickets`` (keyed by store), rejects to ``pos.tickets.dlq`` with the reason.

    Each ticket carries the header ``ticket`` = ``<ticket_id>|<fingerprint>``; with ``settings`` given, the sink
    can tell which tickets of an interrupted page reached the topic (:meth:`mark`, :meth:`arrived`).
    """

    def __init__(self, sender: RecordSender, settings: Settings | None = None, topic: str = POS_TICKETS) -> None:
        self.sender = sender
        self.settings = settings
        self.topic = topic

    def send(self, ticket: PosTicket) -> None:
        key = f"{ticket.ticket_id}|{fingerprint(ticket)}"
        self.sender.send(self.topic, ticket, headers={"source": ticket.source, "ticket": key})

    def mark(self) -> dict[int, int] | None:
        """The topic's end offsets now (None without settings)."""
        return end_offsets(self.settings, self.topic) if self.settings else None

    def arrived(self, offsets: dict[int, int], source: str, until_ms: int | None = None) -> set[tuple[str, str]]:
        """(ticket_id, fingerprint) of the tickets of ``source`` written after ``offsets`` (and before the first
        record stamped ``until_ms`` or later, when given)."""
        if self.settings is None:
            return set()
        values = header_values_since(
            self.settings, self.topic, offsets, "ticket", match=("source", source.encode()), until_ms=until_ms
        )
        return {(tid, fp) for tid, _, fp in (v.decode().rpartition("|") for v in values)}

    def reject(self, source: str, record_id: str, payload: Any, reason: str) -> None:
        body = json.dumps({"source": source, "record": record_id, "error": reason, "payload": scrub(payload)})
        self.sender.send_raw(
            deadletter_topic(self.topic), record_id.encode(), body.encode(), headers={"error": reason[:500]}
        )

    def flush(self) -> None:
        self.sender.flush()


def note_inflight(store: CheckpointStore, sink: TicketPublisher, source: str, tickets: list[PosTicket]) -> None:
    """Before sending ``tickets`` through a Kafka sink, note them with the topic's end offsets."""
    if not tickets or not isinstance(sink, KafkaTicketPublisher):
        return
    offsets = sink.mark()
    if offsets is not None:
        keys = [[t.ticket_id, fingerprint(t)] for t in tickets]
        marker: dict[str, Any] = {"offsets": offsets, "keys": keys}
        if sink.sender.delivery_timeout_s is not None:
            marker["deliver_by"] = time.time() + sink.sender.delivery_timeout_s
        store.set_inflight(source, marker)


def reconcile_inflight(store: CheckpointStore, sink: TicketPublisher, source: str) -> int:
    """After a crash with tickets in flight, record as published those that reached Kafka; returns how many."""
    marker = store.inflight(source)
    if marker is None or not isinstance(sink, KafkaTicketPublisher):
        return 0
    offsets = {int(p): int(o) for p, o in marker["offsets"].items()}
    wanted = {(k[0], k[1]) for k in marker["keys"]}
    # A record is written within the producer's message.timeout.ms or never: scan no further than that.
    until_ms = int((marker["deliver_by"] + CLOCK_MARGIN) * 1000) if "deliver_by" in marker else None
    found = sink.arrived(offsets, source, until_ms) & wanted
    store.commit(source, [], None, keys=sorted(found))
    log.info("%s: reconciled tickets in flight: %d of %d had reached Kafka", source, len(found), len(wanted))
    return len(found)
