"""Forward the spool to the central Kafka in order, with retries, never sending a spooled ticket twice.

One batch is outstanding at a time. Before it is produced, the end offsets of the topic's partitions are
saved in the spool (the in-flight marker); each message carries the headers ``collector`` and ``spool-seq``.
The producer is idempotent and never times a message out (``message.timeout.ms=0``), so while the process
lives a broker outage only delays delivery. After a restart (or power cut) with a batch in flight, the
collector first reads the partitions from the saved offsets and marks as sent every spooled ticket it finds
there, then sends the rest. So each ticket reaches Kafka once.

The marker also holds ``alive``, refreshed every ``HEARTBEAT`` seconds while the batch is outstanding: the
crashed process wrote nothing stamped later than that (plus ``HEARTBEAT`` and a margin for clocks), so the scan
stops there (``offsets_for_times``) instead of reading everything written to a busy topic since the crash.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, Message

from producers.collector.spool import Spool
from producers.tail import CLOCK_MARGIN, end_offsets, header_values_since
from schemas.topics import POS_TICKETS, topic_spec
from tillflow.retry import backoff
from tillflow.sender import RecordSender
from tillflow.settings import Settings

log = logging.getLogger(__name__)

HEARTBEAT = 30.0
"""Seconds between refreshes of the in-flight marker's ``alive`` time while a batch is outstanding."""


class Forwarder:
    def __init__(self, settings: Settings, spool: Spool, collector_id: str, topic: str = POS_TICKETS,
                 batch: int = 500) -> None:  # fmt: skip
        self.settings = settings
        self.spool = spool
        self.collector_id = collector_id
        self.topic = topic
        self.batch = batch
        self.sender = RecordSender(settings, **{"message.timeout.ms": 0, "reconnect.backoff.max.ms": 2000})
        self.outstanding: dict[int, str | None] = {}
        """seq -> None (waiting), 'ok' or an error text."""
        self.sent = 0
        self.kafka_up = False
        self.last_error: str | None = None
        self.failures = 0
        self.retry_at = 0.0
        self._marker: dict[str, Any] | None = None

    # --- broker views ---------------------------------------------------------------------------------------

    def end_offsets(self) -> dict[int, int]:
        return end_offsets(self.settings, self.topic)

    def reconcile(self, marker: dict[str, Any]) -> int:
        """Mark as sent the spooled tickets of an interrupted batch that did reach Kafka; returns how many."""
        start = {int(p): int(o) for p, o in marker["offsets"].items()}
        until_ms = int((marker["alive"] + HEARTBEAT + CLOCK_MARGIN) * 1000) if "alive" in marker else None
        seqs = header_values_since(
            self.settings, self.topic, start, "spool-seq", match=("collector", self.collector_id.encode()),
            until_ms=until_ms,
        )  # fmt: skip
        wanted = set(range(int(marker["first"]), int(marker["last"]) + 1))
        found = sorted({int(s) for s in seqs} & wanted)
        self.spool.mark_sent(found, clear_inflight=True)
        self._marker = None
        log.info("reconciled in-flight batch %s-%s: %d already in Kafka", marker["first"], marker["last"], len(found))
        return len(found)

    # --- sending --------------------------------------------------------------------------------------------

    def _callback(self, seq: int) -> Any:
        def done(error: KafkaError | None, msg: Message) -> None:
            self.outstanding[seq] = "ok" if error is None else error.str()

        return done

    def step(self, wait: float = 0.5) -> int:
        """Start a batch if none is outstanding, wait up to ``wait`` s for acks; returns tickets confirmed.

        After Kafka could not be reached, new attempts wait an exponential, jittered backoff (at most 10 s).
        """
        if not self.outstanding and time.monotonic() < self.retry_at:
            return 0
        try:
            if not self.outstanding:
                marker = self.spool.inflight()
                if marker is not None:
                    self.reconcile(marker)
                batch = self.spool.pending(self.batch)
                if not batch:
                    self.kafka_up = True
                    return 0
                offsets = self.end_offsets()
                self._marker = {"offsets": offsets, "first": batch[0].seq, "last": batch[-1].seq, "alive": time.time()}
                self.spool.set_inflight(self._marker)
                serde = self.sender.serde(self.topic)
                key_field = topic_spec(self.topic).key_field
                for item in batch:
                    self.outstanding[item.seq] = None
                    headers: list[tuple[str, str | bytes | None]] = [
                        ("collector", self.collector_id.encode()),
                        ("spool-seq", str(item.seq).encode()),
                        ("source", item.ticket.source.encode()),
                    ]
                    value = serde.encode(item.ticket)
                    key = str(getattr(item.ticket, key_field)).encode()
                    while True:
                        try:
                            self.sender.producer.produce(self.topic, value=value, key=key, headers=headers,
                                                         on_delivery=self._callback(item.seq))  # fmt: skip
                            break
                        except BufferError:
                            self.sender.producer.poll(0.1)
                            self._heartbeat()
            self._heartbeat()
            self.sender.producer.flush(wait)
        except Exception as exc:  # Kafka or the registry unreachable: keep spooling, retry later
            self._failed(f"{type(exc).__name__}: {exc}")
            return 0
        if any(state is None for state in self.outstanding.values()):
            self.kafka_up = False
            return 0
        ok = [seq for seq, state in self.outstanding.items() if state == "ok"]
        failed = {seq: state for seq, state in self.outstanding.items() if state != "ok"}
        # Refused ones stay spooled and the in-flight marker stays: the next step reconciles, then resends.
        self.spool.mark_sent(ok, clear_inflight=not failed)
        if not failed:
            self._marker = None
        if failed:
            self.last_error = next(iter(failed.values()))
            log.warning("%d tickets refused by Kafka (%s); will retry", len(failed), self.last_error)
        self.outstanding.clear()
        self.kafka_up = True
        self.failures = 0
        self.sent += len(ok)
        return len(ok)

    def _heartbeat(self) -> None:
        """Refresh the in-flight marker's ``alive`` time (at most every ``HEARTBEAT`` seconds)."""
        marker = self._marker
        if marker is not None and time.time() - marker["alive"] >= HEARTBEAT:
            marker["alive"] = time.time()
            self.spool.set_inflight(marker)

    def _failed(self, error: str) -> None:
        self.kafka_up = False
        self.last_error = error
        self.failures += 1
        delay = backoff(self.failures, 0.25, 10.0, jitter=True)
        self.retry_at = time.monotonic() + delay
        log.warning("central Kafka unreachable (%s); next try in %.1fs", error, delay)
