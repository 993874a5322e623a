"""Prometheus metrics of the CDC processes (served when ``metrics_port`` is set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ENGINE_EVENTS = Counter(
    "tillflow_cdc_engine_events", "Change events the embedded Debezium engine published.", ["source"]
)
POLL_EVENTS = Counter("tillflow_cdc_poll_events", "Change events the SQL poller published.", ["source"])
NORMALIZER_EVENTS = Counter("tillflow_cdc_normalizer_events", "Raw change events the normalizer consumed.", ["source"])
TICKETS = Counter("tillflow_cdc_tickets", "PosTickets the normalizer published, by kind.", ["source", "kind"])
DEAD_LETTERS = Counter("tillflow_cdc_dead_letters", "Records the normalizer sent to pos.tickets.dlq.", ["source"])
PENDING = Gauge("tillflow_cdc_pending_tickets", "Tickets waiting for their header, lines or close.", ["source"])
