"""Prometheus metrics of ``tillflow simulate`` (served when ``metrics_port`` is set).

Read from the run's :class:`~producers.simulator.output.Summary` when scraped, so sending an event costs
nothing more than the summary's own counting.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from producers.simulator.output import Summary


class SimulatorCollector:
    """``tillflow_simulator_events_total{topic}`` and ``tillflow_simulator_event_time_seconds`` of the run."""

    def __init__(self) -> None:
        self.summary: Summary | None = None

    def collect(self) -> Iterator[Metric]:
        summary = self.summary
        if summary is None:
            return
        events = CounterMetricFamily(
            "tillflow_simulator_events", "Events the simulator sent (duplicates included).", labels=["topic"]
        )
        for topic, n in sorted(summary.per_topic.items()):
            events.add_metric([topic], n)
        yield events
        if summary.last is not None:
            yield GaugeMetricFamily(
                "tillflow_simulator_event_time_seconds",
                "Event time of the last event sent: the simulated clock.",
                value=summary.last.timestamp(),
            )


RUN = SimulatorCollector()
REGISTRY.register(RUN)
