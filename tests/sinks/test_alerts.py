"""Alert channels: payload shapes checked by the vendor stand-ins, routing, rate limits, the durable outbox,
and the whole sink on the real broker against the stand-in server (tests/sinks/vendor_standins.py)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from schemas.topics import ALERTS
from sinks.alerts.delivery import build_request, read_outcome
from sinks.alerts.outbox import Outbox
from sinks.alerts.payloads import pagerduty_event, sign, slack_message, teams_message, verify
from sinks.alerts.routing import RateLimiter, RoutingError, parse_routes, route
from sinks.alerts.service import AlertSink
from tests.sinks.kafka_helpers import make_topics, produce, read_all
from tests.sinks.vendor_standins import VendorStandIn, pagerduty_problems, slack_problems, teams_problems
from tests.support.records import alert
from tillflow.kafka import consumer_config, decoders
from tillflow.sender import dead_letter_sender
from tillflow.settings import Settings

PD_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


def test_payloads_have_the_documented_shapes() -> None:
    firing, resolved = alert(1), alert(1, state="RESOLVED")
    long = alert(2, message="x" * 5000, severity="INFO")
    for a in (firing, resolved, long):
        assert slack_problems(slack_message(a, "Nordwind Fashion")) == []
        assert teams_problems(teams_message(a)) == []
    assert slack_message(firing, "Nordwind Fashion")["blocks"][0]["text"]["text"] == (
        "Critical: sales drop at Nordwind Fashion"
    )
    trigger, resolve = pagerduty_event(firing, PD_KEY), pagerduty_event(resolved, PD_KEY)
    assert pagerduty_problems(trigger) == [] and pagerduty_problems(resolve) == []
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == firing.alert_id
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["group"] == "westgate"
    assert len(pagerduty_event(long, PD_KEY)["payload"]["summary"]) == 1024
    assert pagerduty_problems({**trigger, "routing_key": "short"}) == ["'routing_key' must be 32 characters"]


def test_webhook_signature() -> None:
    # Known answer: HMAC-SHA256(key "s3cret", message "1700000000." + body), hex, computed here with hashlib.
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert expected == "1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
    assert sign("s3cret", 1700000000, b'{"a":1}') == f"sha256={expected}"
    req = build_request(parse_routes(ROUTES, env={"PD_KEY": PD_KEY, "BASE": "http://x"}).channels["audit"], alert(1),
                        now=1700000000)  # fmt: skip
    body_mac = hmac.new(b"s3cret", b"1700000000." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Tillflow-Timestamp"] == "1700000000"
    assert req.headers["X-Tillflow-Signature"] == f"sha256={body_mac}"
    sig = sign("s3cret", 1700000000, b'{"a":1}')
    assert verify("s3cret", "1700000000", b'{"a":1}', sig)
    assert not verify("s3cret", "1700000001", b'{"a":1}', sig)
    assert not verify("other", "1700000000", b'{"a":1}', sig)


ROUTES = {
    "channels": {
        "pager": {"type": "pagerduty", "routing_key": "${PD_KEY}", "url": "${BASE}/v2/enqueue"},
        "ops": {"type": "slack", "url": "${BASE}/slack/T0/B0/xyz", "rate_limit_per_minute": 600},
        "westgate": {"type": "teams", "url": "${BASE}/teams/webhookb2/abc"},
        "audit": {"type": "webhook", "url": "${BASE}/hook", "secret": "s3cret"},
    },
    "routes": [
        {"match": {"severity": ["CRITICAL"]}, "channels": ["pager", "ops"]},
        {"match": {"mall": ["westgate"]}, "channels": ["westgate", "ops"]},
        {"match": {}, "channels": ["audit"]},
    ],
}


def test_routing_rules() -> None:
    config = parse_routes(ROUTES, env={"PD_KEY": PD_KEY, "BASE": "http://x"})
    assert config.channels["pager"].routing_key == PD_KEY
    assert route(alert(1), config) == ["pager", "ops", "westgate", "audit"]
    assert route(alert(2, store="nyc-soho", mall_id=None, severity="WARNING"), config) == ["audit"]
    only_store = parse_routes({"channels": ROUTES["channels"], "routes": [
        {"match": {"store": ["wg-volt"], "kind": ["FEED_SILENT"]}, "channels": ["ops"]}]},
        env={"PD_KEY": PD_KEY, "BASE": "http://x"})  # fmt: skip
    assert route(alert(1, store="wg-volt", kind="FEED_SILENT"), only_store) == ["ops"]
    assert route(alert(1, store="wg-volt"), only_store) == []
    with pytest.raises(RoutingError, match="PD_KEY is not set"):
        parse_routes(ROUTES, env={"BASE": "http://x"})
    with pytest.raises(RoutingError, match=r"routes\[0\]\.channels: no channel named 'nope'"):
        parse_routes({"channels": {}, "routes": [{"channels": ["nope"]}]}, env={})
    with pytest.raises(RoutingError, match="needs secret"):
        parse_routes({"channels": {"h": {"type": "webhook", "url": "http://x"}}}, env={})


def test_routing_rejects_unknown_kind_severity_and_state() -> None:
    env = {"PD_KEY": PD_KEY, "BASE": "http://x"}
    for key, value, known in (("kind", "SALES_DROPP", "SALES_DROP"), ("severity", "critical", "CRITICAL"),
                              ("state", "OPEN", "FIRING")):  # fmt: skip
        routes = [{"match": {}, "channels": ["audit"]}, {"match": {key: [value]}, "channels": ["ops"]}]
        expected = rf"routes\[1\]\.match\.{key}: unknown {key} '{value}'; one of .*{known}"
        with pytest.raises(RoutingError, match=expected):
            parse_routes({"channels": ROUTES["channels"], "routes": routes}, Path("r.yaml"), env)


def test_routing_warns_about_ids_not_in_the_catalogue() -> None:
    from schemas.catalogue import load_catalogue
    from tests.support.records import CATALOGUE

    config = parse_routes({"channels": ROUTES["channels"], "routes": [
        {"match": {"mall": ["westgate", "eastgate"]}, "channels": ["ops"]},
        {"match": {"store": ["wg-volt", "wg-vol"]}, "channels": ["ops"]}]},
        env={"PD_KEY": PD_KEY, "BASE": "http://x"})  # fmt: skip
    assert config.warnings(load_catalogue(CATALOGUE)) == [
        "routes[0].match.mall: 'eastgate' is not in the catalogue; it never matches",
        "routes[1].match.store: 'wg-vol' is not in the catalogue; it never matches",
    ]
    assert config.warnings() == []


def test_an_empty_variable_disables_its_channel() -> None:
    env = {"PD_KEY": "", "BASE": "http://x"}
    config = parse_routes(ROUTES, env=env)
    assert set(config.channels) == {"ops", "westgate", "audit"}
    assert config.disabled == {"pager": "environment variable PD_KEY is empty"}
    assert route(alert(1), config) == ["ops", "westgate", "audit"]
    assert config.warnings() == ["channel 'pager' is disabled: environment variable PD_KEY is empty"]
    # A literal empty value is still an error, and so is an unset variable.
    with pytest.raises(RoutingError, match="needs routing_key"):
        parse_routes({"channels": {"p": {"type": "pagerduty", "routing_key": ""}}}, env={})
    with pytest.raises(RoutingError, match="BASE is not set"):
        parse_routes(ROUTES, env={"PD_KEY": ""})


def test_rate_limiter_allows_a_burst_then_spaces_requests() -> None:
    limiter = RateLimiter({"c": 60.0}, {"c": 2})
    assert limiter.wait("c", 100.0) == 0 and limiter.wait("c", 100.0) == 0
    assert limiter.wait("c", 100.0) == pytest.approx(1.0)
    assert limiter.wait("c", 100.5) == pytest.approx(0.5)
    assert limiter.wait("c", 101.0) == 0


def test_vendor_answers_are_read_per_vendor() -> None:
    config = parse_routes(ROUTES, env={"PD_KEY": PD_KEY, "BASE": "http://x"})
    assert read_outcome(config.channels["ops"], 200, "ok", None).ok
    assert not read_outcome(config.channels["ops"], 200, "invalid_blocks", None).ok
    assert read_outcome(config.channels["pager"], 202, '{"status": "success"}', None).ok
    busy = read_outcome(config.channels["pager"], 429, "throttled", 7.0)
    assert not busy.ok and busy.retry_after == 7.0
    req = build_request(config.channels["audit"], alert(1), now=1700000000)
    assert verify("s3cret", req.headers["X-Tillflow-Timestamp"], req.body, req.headers["X-Tillflow-Signature"])


def test_outbox_dedupes_retries_parks_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    assert box.enqueue([(alert(1), ["a", "b"]), (alert(1, state="RESOLVED"), ["a"])], now=10.0) == 3
    assert box.enqueue([(alert(1), ["a", "b"])], now=11.0) == 0  # the same alert re-emitted
    firing_a, firing_b = box.due(10.0)  # the RESOLVED to "a" waits for the FIRING to "a"
    assert (firing_a.channel, firing_b.channel) == ("a", "b")
    box.delivered(firing_a.id, 10.5)
    resolved_a = next(d for d in box.due(10.5) if d.channel == "a")
    assert str(resolved_a.alert.state) == "RESOLVED"
    box.failed(resolved_a.id, "HTTP 500", next_attempt_at=10.5 + 5)
    box.failed(firing_b.id, "HTTP 400", next_attempt_at=None)
    assert box.due(12.0) == [] and [d.id for d in box.due(16.0)] == [resolved_a.id]
    box.close()
    again = Outbox(path)
    assert again.counts() == {"pending": 1, "delivered": 1, "dead": 1}
    assert again.requeue_dead(20.0) == 1 and len(again.due(20.0)) == 2


@pytest.fixture
def vendors() -> Iterator[VendorStandIn]:
    server = VendorStandIn(webhook_secret="s3cret")
    yield server
    server.close()


def make_sink(settings: Settings, topic: str, outbox: Path, vendors: VendorStandIn, group: str) -> AlertSink:
    config = parse_routes(ROUTES, env={"PD_KEY": PD_KEY, "BASE": vendors.url})
    return AlertSink(
        Consumer(consumer_config(settings, group)),
        decoders(settings, {topic: ALERTS})[topic],
        Outbox(outbox),
        config,
        dead_letter_sender(settings, "alerts"),
        store_names={"wg-fashion": "Westgate: Nordwind Fashion"},
        retry_initial=0.1,
        retry_max=0.5,
        max_attempts=10,
        http_timeout=5,
    )


def delivery_sink(stack: Settings, tmp_path: Path, vendors: VendorStandIn, channel: dict[str, Any],
                  max_attempts: int = 10) -> AlertSink:  # fmt: skip
    """An AlertSink with one channel ``c`` taking every alert; the tests drive ``deliver_due`` with their clock."""
    config = parse_routes({"channels": {"c": channel}, "routes": [{"match": {}, "channels": ["c"]}]},
                          env={"BASE": vendors.url})  # fmt: skip
    return AlertSink(
        Consumer(consumer_config(stack, "unused")),  # deliver_due does not consume
        decoders(stack, {ALERTS: ALERTS})[ALERTS],
        Outbox(tmp_path / "outbox.sqlite"),
        config,
        dead_letter_sender(stack, "alerts"),
        retry_initial=0.1,
        retry_max=0.5,
        max_attempts=max_attempts,
        http_timeout=5,
    )


def test_rate_limit_defers_deliveries_beyond_the_burst(stack: Settings, vendors: VendorStandIn, tmp_path: Path) -> None:
    slack = {"type": "slack", "url": "${BASE}/slack/T0/B0/x", "rate_limit_per_minute": 60, "burst": 1}
    sink = delivery_sink(stack, tmp_path, vendors, slack)
    sink.outbox.enqueue([(alert(n, message=f"alert {n}"), ["c"]) for n in (1, 2, 3)], now=1000.0)
    assert sink.deliver_due(now=1000.0) == 1  # one token: the others wait a second each, nothing is dropped
    assert len(vendors.of("/slack/")) == 1 and sink.outbox.counts()["pending"] == 2
    assert sink.deliver_due(now=1000.5) == 0  # deferred until 1001
    assert sink.deliver_due(now=1001.0) == 1
    assert sink.deliver_due(now=1002.0) == 1
    assert sink.outbox.counts() == {"pending": 0, "delivered": 3, "dead": 0}
    texts = [r["body"]["text"] for r in vendors.of("/slack/")]
    assert len(texts) == 3 and len(set(texts)) == 3  # three different alerts, each once
    sink.consumer.close()


def test_delivery_is_parked_after_max_attempts_and_requeued(
    stack: Settings, vendors: VendorStandIn, tmp_path: Path
) -> None:
    sink = delivery_sink(stack, tmp_path, vendors, {"type": "webhook", "url": "${BASE}/hook", "secret": "s3cret"},
                         max_attempts=2)  # fmt: skip
    vendors.inject("/hook", (500, {}), (502, {}))
    sink.outbox.enqueue([(alert(1), ["c"])], now=1000.0)
    assert sink.deliver_due(now=1000.0) == 0
    assert sink.outbox.counts() == {"pending": 1, "delivered": 0, "dead": 0}  # attempt 1 failed: retried later
    assert sink.deliver_due(now=time.time() + 60) == 0
    assert sink.outbox.counts() == {"pending": 0, "delivered": 0, "dead": 1}  # attempt 2 was the last
    assert (sink.stats.failed_attempts, sink.stats.dead) == (2, 1)
    (row,) = sink.outbox.rows()
    assert row["status"] == "dead" and row["attempts"] == 2 and "502" in str(row["last_error"])
    later = time.time() + 3600
    assert sink.deliver_due(now=later) == 0  # parked: not tried again
    assert sink.outbox.requeue_dead(later) == 1  # `tillflow sink outbox --requeue-dead`
    assert sink.deliver_due(now=later + 1) == 1
    assert len(vendors.of("/hook")) == 1 and sink.outbox.counts()["delivered"] == 1
    sink.consumer.close()


def test_alert_sink_delivers_dedupes_and_retries(
    stack: Settings, vendors: VendorStandIn, unique: str, tmp_path: Path
) -> None:
    topics = make_topics(stack, unique, [ALERTS])
    topic = next(iter(topics))
    records: list[Any] = [
        alert(1),
        alert(1),  # re-emitted by a restarted worker
        alert(2, store="nyc-soho", mall_id=None, severity="WARNING"),
        b"not avro",
        alert(1, state="RESOLVED"),
    ]
    produce(stack, topic, ALERTS, records)
    vendors.inject("/slack/", (500, {}), (429, {"Retry-After": "0.3"}))
    vendors.inject("/v2/enqueue", (503, {}))
    sink = make_sink(stack, topic, tmp_path / "outbox.sqlite", vendors, f"alerts-{unique}")
    stats = sink.run([topic], idle_exit=2.0)

    assert vendors.rejected == []
    pd = vendors.of("/v2/enqueue")
    assert [(r["body"]["event_action"], r["body"]["dedup_key"]) for r in pd] == [
        ("trigger", "SALES_DROP:wg-fashion:1"),
        ("resolve", "SALES_DROP:wg-fashion:1"),
    ]
    slack = vendors.of("/slack/")
    assert len(slack) == 2 and "Westgate: Nordwind Fashion" in slack[0]["body"]["text"]
    assert len(vendors.of("/teams/")) == 2
    assert len(vendors.of("/hook")) == 3
    assert stats.delivered == 9 and stats.failed_attempts == 3
    assert sink.outbox.counts() == {"pending": 0, "delivered": 9, "dead": 0}
    letters = read_all(stack, f"{topic}.dlq", expect=1)
    assert letters[0][0] == b"not avro" and letters[0][1]["tillflow.dlq.stage"] == "decode"


def test_failed_deliveries_survive_a_restart(
    stack: Settings, vendors: VendorStandIn, unique: str, tmp_path: Path
) -> None:
    topics = make_topics(stack, unique, [ALERTS])
    topic = next(iter(topics))
    produce(stack, topic, ALERTS, [alert(7, severity="INFO")])  # routed to teams, slack and the audit hook
    vendors.inject("/teams/", *[(503, {})] * 100)  # Teams is down
    outbox = tmp_path / "outbox.sqlite"
    first = make_sink(stack, topic, outbox, vendors, f"alerts-{unique}")
    runner = threading.Thread(target=first.run, args=([topic],), daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while first.stats.failed_attempts < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    first.stop_event.set()
    runner.join(timeout=20)
    assert first.stats.failed_attempts >= 2 and len(vendors.of("/hook")) == 1
    assert first.outbox.counts()["pending"] == 1  # kept, not lost
    first.outbox.close()

    vendors.fail_next.clear()  # Teams is back; a new process finds the delivery in the outbox
    second = make_sink(stack, topic, outbox, vendors, f"alerts-{unique}")
    second.run([topic], idle_exit=1.0)
    teams = vendors.of("/teams/")
    assert len(teams) == 1 and teams[0]["body"]["attachments"][0]["content"]["type"] == "AdaptiveCard"
    assert second.outbox.counts() == {"pending": 0, "delivered": 3, "dead": 0}
    assert len(vendors.of("/hook")) == 1  # delivered once, not again after the restart
