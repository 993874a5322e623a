"""The engine over the producers' simulator: three days of the demo estate (Berlin's DST Sunday included)
with injected incidents, duplicates and late events. Alerts fire on the injected incidents and nowhere
else, and the final records equal the batch recompute cell by cell."""

from __future__ import annotations

import zlib
from datetime import date

from producers.simulator import SimulationConfig, expected_alerts, injected, simulate
from schemas.models import CameraCount, PosTicket
from schemas.topics import POS_TICKETS
from streams.batch import compare, recompute
from streams.engine import FRAME, TICKET, Engine, Output, StreamConfig
from streams.hours import from_ms
from streams.peers import PeerEngine
from tests.streams.factory import demo

PARTITIONS = 3


def test_engine_on_the_simulated_estate() -> None:
    catalogue = demo()
    config = SimulationConfig(
        seed=7,
        start=date(2026, 3, 28),
        days=3,
        fps=0.2,
        incidents=[
            "sales-drop:store=wg-grocer,at=2026-03-30T15",
            "silent-feed:store=wg-volt,at=2026-03-30T12,for=2h",
            "duplicate:fraction=0.02",
            "late:fraction=0.02,minutes=20",
        ],
    )
    events = list(simulate(catalogue, config))
    engine = Engine(catalogue, StreamConfig(), {}, {}, {})
    peers = PeerEngine(catalogue, StreamConfig().underreporting, {})
    alerts: list[dict] = []
    finals: list[dict] = []

    def collect(out: Output) -> None:
        finals.extend(r for r in out.conversions if r["is_final"])
        alerts.extend(out.alerts)
        for group, message in out.peers:
            alerts.extend(peers.apply(group, message))

    batches: dict[int, list] = {p: [] for p in range(PARTITIONS)}
    wall = 10**13
    for ev in events:
        record = ev.record if isinstance(ev.record, dict) else ev.record.to_json()
        p = zlib.crc32(record["store_id"].encode()) % PARTITIONS
        model = PosTicket if ev.topic == POS_TICKETS else CameraCount
        decoded = model.model_validate(record).to_avro()
        batches[p].append((TICKET if ev.topic == POS_TICKETS else FRAME, decoded))
        if len(batches[p]) >= 300:
            collect(engine.apply(p, batches[p], wall))
            batches[p] = []
    for p in range(PARTITIONS):
        collect(engine.apply(p, batches[p], wall))
        collect(engine.tick(p, wall, close_all=True))
    for group in peers.members:
        alerts.extend(peers.flush(group))

    firing = {(a["kind"], a["store_id"], from_ms(a["hour_start"])) for a in alerts if a["state"] == "FIRING"}
    expected = expected_alerts(injected(catalogue, config))
    assert firing <= expected  # nowhere else
    assert {(kind, store) for kind, store, _ in firing} == {("SALES_DROP", "wg-grocer"), ("FEED_SILENT", "wg-volt")}

    records = [e.record if isinstance(e.record, dict) else e.record.to_json() for e in events]
    tickets = [r for e, r in zip(events, records, strict=True) if e.topic == POS_TICKETS]
    counts = [r for e, r in zip(events, records, strict=True) if e.topic != POS_TICKETS]
    assert compare(finals, recompute(catalogue, tickets, counts)) == []
