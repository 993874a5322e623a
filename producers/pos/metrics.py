"""Prometheus metrics of the POS pollers, file watcher and store collector."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TICKETS = Counter("tillflow_pos_tickets_published_total", "Tickets acknowledged by Kafka.", ["source"])
REJECTED = Counter("tillflow_pos_records_rejected_total", "Vendor records or file lines rejected.", ["source"])
SYNC_ERRORS = Counter("tillflow_pos_sync_errors_total", "Syncs that stopped on an error.", ["source", "kind"])
LAST_SUCCESS = Gauge("tillflow_pos_last_success_timestamp_seconds", "End of the last good sync.", ["source"])
SYNC_RATE = Gauge(
    "tillflow_pos_sync_rate",
    "Share of the POS's sales of the last local day checked that tillflow ingested (tillflow sync-check).",
    ["source", "store_id"],
)
SYNC_MISSING = Gauge(
    "tillflow_pos_sync_missing_tickets",
    "POS sales of the last local day checked that tillflow lacks.",
    ["source", "store_id"],
)
SYNC_CHECKED = Gauge("tillflow_pos_sync_checked_timestamp_seconds", "End of the last sync check.", ["source"])
