"""Shopify on the GraphQL Admin API only, against the stand-in (tests/producers/pos/vendor_server.py), which
reproduces the documented GraphQL answers: ``orders`` with cursor pagination, ``extensions.cost`` throttling,
bulk operations with JSONL results, access scopes. Shopify's cloud cannot be reached from here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from producers.pos import shopify_api
from producers.pos.checkpoint import CheckpointStore
from producers.pos.examples import shopify_order, shopify_refund
from producers.pos.http import TokenFile
from producers.pos.poller import Poller, make_client
from producers.pos.source import SourceConfig
from producers.pos.vendors import ShopifyAdapter, adapter_for
from schemas.models import PosTicket
from tests.producers.pos.vendor_server import VendorState, vendor_server
from tests.support.pos import ListSink, config

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=3)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POS_TEST_TOKEN", "static-token")


def add(st: VendorState, i: int, at: datetime, lines: int = 2) -> dict[str, Any]:
    o = shopify_order(i, at)
    extra = o["lineItems"]["nodes"][1]
    for k in range(lines - 2):  # more totes, same price and tax, so the totals still balance per line
        o["lineItems"]["nodes"].append({**extra, "id": f"gid://shopify/LineItem/{9_000_000 + i * 100 + k}"})
    st.shopify[int(o["legacyResourceId"])] = o
    return o


def poller(cfg: SourceConfig, ledger: list[PosTicket], tmp: Path, now: datetime, st: VendorState) -> Poller:
    """A poller whose waits advance the stand-in's clock (its cost bucket refills as if time passed)."""
    clock = {"t": 0.0}
    st.clock = lambda: clock["t"]

    def sleep(seconds: float) -> None:
        clock["t"] += seconds

    client = make_client(cfg, adapter_for(cfg), TokenFile(tmp / "tokens.json"), sleep=sleep)
    return Poller(cfg, ListSink(ledger), CheckpointStore(tmp / "checkpoint.sqlite"), client, now=lambda: now)


def test_current_api_version_is_inside_shopify_support_window() -> None:
    """Shopify releases a version each quarter and supports it for 12 months: this fails once the default
    version tillflow sends falls out of the window (or names a release that is not out yet)."""
    today = date.today()
    version = shopify_api.API_VERSION
    assert version[5:] in ("01", "04", "07", "10")
    assert shopify_api.release_date(version) <= today < shopify_api.supported_until(version)
    assert SourceConfig.model_fields["api_version"].get_default(call_default_factory=True) == version
    assert not shopify_api.is_supported("2025-01", date(2026, 12, 7))  # the old default
    assert shopify_api.supported_until("2025-10") == date(2026, 10, 1)


def test_orders_come_from_graphql_only_one_request_per_page(tmp_path: Path) -> None:
    """No REST call, no request per order: refunds and transactions come inside the orders query."""
    with vendor_server() as (base, st):
        for i in range(7):
            add(st, i, T0 + timedelta(minutes=i))
        o = st.shopify[820982911946154500 + 2]
        o["refunds"].append(shopify_refund(o, 9002, T0 + timedelta(minutes=30)))
        o["updatedAt"] = (T0 + timedelta(minutes=30)).isoformat()
        ledger: list[PosTicket] = []
        result = poller(config("shopify", base), ledger, tmp_path, NOW, st).sync()
        assert result.pages == 3 and result.published == 8  # 7 sales + 1 refund, page_size 3
        assert all(path.startswith("/admin/api/2026-10/graphql.json") for _, path in st.log)
        assert [op for op, _ in st.graphql] == ["Orders"] * 3
        first = st.graphql[0][1]
        assert first["sortKey"] == "UPDATED_AT" and first["query"].startswith("updated_at:>='")
        assert st.graphql[1][1]["after"]  # cursor pagination
        refund = next(t for t in ledger if t.kind.value == "REFUND")
        assert refund.ticket_id == "shopify:820982911946154502:refund:9002" and refund.net_amount == -2084


def test_throttle_status_is_honoured_before_the_bucket_runs_dry(tmp_path: Path) -> None:
    """With a small bucket, the poller waits for the cost the last answer reported instead of being refused."""
    with vendor_server() as (base, st):
        for i in range(9):
            add(st, i, T0 + timedelta(minutes=i))
        st.shopify_bucket = (200.0, 50.0)  # a query of 3 orders requests 122 points, uses 61
        ledger: list[PosTicket] = []
        p = poller(config("shopify", base), ledger, tmp_path, NOW, st)
        p.sync()
        assert len(ledger) == 9 and st.throttled == 0
        assert p.client.waits and max(p.client.waits) > 0


def test_a_throttled_answer_waits_for_the_bucket_and_is_sent_again(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        add(st, 1, T0)
        st.shopify_available = 0.0  # empty bucket: the first query is THROTTLED
        ledger: list[PosTicket] = []
        p = poller(config("shopify", base), ledger, tmp_path, NOW, st)
        p.sync()
        assert st.throttled == 1 and len(ledger) == 1
        assert [op for op, _ in st.graphql] == ["Orders", "Orders"]
        assert p.client.waits[0] >= 122 / 100.0  # the requested cost over the restore rate


def test_an_order_with_more_lines_than_the_page_query_reads_the_rest(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        add(st, 1, T0, lines=14)
        ledger: list[PosTicket] = []
        poller(config("shopify", base), ledger, tmp_path, NOW, st).sync()
        [t] = ledger
        assert len(t.lines) == 14
        assert [op for op, _ in st.graphql] == ["Orders", "OrderLines"]


def test_long_backfill_runs_as_a_bulk_operation(tmp_path: Path) -> None:
    """A 20-day window: one bulkOperationRunQuery, status polled, JSONL read from the result URL without the
    access token; nested connections (line items, refund lines, refund transactions) come back whole."""
    with vendor_server() as (base, st):
        for d in range(20):
            add(st, d, T0 + timedelta(days=d))
        o = st.shopify[820982911946154500 + 3]
        o["refunds"].append(shopify_refund(o, 9003, T0 + timedelta(days=3, hours=1)))
        ledger: list[PosTicket] = []
        p = poller(config("shopify", base), ledger, tmp_path, T0 + timedelta(days=30), st)
        result = p.sync(since=T0 - timedelta(days=1), until=T0 + timedelta(days=19))
        ops = [op for op, _ in st.graphql]
        assert ops[0] == "BulkRun" and ops.count("BulkStatus") == 2 and "Orders" not in ops
        assert "processed_at:>='" in st.graphql[0][1]["query"] and "(first:" not in st.graphql[0][1]["query"]
        assert len(st.bulk_downloads) == 1
        assert not any(k.lower() == "x-shopify-access-token" for k in st.bulk_downloads[0])
        assert result.published == 20 + 1  # processedAt is 2 min before each order time: day 19 is inside
        refund = next(t for t in ledger if t.kind.value == "REFUND")
        assert refund.lines[0].sku == "TOTE-01" and refund.payments[0].amount == -2500
        assert all(len(t.lines) == 2 for t in ledger if t.kind.value == "SALE")


def test_backfill_beyond_60_days_without_read_all_orders_warns(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        st.shopify_scopes = ["read_orders"]
        add(st, 1, T0)
        ledger: list[PosTicket] = []
        p = poller(config("shopify", base), ledger, tmp_path, T0 + timedelta(days=90), st)
        p.sync(since=T0 - timedelta(days=1), until=T0 + timedelta(days=2))
        assert isinstance(p.adapter, ShopifyAdapter)
        assert any("read_all_orders" in w and "60 days" in w for w in p.adapter.warnings)
        assert len(ledger) == 1
        st.shopify_scopes = ["read_orders", "read_all_orders"]
        p2 = poller(config("shopify", base), [], tmp_path / "b", T0 + timedelta(days=90), st)
        p2.sync(since=T0 - timedelta(days=1), until=T0 + timedelta(days=2))
        assert isinstance(p2.adapter, ShopifyAdapter) and not p2.adapter.warnings


def test_assemble_bulk_puts_nested_nodes_under_their_parents() -> None:
    lines = [
        '{"id": "gid://shopify/Order/1", "refunds": [{"id": "gid://shopify/Refund/5"}]}',
        '{"id": "gid://shopify/LineItem/2", "__parentId": "gid://shopify/Order/1"}',
        '{"id": "gid://shopify/RefundLineItem/6", "__parentId": "gid://shopify/Refund/5"}',
        '{"id": "gid://shopify/OrderTransaction/7", "__parentId": "gid://shopify/Refund/5"}',
    ]
    [order] = shopify_api.assemble_bulk(lines)
    assert order["lineItems"]["nodes"][0]["id"].endswith("/2")
    refund = order["refunds"][0]
    assert refund["refundLineItems"]["nodes"][0]["id"].endswith("/6")
    assert refund["transactions"]["nodes"][0]["id"].endswith("/7")
    with pytest.raises(ValueError, match="parent"):
        shopify_api.assemble_bulk(['{"id": "gid://shopify/LineItem/2", "__parentId": "gid://shopify/Order/9"}'])


def test_throttle_wait_from_extensions_cost() -> None:
    cost = {"requestedQueryCost": 120, "throttleStatus":
            {"maximumAvailable": 2000.0, "currentlyAvailable": 20.0, "restoreRate": 100.0}}  # fmt: skip
    assert shopify_api.throttle_wait(cost, 120) == pytest.approx(1.0)
    assert shopify_api.throttle_wait(cost, 10) == 0.0
    assert shopify_api.throttle_wait(None, 500) == 0.0


def test_a_configured_version_out_of_the_window_is_warned_about(tmp_path: Path) -> None:
    cfg = config("shopify", "http://127.0.0.1:9", api_version="2025-01")
    adapter = adapter_for(cfg)
    assert isinstance(adapter, ShopifyAdapter)
    assert any("2025-01 is outside its 12-month support window" in w for w in adapter.warnings)
    assert not ShopifyAdapter(config("shopify", "http://127.0.0.1:9")).warnings
