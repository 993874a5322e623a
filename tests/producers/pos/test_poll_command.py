"""`tillflow poll` end to end: the local vendor stand-in -> a real noida-db broker -> tickets read back."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from typer.testing import CliRunner

from producers.pos import publish as pos_publish
from producers.pos.checkpoint import CheckpointStore
from producers.pos.http import TokenFile
from producers.pos.poller import Poller, make_client
from producers.pos.publish import KafkaTicketPublisher
from producers.pos.vendors import adapter_for
from producers.tail import CLOCK_MARGIN, bounded_ends, end_offsets, header_values_since
from schemas.topics import POS_TICKETS
from tests.producers.pos.broker import Broker, broker, read_tickets
from tests.producers.pos.vendor_server import vendor_server
from tests.support.pos import add_refund, add_sale, config, sale_id
from tillflow.cli import app
from tillflow.kafka import client_config
from tillflow.sender import RecordSender
from tillflow.settings import Settings

NOW = datetime.now(UTC).replace(microsecond=0)
__all__ = ["broker"]  # the fixture


def test_poll_publishes_each_ticket_once_and_rejects_to_dlq(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = broker.settings(tmp_path / "state")
    monkeypatch.setenv("TILLFLOW_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("TILLFLOW_REGISTRY_URL", broker.registry.url)
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SQUARE_TOKEN", "static-token")
    runner = CliRunner()
    with vendor_server() as (base, st):
        for i in range(8):
            add_sale("square", st, i, NOW - timedelta(hours=2) + timedelta(minutes=i))
        st.square["SQ000005ORDER"]["total_money"] = {"amount": 1232}  # no currency: a bad record
        st.square["SQ000005ORDER"]["customer_id"] = "SECRET-CUSTOMER"
        source = tmp_path / "square.yaml"
        source.write_text(
            f"name: square-e2e\nvendor: square\nbase_url: {base}\nstores: {{L8RY5ZZ0T8RZM: s1}}\n"
            "auth: {kind: api_key, token: {env: SQUARE_TOKEN}}\npage_size: 3\n"
        )
        first = runner.invoke(app, ["poll", str(source)])
        assert first.exit_code == 0, first.output
        assert "7 tickets published" in first.output and "1 rejected" in first.output
        add_refund("square", st, 2, NOW - timedelta(minutes=1))
        second = runner.invoke(app, ["poll", str(source)])
        assert second.exit_code == 0, second.output
        backfill = runner.invoke(app, ["poll", str(source), "--since", (NOW - timedelta(days=1)).isoformat()])
        assert backfill.exit_code == 0, backfill.output
        assert "0 tickets published" in backfill.output
        st.fault("/v2/orders/search", 503, times=20)
        monkeypatch.setenv("TILLFLOW_LOG_LEVEL", "ERROR")
        src_fast = tmp_path / "square-fast.yaml"
        src_fast.write_text(source.read_text() + "max_attempts: 2\nbackoff_base: 0.01\n")
        failed = runner.invoke(app, ["poll", str(src_fast)])
        assert failed.exit_code == 2 and "checkpoint kept" in failed.output

    tickets = [t for t in read_tickets(settings) if t.source == "square-e2e"]
    expected = sorted([*(sale_id("square", i) for i in range(8) if i != 5), "square:SQ000502RETURN"])
    assert sorted(t.ticket_id for t in tickets) == expected  # each exactly once
    dlq = _read_raw(settings, "pos.tickets.dlq")
    [record] = [json.loads(v) for v in dlq if json.loads(v)["source"] == "square-e2e"]
    assert record["record"] == "square:SQ000005ORDER" and "no currency" in record["error"]
    assert "customer_id" not in json.dumps(record) and "SECRET-CUSTOMER" not in json.dumps(record)


def _read_raw(settings: Settings, topic: str) -> list[bytes]:
    consumer = Consumer({**client_config(settings), "group.id": "pos-dlq-test", "auto.offset.reset": "earliest"})
    md = consumer.list_topics(topic, timeout=10).topics[topic]
    parts = [TopicPartition(topic, p, 0) for p in md.partitions]
    ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts}
    consumer.assign(parts)
    out: list[bytes] = []
    while sum(ends.values()) > len(out):
        msg = consumer.poll(5)
        if msg is None:
            break
        if not msg.error():
            out.append(msg.value() or b"")
    consumer.close()
    return out


def test_crash_between_ack_and_checkpoint_does_not_duplicate(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page was acknowledged by Kafka, then the process died before the checkpoint transaction: the
    restarted poller finds that page's tickets in the topic (in-flight marker) and does not send them again."""
    settings = broker.settings(tmp_path / "state")
    monkeypatch.setenv("POS_TEST_TOKEN", "static-token")
    with vendor_server() as (base, st):
        for i in range(9):
            add_sale("square", st, i, NOW - timedelta(hours=2) + timedelta(minutes=i))
        cfg = config("square", base, name="square-crash")
        store = CheckpointStore(tmp_path / "cp.sqlite")
        real_commit = store.commit
        calls: list[int] = []

        def commit_then_die(*args: Any, **kwargs: Any) -> None:
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("power cut")
            real_commit(*args, **kwargs)

        monkeypatch.setattr(store, "commit", commit_then_die)
        client = make_client(cfg, adapter_for(cfg), TokenFile(tmp_path / "tokens.json"))
        with pytest.raises(RuntimeError, match="power cut"):
            Poller(cfg, KafkaTicketPublisher(RecordSender(settings), settings), store, client, now=lambda: NOW).sync()
        marker = store.inflight("square-crash")
        assert marker is not None and abs(marker["deliver_by"] - (time.time() + 300)) < 60  # librdkafka default
        store.close()
        # The busy topic goes on: records of another source stamped after the page could have been written.
        until_ms = int((marker["deliver_by"] + CLOCK_MARGIN) * 1000)
        before = sum(end_offsets(settings, POS_TICKETS).values())
        other = RecordSender(settings)
        template = read_tickets(settings)[0]
        for i in range(40):
            t = template.model_copy(update={"source": "other", "ticket_id": f"other-{i}"})
            value = other.serde(POS_TICKETS).encode(t)
            other.producer.produce(POS_TICKETS, value, t.store_id.encode(), timestamp=until_ms + 3_600_000 + i)
        other.flush()
        assert sum(bounded_ends(settings, POS_TICKETS, until_ms).values()) == before  # the scan stops there
        scans: list[int | None] = []

        def spy(*args: Any, until_ms: int | None = None, **kwargs: Any) -> set[bytes]:
            scans.append(until_ms)
            return header_values_since(*args, until_ms=until_ms, **kwargs)  # type: ignore[misc]

        monkeypatch.setattr(pos_publish, "header_values_since", spy)

        store = CheckpointStore(tmp_path / "cp.sqlite")
        client = make_client(cfg, adapter_for(cfg), TokenFile(tmp_path / "tokens.json"))
        poller = Poller(cfg, KafkaTicketPublisher(RecordSender(settings), settings), store, client, now=lambda: NOW)
        result = poller.sync()
        assert result.published == 3 and store.inflight("square-crash") is None
        assert scans == [until_ms]
    counts = Counter(t.ticket_id for t in read_tickets(settings) if t.source == "square-crash")
    assert sorted(counts) == sorted(sale_id("square", i) for i in range(9))
    assert set(counts.values()) == {1}


def test_poll_every_runs_until_sigterm(broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal
    import threading

    broker.settings(tmp_path / "state")
    monkeypatch.setenv("TILLFLOW_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("TILLFLOW_REGISTRY_URL", broker.registry.url)
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SQUARE_TOKEN", "static-token")
    previous = signal.getsignal(signal.SIGTERM)
    with vendor_server() as (base, st):
        add_sale("square", st, 1, NOW - timedelta(minutes=30))
        source = tmp_path / "square.yaml"
        source.write_text(
            f"name: square-every\nvendor: square\nbase_url: {base}\nstores: {{L8RY5ZZ0T8RZM: s1}}\n"
            "auth: {kind: api_key, token: {env: SQUARE_TOKEN}}\n"
        )
        timer = threading.Timer(3.5, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        try:
            result = CliRunner().invoke(app, ["poll", str(source), "--every", "1s"])
        finally:
            timer.cancel()
            signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 0, result.output
    runs = result.output.count("square-every:")
    assert runs >= 3, result.output
    assert "1 tickets published" in result.output and result.output.count("0 tickets published") == runs - 1


def test_poll_stops_on_sigterm_between_pages_and_resumes(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while a one-off backfill is paging: the page being read is published and checkpointed, the command
    exits 0 without reading further; running it again publishes the rest, each ticket once."""
    import os
    import signal

    settings = broker.settings(tmp_path / "state")
    monkeypatch.setenv("TILLFLOW_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("TILLFLOW_REGISTRY_URL", broker.registry.url)
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SQUARE_TOKEN", "static-token")
    previous = signal.getsignal(signal.SIGTERM)
    searches: list[str] = []

    def sigterm_on_second_page(method: str, path: str) -> None:
        if path == "/v2/orders/search":
            searches.append(path)
            if len(searches) == 2:
                os.kill(os.getpid(), signal.SIGTERM)

    with vendor_server() as (base, st):
        for i in range(9):
            add_sale("square", st, i, NOW - timedelta(hours=3) + timedelta(minutes=i))
        source = tmp_path / "square.yaml"
        source.write_text(
            f"name: square-term\nvendor: square\nbase_url: {base}\nstores: {{L8RY5ZZ0T8RZM: s1}}\n"
            "auth: {kind: api_key, token: {env: SQUARE_TOKEN}}\npage_size: 3\n"
        )
        since = (NOW - timedelta(days=1)).isoformat()
        st.on_request = sigterm_on_second_page
        try:
            first = CliRunner().invoke(app, ["poll", str(source), "--since", since])
        finally:
            st.on_request = None
            signal.signal(signal.SIGTERM, previous)
        assert first.exit_code == 0, first.output
        assert "6 tickets published" in first.output and "stopped on SIGTERM, checkpoint saved" in first.output
        assert len(searches) == 2  # nothing was read after the signal
        second = CliRunner().invoke(app, ["poll", str(source), "--since", since])
        assert second.exit_code == 0 and "3 tickets published" in second.output, second.output
    counts = Counter(t.ticket_id for t in read_tickets(settings) if t.source == "square-term")
    assert sorted(counts) == sorted(sale_id("square", i) for i in range(9)) and set(counts.values()) == {1}
