"""Prometheus metrics of the sinks (served by :func:`tillflow.metrics.serve_metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter(
    "tillflow_sink_records_total",
    "Records a sink consumed, by outcome: written, dead_lettered.",
    ["sink", "topic", "outcome"],
)
BATCH_ROWS = Histogram(
    "tillflow_sink_batch_records",
    "Records per batch written by a sink.",
    ["sink"],
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000, 50000),
)
FLUSH_SECONDS = Histogram(
    "tillflow_sink_flush_seconds",
    "Time to write one batch (retries included) and commit its offsets.",
    ["sink"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ERRORS = Counter(
    "tillflow_sink_errors_total",
    "Failed writes by kind: retryable (server down, retried), rejected (rows sent to the dead-letter topic).",
    ["sink", "kind"],
)
CONSUMER_LAG = Gauge(
    "tillflow_sink_consumer_lag",
    "Records between a sink's position and the end of each partition it owns.",
    ["sink", "topic", "partition"],
)
LAST_FLUSH = Gauge(
    "tillflow_sink_last_flush_timestamp_seconds",
    "Unix time of the last batch a sink wrote and committed.",
    ["sink"],
)
ALERT_DELIVERIES = Counter(
    "tillflow_alert_deliveries_total",
    "Alert deliveries by channel and outcome: delivered, retry, dead, rate_limited, unrouted.",
    ["channel", "outcome"],
)
ALERT_OUTBOX = Gauge(
    "tillflow_alert_outbox_pending",
    "Alert deliveries waiting in the durable outbox (pending and retrying).",
)
ALERT_DEAD = Gauge("tillflow_alert_outbox_dead", "Alert deliveries parked after the last attempt failed.")
