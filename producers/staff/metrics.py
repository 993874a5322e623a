"""Prometheus metrics of the shift pollers and the rota watcher."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SHIFTS = Counter("tillflow_staff_shifts_published_total", "Shifts acknowledged by Kafka.", ["source"])
SHIFTS_REJECTED = Counter("tillflow_staff_records_rejected_total", "Shift records or rota lines rejected.", ["source"])
SHIFT_SYNC_ERRORS = Counter(
    "tillflow_staff_sync_errors_total", "Shift syncs that stopped on an error.", ["source", "kind"]
)
SHIFTS_LAST_SUCCESS = Gauge(
    "tillflow_staff_last_success_timestamp_seconds", "End of the last good shift sync or rota scan.", ["source"]
)
