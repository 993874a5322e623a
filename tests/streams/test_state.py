"""The engine's state records (streams/state.py) describe exactly what the engine writes to its tables.

The tables' changelogs are JSON: the typed records keep the keys they always had, so a state written before
them restores unchanged. This checks the keys after a day with silences, alerts and late data."""

from __future__ import annotations

import json
from typing import Any, get_type_hints

from streams.engine import FRAME, TICKET, Engine, StreamConfig
from streams.state import PartitionState, StoreState
from tests.support.events import demo, frame, ticket

WALL = 10**13


def _keys(typed: Any) -> tuple[set[str], set[str]]:
    return set(typed.__required_keys__), set(get_type_hints(typed))


def test_the_state_written_is_what_the_typed_records_name_and_survives_json() -> None:
    parts: dict[str, Any] = {}
    stores: dict[str, Any] = {}
    engine = Engine(demo(), StreamConfig(), {}, stores, parts)
    events = [(FRAME, frame("cam-wg-denim", "wg-denim", f"2026-03-29T{h:02d}:{m:02d}:00+02:00", h * 60 + m, entries=3))
              for h in range(10, 16) for m in range(0, 60, 2)]  # fmt: skip
    events += [(TICKET, ticket("wg-denim", f"2026-03-29T10:{m:02d}:30+02:00", 1500)) for m in range(0, 60, 5)]
    engine.apply(0, sorted(events, key=lambda e: e[1].get("occurred_at") or e[1]["frame_ts"]), WALL)
    engine.tick(0, WALL + 10**6, close_all=True)
    required, known = _keys(PartitionState)
    assert parts and all(required <= set(p) <= known for p in parts.values())
    required, known = _keys(StoreState)
    assert stores and all(required <= set(s) <= known for s in stores.values())
    assert any(s["windows"] for s in stores.values()), "the silent till fired a FEED_SILENT window"
    # What a changelog restores is what was written: the engine goes on from JSON-decoded state.
    restored = Engine(demo(), StreamConfig(), {}, json.loads(json.dumps(stores)), json.loads(json.dumps(parts)))
    assert restored.apply(0, [], WALL + 2 * 10**6).alerts == []
