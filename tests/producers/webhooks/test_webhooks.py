"""`tillflow webhooks serve` on real parts: the aiohttp app on a local port, a real noida-db broker with tillflow's
registry, and the vendor stand-in (tests/producers/pos/vendor_server.py) for the order fetches.

The notifications are the vendors' documented requests (Square's ``order.updated`` / ``refund.updated`` event
bodies, Shopify's ``orders/updated`` / ``refunds/create`` topics with their X-Shopify-* headers, Clover's
``{"appId", "merchants": {mId: [{"objectId": "O:..", "type", "ts"}]}}``, Lightspeed X-Series' form-encoded
``payload``/``type=sale.update``), with the ids and times of orders in the stand-in, signed with test secrets
the documented way (the vendors' own example signatures use keys that are not published)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from aiohttp import web

from producers.pos.checkpoint import CheckpointStore
from producers.pos.http import TokenFile
from producers.pos.poller import Poller, make_client
from producers.pos.publish import KafkaTicketPublisher
from producers.pos.source import Secret, SourceConfig, WebhookConfig
from producers.pos.vendors import adapter_for
from producers.webhooks.service import Endpoint, SeenEvents, make_app
from producers.webhooks.verify import Refused, notices, verify
from tests.producers.pos.broker import Broker, broker, read_tickets
from tests.producers.pos.vendor_server import VendorState, vendor_server
from tests.support.pos import MERCHANT, add_refund, add_sale, config, sale_id
from tillflow.sender import RecordSender
from tillflow.settings import Settings

__all__ = ["broker"]  # the fixture
NOW = datetime.now(UTC).replace(microsecond=0)
SECRET = "whsec-test-0123456789"
HOOK_URL = "https://hooks.example.com/webhooks/square-hook"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POS_TEST_TOKEN", "static-token")
    monkeypatch.setenv("HOOK_SECRET", SECRET)


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """Run the aiohttp app on a free 127.0.0.1 port in a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def hook_config(vendor: str, base: str) -> SourceConfig:
    cfg = config(vendor, base)
    url = HOOK_URL if vendor == "square" else None
    # a name of its own per test: the module's broker keeps what earlier tests published
    hook = WebhookConfig(secret=Secret(env="HOOK_SECRET"), notification_url=url)
    return cfg.model_copy(update={"name": f"{vendor}-hook-{uuid.uuid4().hex[:8]}", "webhook": hook})


def endpoint(cfg: SourceConfig, settings: Settings, tmp: Path, sender: RecordSender | None = None) -> Endpoint:
    adapter = adapter_for(cfg)
    client = make_client(cfg, adapter, TokenFile(tmp / f"{cfg.name}.tokens.json"), sleep=lambda s: None)
    sink = KafkaTicketPublisher(sender or RecordSender(settings), settings)
    return Endpoint(cfg, adapter, client, sink, CheckpointStore(tmp / f"{cfg.name}.sqlite", shared=True), SECRET)


def b64(key: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def square_order_updated(order_id: str, location: str, at: datetime, event_id: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps({
        "merchant_id": "5S9MXCS9Y99KK", "type": "order.updated", "event_id": event_id,
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "data": {"type": "order_updated", "id": order_id, "object": {"order_updated": {
            "created_at": at.isoformat(), "location_id": location, "order_id": order_id, "state": "COMPLETED",
            "updated_at": at.isoformat(), "version": 2}}},
    }).encode()  # fmt: skip
    return {"x-square-hmacsha256-signature": b64(SECRET, HOOK_URL.encode() + body),
            "square-environment": "Production", "content-type": "application/json"}, body  # fmt: skip


def square_refund_updated(refund_id: str, order_id: str, location: str, at: datetime) -> tuple[dict[str, str], bytes]:
    body = json.dumps({
        "merchant_id": "5S9MXCS9Y99KK", "type": "refund.updated", "event_id": f"evt-{refund_id}",
        "created_at": at.isoformat(), "data": {"type": "refund", "id": refund_id, "object": {"refund": {
            "id": refund_id, "location_id": location, "order_id": order_id, "status": "COMPLETED",
            "amount_money": {"amount": 2200, "currency": "NZD"}, "updated_at": at.isoformat(), "version": 2}}},
    }).encode()  # fmt: skip
    return {"x-square-hmacsha256-signature": b64(SECRET, HOOK_URL.encode() + body)}, body


def shopify_topic(topic: str, body_obj: dict[str, Any], at: datetime, event_id: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps(body_obj).encode()
    return {"x-shopify-topic": topic, "x-shopify-hmac-sha256": b64(SECRET, body),
            "x-shopify-shop-domain": "example.myshopify.com", "x-shopify-api-version": "2026-10",
            "x-shopify-webhook-id": f"wh-{event_id}", "x-shopify-event-id": event_id,
            "x-shopify-triggered-at": at.isoformat().replace("+00:00", "Z")}, body  # fmt: skip


def clover_notice(order_id: str, at: datetime) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"appId": "DRKVJT2ZRRRSC", "merchants": {MERCHANT: [
        {"objectId": f"O:{order_id}", "type": "UPDATE", "ts": int(at.timestamp() * 1000)},
        {"objectId": "I:ITEMBEANS01", "type": "UPDATE", "ts": int(at.timestamp() * 1000)}]}}).encode()  # fmt: skip
    return {"x-clover-auth": SECRET, "content-type": "application/json"}, body


def lightspeed_form(sale_id_: str, at: datetime) -> tuple[dict[str, str], bytes]:
    payload = {"id": sale_id_, "status": "CLOSED", "updated_at": at.strftime("%Y-%m-%d %H:%M:%S"),
               "customer_name": "Bob Norman"}  # API 1.0 shape, abbreviated  # fmt: skip
    body = urlencode({"payload": json.dumps(payload), "type": "sale.update", "domain_prefix": "mystore",
                      "environment": "prod", "retailer_id": "b1e1c2a8-0000"}).encode()  # fmt: skip
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"x-signature": f"signature={sig}, algorithm=HMAC-SHA256",
            "content-type": "application/x-www-form-urlencoded"}, body  # fmt: skip


def post(url: str, source: str, req: tuple[dict[str, str], bytes]) -> requests.Response:
    return requests.post(f"{url}/webhooks/{source}", headers=req[0], data=req[1], timeout=30)


def notification(vendor: str, st: VendorState, i: int, at: datetime) -> tuple[dict[str, str], bytes]:
    if vendor == "square":
        return square_order_updated(f"SQ{i:06d}ORDER", "L8RY5ZZ0T8RZM", at, f"evt-sq-{i}")
    if vendor == "shopify":
        oid = 820982911946154500 + i
        return shopify_topic("orders/updated", {"id": oid, "admin_graphql_api_id": f"gid://shopify/Order/{oid}",
                                                "email": "bob.norman@mail.example.com"}, at, f"evt-sh-{i}")  # fmt: skip
    if vendor == "clover":
        return clover_notice(f"CLV{i:06d}", at)
    return lightspeed_form(f"5e9b7a3c-0000-4000-8000-{i:012d}", at)


@pytest.mark.parametrize("vendor", ["square", "shopify", "clover", "lightspeed"])
def test_verified_notification_is_fetched_mapped_and_published_before_200(
    vendor: str, broker: Broker, tmp_path: Path
) -> None:
    settings = broker.settings(tmp_path / "state")
    with vendor_server() as (base, st):
        add_sale(vendor, st, 1, NOW - timedelta(minutes=3))
        cfg = hook_config(vendor, base)
        ep = endpoint(cfg, settings, tmp_path)
        before = {t.ticket_id for t in read_tickets(settings)}
        with serving(make_app({cfg.name: ep}, SeenEvents(tmp_path / "seen.sqlite"))) as url:
            resp = post(url, cfg.name, notification(vendor, st, 1, NOW - timedelta(minutes=1)))
            assert resp.status_code == 200, resp.text
            published = [t for t in read_tickets(settings) if t.source == cfg.name]
            assert [t.ticket_id for t in published] == [sale_id(vendor, 1)]
            assert sale_id(vendor, 1) not in before
            # the same notification again (a vendor retry): answered 200, not published twice
            again = post(url, cfg.name, notification(vendor, st, 1, NOW - timedelta(minutes=1)))
            assert again.status_code == 200 and again.text == "nothing new"
            assert len([t for t in read_tickets(settings) if t.source == cfg.name]) == 1
            # a forged one: 401, nothing published (Clover sends a shared auth code, not a signature of the body)
            headers, body = notification(vendor, st, 1, NOW)
            if vendor == "clover":
                headers = {**headers, "x-clover-auth": "guessed"}
            forged = post(url, cfg.name, (headers, body.replace(b"1", b"2", 1)))
            assert forged.status_code == 401
        paths = [p for _, p in st.log]
        if vendor == "shopify":
            assert all(p.endswith("/graphql.json") for p in paths)  # the order read through GraphQL, by id
        if vendor == "clover":
            assert all(len(e.split(",")) <= 3 for e in st.expands) and st.expand_refused == 0


def test_square_refund_and_shopify_refund_topics_publish_the_refund(broker: Broker, tmp_path: Path) -> None:
    settings = broker.settings(tmp_path / "state")
    with vendor_server() as (base, st):
        add_sale("square", st, 2, NOW - timedelta(hours=1))
        square_refund = add_refund("square", st, 2, NOW - timedelta(minutes=5))
        add_sale("shopify", st, 2, NOW - timedelta(hours=1))
        shopify_refund = add_refund("shopify", st, 2, NOW - timedelta(minutes=5))
        sq, sh = hook_config("square", base), hook_config("shopify", base)
        eps = {c.name: endpoint(c, settings, tmp_path) for c in (sq, sh)}
        with serving(make_app(eps, SeenEvents(tmp_path / "seen.sqlite"))) as url:
            ret_id = square_refund.split(":", 1)[1]
            r1 = post(url, sq.name, square_refund_updated("RF-1", ret_id, "L8RY5ZZ0T8RZM", NOW))
            oid = 820982911946154502
            r2 = post(url, sh.name, shopify_topic("refunds/create", {"id": 9002, "order_id": oid,
                                                                            "created_at": NOW.isoformat()}, NOW,
                                                         "evt-refund"))  # fmt: skip
            assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
        got = {t.ticket_id for t in read_tickets(settings) if t.source in eps}
        assert {square_refund, shopify_refund} <= got


def test_stale_notification_is_refused_as_a_replay_and_poller_does_not_resend(broker: Broker, tmp_path: Path) -> None:
    settings = broker.settings(tmp_path / "state")
    with vendor_server() as (base, st):
        add_sale("square", st, 3, NOW - timedelta(days=3))
        add_sale("square", st, 4, NOW - timedelta(minutes=20))
        cfg = hook_config("square", base)
        ep = endpoint(cfg, settings, tmp_path)
        with serving(make_app({cfg.name: ep}, SeenEvents(tmp_path / "seen.sqlite"))) as url:
            old = post(url, cfg.name, square_order_updated("SQ000003ORDER", "L8RY5ZZ0T8RZM",
                                                           NOW - timedelta(days=2), "evt-old"))  # fmt: skip
            assert old.status_code == 400 and "replay" in old.text
            ok = post(url, cfg.name, notification("square", st, 4, NOW - timedelta(minutes=1)))
            assert ok.status_code == 200
        # the poller (the safety net) shares the store: it sends the sale the webhook missed, not the other
        sender = RecordSender(settings)
        client = make_client(cfg, adapter_for(cfg), TokenFile(tmp_path / "t.json"))
        store = CheckpointStore(tmp_path / f"{cfg.name}.sqlite")
        poller = Poller(cfg, KafkaTicketPublisher(sender, settings), store, client, now=lambda: NOW)
        result = poller.sync(since=NOW - timedelta(days=4))
        assert result.published == 1 and result.unchanged == 1
        mine = sorted(t.ticket_id for t in read_tickets(settings) if t.source == cfg.name)
        assert mine == [sale_id("square", 3), sale_id("square", 4)]


def test_kafka_down_answers_503_and_the_retry_publishes(broker: Broker, tmp_path: Path) -> None:
    """Nothing acknowledged is lost: when Kafka does not acknowledge, the vendor is told to retry (503), and the
    notification is not marked as handled, so its retry publishes."""
    settings = broker.settings(tmp_path / "state")
    dead = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:9"})
    with vendor_server() as (base, st):
        add_sale("square", st, 5, NOW - timedelta(minutes=3))
        cfg = hook_config("square", base)
        seen = SeenEvents(tmp_path / "seen.sqlite")
        down = endpoint(cfg, settings, tmp_path / "a", RecordSender(dead, **{"message.timeout.ms": 1500}))
        with serving(make_app({cfg.name: down}, seen)) as url:
            resp = post(url, cfg.name, notification("square", st, 5, NOW))
            assert resp.status_code == 503
        up = endpoint(cfg, settings, tmp_path / "b")
        with serving(make_app({cfg.name: up}, seen)) as url:
            assert post(url, cfg.name, notification("square", st, 5, NOW)).status_code == 200
        assert sale_id("square", 5) in {t.ticket_id for t in read_tickets(settings) if t.source == cfg.name}


def test_signatures_per_vendor_and_constant_time_checks() -> None:
    body = b'{"id": 1}'
    verify("shopify", SECRET, {"x-shopify-hmac-sha256": b64(SECRET, body)}, body, None)
    with pytest.raises(Refused) as exc:
        verify("shopify", SECRET, {"x-shopify-hmac-sha256": b64("other", body)}, body, None)
    assert exc.value.status == 401
    # Square signs the notification URL + body: the same body at another URL does not verify
    sig = b64(SECRET, HOOK_URL.encode() + body)
    verify("square", SECRET, {"x-square-hmacsha256-signature": sig}, body, HOOK_URL)
    with pytest.raises(Refused):
        verify("square", SECRET, {"x-square-hmacsha256-signature": sig}, body, HOOK_URL + "/x")
    with pytest.raises(Refused):
        verify("clover", SECRET, {"x-clover-auth": "nope"}, body, None)
    hexsig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    verify("lightspeed", SECRET, {"x-signature": f"signature={hexsig},algorithm=HMAC-SHA256"}, body, None)
    with pytest.raises(Refused):
        verify("lightspeed", SECRET, {"x-signature": f"signature={hexsig},algorithm=MD5"}, body, None)
    with pytest.raises(Refused):
        verify("shopify", SECRET, {}, body, None)  # no header at all


def test_clover_notices_keep_orders_only() -> None:
    _, body = clover_notice("CLV000009", NOW)
    [n] = notices("clover", {}, body)
    assert (n.scope, n.record_id, n.kind) == (MERCHANT, "CLV000009", "UPDATE")
    assert notices("shopify", {"x-shopify-topic": "products/update"}, b"{}") == []


def test_orders_the_source_does_not_take_are_answered_200_and_not_published(broker: Broker, tmp_path: Path) -> None:
    """As the poller: a Shopify web order (source_names: [pos]), a Square location not in the source's stores,
    and an order the vendor no longer has (404) are acknowledged without a ticket."""
    settings = broker.settings(tmp_path / "state")
    with vendor_server() as (base, st):
        add_sale("shopify", st, 7, NOW - timedelta(minutes=3))
        st.shopify[820982911946154507]["sourceName"] = "web"
        sh, sq = hook_config("shopify", base), hook_config("square", base)
        eps = {c.name: endpoint(c, settings, tmp_path) for c in (sh, sq)}
        with serving(make_app(eps, SeenEvents(tmp_path / "seen.sqlite"))) as url:
            assert post(url, sh.name, notification("shopify", st, 7, NOW)).status_code == 200
            other = square_order_updated("SQ000008ORDER", "OTHERLOCATION", NOW, "evt-other")
            assert post(url, sq.name, other).status_code == 200
            gone = square_order_updated("SQ000009ORDER", "L8RY5ZZ0T8RZM", NOW, "evt-gone")
            assert post(url, sq.name, gone).status_code == 200
        assert not [t for t in read_tickets(settings) if t.source in eps]
        assert [p for _, p in st.log if "batch-retrieve" in p] == ["/v2/orders/batch-retrieve"]  # only the 3rd


def test_webhooks_serve_command_publishes_and_stops_on_sigterm(broker: Broker, tmp_path: Path) -> None:
    """The real `tillflow webhooks serve` process: a source file with a webhook: section, a Square notification,
    the ticket read back from the broker, SIGTERM ends it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tillflow.devstack import free_port

    settings = broker.settings(tmp_path / "state")
    port = free_port()
    with vendor_server() as (base, st):
        add_sale("square", st, 6, NOW - timedelta(minutes=3))
        source = tmp_path / "square-cli.yaml"
        source.write_text(
            f"name: square-cli-{uuid.uuid4().hex[:6]}\nvendor: square\nbase_url: {base}\n"
            "stores: {L8RY5ZZ0T8RZM: s1}\nauth: {kind: api_key, token: {env: POS_TEST_TOKEN}}\n"
            f"webhook: {{secret: {{env: HOOK_SECRET}}, notification_url: '{HOOK_URL}'}}\n"
        )
        name = yaml_name(source)
        (tmp_path / "empty.toml").write_text("")
        env = {**os.environ, "TILLFLOW_CONFIG": str(tmp_path / "empty.toml"), "TILLFLOW_STATE_DIR": str(tmp_path / "s"),
               "TILLFLOW_KAFKA_BOOTSTRAP": broker.bootstrap, "TILLFLOW_REGISTRY_URL": broker.registry.url}  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-m", "tillflow", "webhooks", "serve", str(source), "--port",
                                 str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"{url}/healthz", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)
            resp = post(url, name, notification("square", st, 6, NOW))
            assert resp.status_code == 200, resp.text
            assert requests.get(f"{url}/healthz", timeout=5).json()[name]["published"] == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    assert [t.ticket_id for t in read_tickets(settings) if t.source == name] == [sale_id("square", 6)]


def yaml_name(path: Path) -> str:
    import yaml

    name: str = yaml.safe_load(path.read_text())["name"]
    return name
