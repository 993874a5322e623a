"""Prometheus metrics of the POS pollers, file watcher and store collector."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TICKETS = Counter("tillflow_pos_tickets_published_total", "Tickets acknowledged by Kafka.", ["source"])
REJECTED = Counter("tillflow_pos_records_rejected_total", "Vendor records or file lines rejected.", ["source"])
SYNC_ERRORS = Counter("tillflow_pos_sync_errors_total", "Syncs that stopped on an error.", ["source", "kind"])
LAST_SUCCESS = Gauge("tillflow_pos_last_success_timestamp_seconds", "End of the last good sync.", ["source"])
