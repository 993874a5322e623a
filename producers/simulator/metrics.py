"""Prometheus metrics of ``tillflow simulate`` (served when ``metrics_port`` is set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter("tillflow_simulator_events_total", "Events the simulator sent (duplicates included).", ["topic"])
CLOCK = Gauge("tillflow_simulator_event_time_seconds", "Event time of the last event sent: the simulated clock.")
