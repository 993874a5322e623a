"""`tillflow produce` and `tillflow simulate` against the real local broker and registry (the `stack` fixture)."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from typer.testing import CliRunner

from producers.simulator import SimulationConfig, simulate
from schemas.models import CameraCount, PosTicket
from schemas.serde import TopicSerde, registry_client
from tests.producers.test_jsonl import GOOD_TICKET, bad_file
from tillflow.cli import app
from tillflow.kafka import consumer_config, endpoints
from tillflow.settings import Settings


def _consumer(settings: Settings) -> Consumer:
    return Consumer(consumer_config(settings, f"test-{time.time_ns()}", **{"enable.auto.commit": False}))


def watermarks(settings: Settings, topic: str) -> dict[int, int]:
    """The high watermark of each partition of ``topic``."""
    consumer = _consumer(settings)
    try:
        meta = consumer.list_topics(topic, timeout=10)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.topics[topic].partitions
        }
    finally:
        consumer.close()


def read_topic(
    settings: Settings, topic: str, since: dict[int, int], timeout: float = 30.0
) -> list[tuple[bytes, bytes]]:
    """The messages (key, value) of ``topic`` from offsets ``since`` up to today's high watermarks."""
    ends = watermarks(settings, topic)
    consumer = _consumer(settings)
    try:
        consumer.assign([TopicPartition(topic, p, since.get(p, 0)) for p in ends])
        got: list[tuple[bytes, bytes]] = []
        done = {p for p, end in ends.items() if end <= since.get(p, 0)}
        deadline = time.monotonic() + timeout
        while len(done) < len(ends) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append((msg.key(), msg.value()))
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        assert len(done) == len(ends), f"timed out reading {topic}"
        return got
    finally:
        consumer.close()


@pytest.fixture
def stack_env(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI (which loads its own settings) at the test stack."""
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(stack.state_dir))
    return stack


def test_produce_sends_valid_lines_and_keeps_bad_ones(stack_env: Settings, tmp_path: Path) -> None:
    path = bad_file(tmp_path)
    before = watermarks(stack_env, "pos.tickets")
    result = CliRunner().invoke(app, ["produce", "--topic", "pos.tickets", str(path)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "2 records sent to pos.tickets" in text and "5 line(s) rejected" in text
    kept = (tmp_path / "tickets.rejects.jsonl").read_text()
    assert "@" not in kept  # the rejects file keeps the field's name and the reason, never the e-mail address
    rejects = [json.loads(line) for line in kept.splitlines()]
    originals = path.read_text().splitlines()
    assert rejects == [
        {"line": 2, "reason": "not JSON: Expecting property name enclosed in double quotes at column 2",
         "original": originals[1]},
        {"line": 3, "reason": "field 'customer_email' looks like customer personal data; tillflow does not accept it",
         "original": json.dumps({**json.loads(originals[2]), "customer_email": "<redacted>"})},
        {"line": 5, "reason": "occurred_at: timestamp 2026-03-30T14:05:00 has no UTC offset", "original": originals[4]},
        {"line": 7, "reason": "expected a JSON object, got list", "original": originals[6]},
        {"line": 8, "reason": "currency: Field required", "original": originals[7]},
    ]  # fmt: skip
    messages = read_topic(stack_env, "pos.tickets", before)
    serde = TopicSerde(registry_client(endpoints(stack_env).registry_url), "pos.tickets")
    decoded = sorted(serde.decode_model(value).ticket_id for _, value in messages)  # type: ignore[attr-defined]
    assert decoded == ["t-1", "t-4"]
    assert {key for key, _ in messages} == {b"wg-volt"}


def test_produce_a_clean_file_exits_zero(stack_env: Settings, tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(bad_file(tmp_path).read_text().splitlines()[0] + "\n")
    result = CliRunner().invoke(app, ["produce", "-t", "pos.tickets", str(path)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "ok.rejects.jsonl").exists()
    unknown = CliRunner().invoke(app, ["produce", "-t", "nope", str(path)])
    assert unknown.exit_code == 1 and "unknown topic 'nope'" in unknown.output


def test_produce_rejects_what_avro_cannot_hold_and_sends_the_rest(stack_env: Settings, tmp_path: Path) -> None:
    """Out-of-range numbers, booleans, NaN and strings UTF-8 cannot hold are rejects, not a crash; the good
    lines around them are delivered. A later clean run of the same file removes the stale rejects file."""
    line = GOOD_TICKET["lines"][0]  # type: ignore[index]
    rows = [
        {**GOOD_TICKET, "ticket_id": "big-1"},
        {**GOOD_TICKET, "ticket_id": "big-2", "gross_amount": 2**70},
        {**GOOD_TICKET, "ticket_id": "big-3", "tax_amount": True},
        {**GOOD_TICKET, "ticket_id": "big-4", "lines": [{**line, "quantity": float("nan")}]},
        {**GOOD_TICKET, "ticket_id": "big-5", "lines": [{**line, "description": "caf\udc80"}]},
        {**GOOD_TICKET, "ticket_id": "big-6"},
    ]
    path = tmp_path / "edge.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    before = watermarks(stack_env, "pos.tickets")
    result = CliRunner().invoke(app, ["produce", "-t", "pos.tickets", str(path)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "2 records sent to pos.tickets" in text and "4 line(s) rejected" in text
    rejects_path = tmp_path / "edge.rejects.jsonl"
    rejects = [json.loads(x) for x in rejects_path.read_text().splitlines()]
    assert [(r["line"], r["original"]) for r in rejects] == [(n, json.dumps(rows[n - 1])) for n in (2, 3, 4, 5)]
    reasons = [r["reason"] for r in rejects]
    assert reasons[0] == "gross_amount: Input should be less than or equal to 9223372036854775807"
    assert reasons[1] == "tax_amount: expected a number, got bool True"
    assert reasons[2] == "lines.0.quantity: Input should be a finite number"
    # a lone surrogate is refused by the bounded string field itself, which names the field
    assert (
        reasons[3]
        == "lines.0.description: Input should be a valid string, unable to parse raw data as a unicode string"
    )
    messages = read_topic(stack_env, "pos.tickets", before)
    serde = TopicSerde(registry_client(endpoints(stack_env).registry_url), "pos.tickets")
    assert sorted(serde.decode_model(v).ticket_id for _, v in messages) == ["big-1", "big-6"]  # type: ignore[attr-defined]

    path.write_text(json.dumps(rows[0]) + "\n")
    again = CliRunner().invoke(app, ["produce", "-t", "pos.tickets", str(path)])
    assert again.exit_code == 0, again.output
    assert not rejects_path.exists() and "removed" in again.output
    not_rejects = tmp_path / "notes.txt"
    not_rejects.write_text("my notes\n")  # a --rejects path that is no rejects file is left alone
    kept = CliRunner().invoke(app, ["produce", "-t", "pos.tickets", "--rejects", str(not_rejects), str(path)])
    assert kept.exit_code == 0 and not_rejects.read_text() == "my notes\n"


def test_simulate_to_kafka_delivers_every_event(stack_env: Settings, small_catalogue_file: Path) -> None:
    before = {t: watermarks(stack_env, t) for t in ("pos.tickets", "camera.counts")}
    args = ["simulate", "--catalogue", str(small_catalogue_file), "--start", "2026-03-30", "--seed", "4",
            "--fps", "0.05", "--fast", "-q", "-i", "duplicate:fraction=0.01"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    from tests.producers.conftest import small_catalogue

    events = list(simulate(small_catalogue(), SimulationConfig(seed=4, start=date(2026, 3, 30), fps=0.05,
                                                               incidents=["duplicate:fraction=0.01"])))  # fmt: skip
    registry = registry_client(endpoints(stack_env).registry_url)
    for topic, model in (("pos.tickets", PosTicket), ("camera.counts", CameraCount)):
        serde = TopicSerde(registry, topic)
        got = [serde.decode_model(v) for _, v in read_topic(stack_env, topic, before[topic])]
        sent = [ev.record for ev in events if ev.topic == topic]
        key = (lambda r: (r.ticket_id, r.ingested_at)) if model is PosTicket else (lambda r: (r.camera_id, r.frame_seq))
        assert sorted(map(key, got)) == sorted(map(key, sent))  # type: ignore[arg-type]
        assert {type(r) for r in got} == {model}


def _partitions_by_key(settings: Settings, topic: str, since: dict[int, int]) -> dict[bytes, set[int]]:
    """Each key of the messages ``topic`` got since offsets ``since``, with the partitions it landed on."""
    ends = watermarks(settings, topic)
    consumer = _consumer(settings)
    try:
        consumer.assign([TopicPartition(topic, p, since.get(p, 0)) for p in ends])
        found: dict[bytes, set[int]] = {}
        left = sum(end - since.get(p, 0) for p, end in ends.items())
        deadline = time.monotonic() + 30
        while left > 0 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            found.setdefault(msg.key(), set()).add(msg.partition())
            left -= 1
        assert left == 0, f"timed out reading {topic}"
        return found
    finally:
        consumer.close()


def test_a_stores_tickets_and_camera_counts_share_a_partition_number(
    stack_env: Settings, small_catalogue_file: Path
) -> None:
    """`tillflow simulate`'s producer path keys both topics by store and partitions like Java clients
    (murmur2, as Faust, Debezium and Kafka Connect do): a store's events meet in one stream task."""
    from aiokafka.partitioner import murmur2

    topics = ("pos.tickets", "camera.counts")
    before = {t: watermarks(stack_env, t) for t in topics}
    args = ["simulate", "--catalogue", str(small_catalogue_file), "--start", "2026-03-31", "--seed", "5",
            "--fps", "0.05", "--fast", "-q"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    tickets, counts = (_partitions_by_key(stack_env, t, before[t]) for t in topics)
    stores = {s.encode() for s in ("ber-fashion", "kol-food", "ktm-sports", "ber-24h")}
    assert set(tickets) == set(counts) == stores
    partitions = len(watermarks(stack_env, "pos.tickets"))
    assert partitions == len(watermarks(stack_env, "camera.counts")) == 3
    for store in stores:
        java = (murmur2(store) & 0x7FFFFFFF) % partitions
        assert tickets[store] == counts[store] == {java}, store
    assert len({p for ps in tickets.values() for p in ps}) > 1  # the stores really are spread over partitions


def test_produce_refuses_a_ticket_in_another_currency_than_its_stores_and_lines_against_the_kinds_sign(
    stack_env: Settings, tmp_path: Path
) -> None:
    """A USD ticket at a EUR store would be summed into the store's EUR revenue: refused, as the stream worker
    refuses it (one check, schemas.catalogue.Store.currency_problem). A SALE line of quantity -1 with positive
    amounts is refused by the contract (lines carry the ticket kind's sign). Both name the ticket."""
    line = GOOD_TICKET["lines"][0]  # type: ignore[index]
    rows = [
        {**GOOD_TICKET, "ticket_id": "cur-1"},
        {**GOOD_TICKET, "ticket_id": "cur-2", "currency": "USD"},
        {**GOOD_TICKET, "ticket_id": "cur-3", "lines": [line, {**line, "sku": "B", "quantity": -1}]},
        {**GOOD_TICKET, "ticket_id": "cur-4", "store_id": "nyc-soho", "currency": "USD"},
    ]
    path = tmp_path / "currency.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    before = watermarks(stack_env, "pos.tickets")
    result = CliRunner().invoke(app, ["produce", "-t", "pos.tickets", str(path)])
    assert result.exit_code == 1, result.output
    rejects = [json.loads(x) for x in (tmp_path / "currency.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (2, "ticket cur-2: currency 'USD' is not store 'wg-volt''s (EUR)"),
        (3, "SALE ticket cur-3: line 2 (sku B) quantity -1 must be >= 0 (signed amounts)"),
    ]
    messages = read_topic(stack_env, "pos.tickets", before)
    serde = TopicSerde(registry_client(endpoints(stack_env).registry_url), "pos.tickets")
    assert sorted(serde.decode_model(v).ticket_id for _, v in messages) == ["cur-1", "cur-4"]  # type: ignore[attr-defined]
