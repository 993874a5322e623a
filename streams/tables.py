"""Plain (not windowed) Faust tables holding the engine's state; changelog-backed, memory or RocksDB store.

- ``hours``: ``store|zone|hour_start`` -> hour accumulator with dedupe ids (streams.accumulators)
- ``stores``: ``store_id`` -> silence trackers, alert states, history of final hours (baselines)
- ``partitions``: ``p<n>`` -> per-input progress, watermark and open hours of input partition n
- ``history``: ``store_id`` -> compact final hours of the last 35 days (baselines), written at hour close
- ``retained``: ``p<n>`` -> closed hours kept for corrections, written when hours close
- ``peer_groups``: peer group -> recent store-hour messages and UNDERREPORTING states (second stage)

All but ``peer_groups`` are written while processing partition n of the inputs and live in changelog partition n.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Tables:
    """The stream processor's state, one mapping per table (Faust tables in the app, dicts elsewhere)."""

    hours: Any
    stores: Any
    partitions: Any
    history: Any
    retained: Any
    peer_groups: Any

    @classmethod
    def in_memory(cls) -> Tables:
        """Plain dicts: the state of a processor in tests, benches and batch tools."""
        return cls(hours={}, stores={}, partitions={}, history={}, retained={}, peer_groups={})


def define_tables(app: Any, partitions: int) -> Tables:
    def table(name: str, help: str) -> Any:
        return app.Table(name, partitions=partitions, key_type=str, help=help)

    return Tables(
        hours=table("hours", "Accumulators per store (zone) and local hour."),
        stores=table("stores", "Per-store trackers, alert states and final-hour history."),
        partitions=table("partitions", "Per-partition watermark and open hours."),
        history=table("history", "Final-hour history per store for baselines."),
        retained=table("retained", "Closed hours kept for corrections, per partition."),
        peer_groups=table("peer_groups", "Underreporting peer groups."),
    )
