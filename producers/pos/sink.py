"""Where tickets go: ``pos.tickets`` through RecordSender, rejected records to ``pos.tickets.dlq``.

A sink's ``flush`` returns only when the broker acknowledged everything sent, so callers checkpoint after it.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from producers.sender import RecordSender
from schemas.models import _PERSONAL_DATA, PosTicket
from schemas.topics import POS_TICKETS, deadletter_topic


def scrub(value: Any) -> Any:
    """A vendor payload without the keys that look like customer personal data (for dead-letter records)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not (isinstance(k, str) and _PERSONAL_DATA.search(k))}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


class TicketSink(Protocol):
    def send(self, ticket: PosTicket) -> None: ...

    def reject(self, source: str, record_id: str, payload: Any, reason: str) -> None: ...

    def flush(self) -> None:
        """Block until everything sent is acknowledged; raise if anything was not."""


class KafkaSink:
    """Tickets to ``pos.tickets`` (keyed by store), rejects to ``pos.tickets.dlq`` with the reason."""

    def __init__(self, sender: RecordSender, topic: str = POS_TICKETS) -> None:
        self.sender = sender
        self.topic = topic

    def send(self, ticket: PosTicket) -> None:
        self.sender.send(self.topic, ticket, headers={"source": ticket.source})

    def reject(self, source: str, record_id: str, payload: Any, reason: str) -> None:
        body = json.dumps({"source": source, "record": record_id, "error": reason, "payload": scrub(payload)})
        self.sender.send_raw(
            deadletter_topic(self.topic), record_id.encode(), body.encode(), headers={"error": reason[:500]}
        )

    def flush(self) -> None:
        self.sender.flush()
