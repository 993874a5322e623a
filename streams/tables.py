"""Plain (not windowed) Faust tables holding the engine's state; changelog-backed, memory or RocksDB store.

- ``hours``: ``store|zone|hour_start`` -> hour accumulator with dedupe ids (streams.metrics)
- ``stores``: ``store_id`` -> silence trackers, alert states, history of final hours (baselines)
- ``partitions``: ``p<n>`` -> newest event time, watermark, open/closed hours of input partition n
- ``peer_groups``: peer group -> recent store-hour messages and UNDERREPORTING states (second stage)

The first three are written while processing partition n of the inputs and live in changelog partition n.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Tables:
    hours: Any
    stores: Any
    partitions: Any
    peer_groups: Any


def define_tables(app: Any, partitions: int) -> Tables:
    def table(name: str, help: str) -> Any:
        return app.Table(name, partitions=partitions, key_type=str, help=help)

    return Tables(
        hours=table("hours", "Accumulators per store (zone) and local hour."),
        stores=table("stores", "Per-store trackers, alert states and final-hour history."),
        partitions=table("partitions", "Per-partition watermark and open hours."),
        peer_groups=table("peer_groups", "Underreporting peer groups."),
    )
