"""Pollers against the local vendor stand-in (tests/producers/pos/vendor_server.py): the vendors' cloud APIs
cannot be reached from here, so the stand-in reproduces their documented paging, auth and error responses."""

from __future__ import annotations

import json
import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from producers.pos.checkpoint import CheckpointStore
from producers.pos.examples import (
    clover_order,
    shopify_order,
    square_order,
)
from producers.pos.http import AuthFailed, SourceUnavailable, TokenFile, retry_after
from producers.pos.poller import Poller, make_client
from producers.pos.publish import scrub
from producers.pos.source import Auth, Secret, SourceConfig
from producers.pos.vendors import adapter_for, load_position
from schemas.models import PosTicket
from tests.producers.pos.vendor_server import VendorState, vendor_server
from tests.support.pos import MERCHANT, ListSink, add_refund, add_sale, config, sale_id
from tillflow.sender import DeliveryError

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=3)
VENDORS = ["square", "shopify", "lightspeed", "clover"]
PATHS = {"square": "/v2/orders/search", "shopify": "/admin/api/", "lightspeed": "/api/2.0/sales",
         "clover": "/v3/merchants/"}  # fmt: skip


# --- per-vendor data in the stand-in -------------------------------------------------------------------------


def make_poller(cfg: SourceConfig, sink: Any, tmp: Path, now: datetime, sleeps: list[float] | None = None) -> Poller:
    store = CheckpointStore(tmp / "checkpoint.sqlite")
    waits = sleeps if sleeps is not None else []
    client = make_client(cfg, adapter_for(cfg), TokenFile(tmp / "tokens.json"), sleep=waits.append)
    return Poller(cfg, sink, store, client, now=lambda: now)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POS_TEST_TOKEN", "static-token")


def ids(tickets: list[PosTicket]) -> list[str]:
    return sorted(t.ticket_id for t in tickets)


# --- tests ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
def test_full_sync_pages_everything_once(vendor: str, tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(10):
            add_sale(vendor, st, i, T0 + timedelta(minutes=5 * i))
        if vendor == "shopify":  # an online order: not a POS sale, not polled
            web = shopify_order(99, T0, source_name="web")
            st.shopify[int(web["legacyResourceId"])] = web
        ledger: list[PosTicket] = []
        poller = make_poller(config(vendor, base), ListSink(ledger), tmp_path, NOW)
        result = poller.sync()
        assert ids(ledger) == sorted(sale_id(vendor, i) for i in range(10))
        assert result.pages >= 4 and result.published == 10  # page_size 3
        assert {t.store_id for t in ledger} == {config(vendor, base).stores[k] for k in config(vendor, base).stores}
        again = poller.sync()
        assert again.published == 0 and len(ledger) == 10


@pytest.mark.parametrize("vendor", VENDORS)
def test_changes_between_syncs_publish_only_what_changed(vendor: str, tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(7):
            add_sale(vendor, st, i, T0 + timedelta(minutes=5 * i))
        ledger: list[PosTicket] = []
        cfg = config(vendor, base)
        make_poller(cfg, ListSink(ledger), tmp_path, NOW).sync()
        assert len(ledger) == 7
        # Between the syncs: a refund on sale 2, a new sale, and a sale committed late with an updated_at 5
        # minutes before the checkpoint (inside the 10-minute overlap).
        refund = add_refund(vendor, st, 2, NOW + timedelta(minutes=10))
        add_sale(vendor, st, 20, NOW + timedelta(minutes=12))
        add_sale(vendor, st, 21, T0 + timedelta(minutes=25))
        second = make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(hours=1)).sync()
        assert ids(ledger[7:]) == sorted([refund, sale_id(vendor, 20), sale_id(vendor, 21)])
        assert second.published == 3
        assert len(set(ids(ledger))) == len(ledger) == 10


@pytest.mark.parametrize("vendor", VENDORS)
def test_restart_after_failed_ack_neither_skips_nor_duplicates(vendor: str, tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(11):
            add_sale(vendor, st, i, T0 + timedelta(minutes=5 * i))
        ledger: list[PosTicket] = []
        cfg = config(vendor, base)
        with pytest.raises(DeliveryError):
            make_poller(cfg, ListSink(ledger, fail_at=2), tmp_path, NOW).sync()
        assert len(ledger) == 3  # the first page was acknowledged and checkpointed
        saved = load_position(CheckpointStore(tmp_path / "checkpoint.sqlite").position(cfg.name))
        assert saved  # a position was kept
        make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(minutes=1)).sync()
        assert ids(ledger) == sorted(sale_id(vendor, i) for i in range(11))


@pytest.mark.parametrize("vendor", VENDORS)
def test_rate_limit_and_server_errors_are_retried(vendor: str, tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(4):
            add_sale(vendor, st, i, T0 + timedelta(minutes=5 * i))
        st.fault(PATHS[vendor], 429, times=2, **{"Retry-After": "2"})
        st.fault(PATHS[vendor], 503)
        ledger: list[PosTicket] = []
        sleeps: list[float] = []
        make_poller(config(vendor, base), ListSink(ledger), tmp_path, NOW, sleeps).sync()
        assert ids(ledger) == sorted(sale_id(vendor, i) for i in range(4))
        assert sleeps[:2] == [2.0, 2.0] and 0 <= sleeps[2] <= 0.04  # Retry-After, then jittered backoff


@pytest.mark.parametrize("vendor", VENDORS)
def test_repeated_errors_stop_cleanly_and_keep_the_checkpoint(vendor: str, tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(4):
            add_sale(vendor, st, i, T0 + timedelta(minutes=5 * i))
        ledger: list[PosTicket] = []
        cfg = config(vendor, base)
        make_poller(cfg, ListSink(ledger), tmp_path, NOW).sync()
        store = CheckpointStore(tmp_path / "checkpoint.sqlite")
        before = store.position(cfg.name)
        add_sale(vendor, st, 30, NOW + timedelta(minutes=5))
        st.fault(PATHS[vendor], 500, times=50)
        with pytest.raises(SourceUnavailable, match="gave up after 4 attempts"):
            make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(hours=1)).sync()
        assert store.position(cfg.name) == before
        st.faults.clear()
        make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(hours=1)).sync()
        assert ids(ledger) == sorted([*(sale_id(vendor, i) for i in range(4)), sale_id(vendor, 30)])


@pytest.mark.parametrize("vendor", VENDORS)
def test_oauth_refresh_rotates_and_persists_tokens(
    vendor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("POS_TEST_SECRET", "s3cr3t-client")
    monkeypatch.setenv("POS_TEST_REFRESH", "refresh-0")
    state = VendorState(access_tokens=set(), refresh_tokens={"refresh-0"})
    with vendor_server(state) as (base, st):
        for i in range(4):
            add_sale(vendor, st, i, T0 + timedelta(minutes=5 * i))
        auth = Auth(kind="oauth2", client_id="app-1", client_secret=Secret(env="POS_TEST_SECRET"),
                    refresh_token=Secret(env="POS_TEST_REFRESH"))  # fmt: skip
        cfg = config(vendor, base, auth=auth)
        ledger: list[PosTicket] = []
        make_poller(cfg, ListSink(ledger), tmp_path, NOW).sync()
        tokens = TokenFile(tmp_path / "tokens.json").load()
        assert tokens["refresh_token"] == "refresh-1" and tokens["access_token"] == "access-1"
        assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
        # The access token expires: a 401, one refresh with the rotated token, and the sync goes on.
        st.access_tokens.clear()
        add_sale(vendor, st, 40, NOW + timedelta(minutes=5))
        make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(hours=1)).sync()
        assert TokenFile(tmp_path / "tokens.json").load()["refresh_token"] == "refresh-2"
        assert st.refresh_tokens == {"refresh-2"}  # refresh-0 and refresh-1 no longer work
        assert ids(ledger) == sorted([*(sale_id(vendor, i) for i in range(4)), sale_id(vendor, 40)])
        # A revoked grant is an auth failure, not a retry loop.
        st.access_tokens.clear()
        st.refresh_tokens.clear()
        with pytest.raises(AuthFailed, match="refused the refresh token"):
            make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(hours=2)).sync()
    logged = caplog.text
    for secret in ("s3cr3t-client", "refresh-0", "refresh-1", "access-1", "static-token"):
        assert secret not in logged


def test_api_key_refused_is_an_auth_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POS_TEST_TOKEN", "wrong")
    with vendor_server() as (base, st):
        add_sale("square", st, 1, T0)
        with pytest.raises(AuthFailed, match="HTTP 401"):
            make_poller(config("square", base), ListSink([]), tmp_path, NOW).sync()


def test_bad_record_is_rejected_with_its_reason_and_the_rest_published(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(3):
            add_sale("square", st, i, T0 + timedelta(minutes=i))
        st.square["SQ000001ORDER"]["total_tax_money"] = {"amount": "9.7", "currency": "USD"}
        ledger: list[PosTicket] = []
        sink = ListSink(ledger)
        result = make_poller(config("square", base), sink, tmp_path, NOW).sync()
        assert ids(ledger) == [sale_id("square", 0), sale_id("square", 2)]
        assert result.rejected == 1
        [(rid, reason)] = sink.rejects
        assert rid == "square:SQ000001ORDER" and "total_tax_money" in reason and "'9.7'" in reason


def test_backfill_window_does_not_move_the_checkpoint_back(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(6):
            add_sale("square", st, i, T0 + timedelta(hours=i))
        ledger: list[PosTicket] = []
        cfg = config("square", base)
        p = make_poller(cfg, ListSink(ledger), tmp_path, T0 + timedelta(hours=10))
        p.sync()
        top = p.store.position(cfg.name)
        backfill = make_poller(cfg, ListSink(ledger), tmp_path, T0 + timedelta(hours=10))
        result = backfill.sync(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
        assert result.records == 2 and result.published == 0  # already published, not again
        assert backfill.store.position(cfg.name) == top


def test_scrub_removes_customer_fields_recursively() -> None:
    order = {"id": 1, "email": "bob@mail.example.com", "customer": {"first_name": "Bob"},
             "billing_address": {"city": "L"}, "line_items": [{"sku": "MUG-BLK", "email": "x@y.z"}]}  # fmt: skip
    clean = scrub(order)
    assert "customer" not in clean and "email" not in clean and "billing_address" not in clean
    assert clean["line_items"][0] == {"sku": "MUG-BLK"}


def test_http_helpers() -> None:
    assert retry_after("7") == 7.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after("soon") is None


def test_clover_keyset_paging_with_many_orders_at_the_same_millisecond(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(8):
            add_sale("clover", st, i, T0)  # all modified in the same millisecond, more than a page
        add_sale("clover", st, 8, T0 + timedelta(seconds=1))
        ledger: list[PosTicket] = []
        make_poller(config("clover", base), ListSink(ledger), tmp_path, NOW).sync()
        assert ids(ledger) == sorted(sale_id("clover", i) for i in range(9))
        offsets = [q for m, q in st.log if "offset=" in q]
        assert len(offsets) >= 4


def test_square_searches_at_most_ten_locations_per_query(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        stores = {f"LOC{i:02d}": f"s{i}" for i in range(12)}
        for i in range(12):
            order = square_order(i, T0 + timedelta(minutes=i), location=f"LOC{i:02d}")
            st.square[order["id"]] = order
        ledger: list[PosTicket] = []
        make_poller(config("square", base, stores=stores), ListSink(ledger), tmp_path, NOW).sync()
        assert ids(ledger) == sorted(sale_id("square", i) for i in range(12))
        assert {t.store_id for t in ledger} == set(stores.values())


def test_lightspeed_backfill_filters_on_sale_date(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(6):
            add_sale("lightspeed", st, i, T0 + timedelta(hours=i))
        ledger: list[PosTicket] = []
        cfg = config("lightspeed", base)
        p = make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(hours=10))
        p.sync(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=4))
        assert ids(ledger) == [sale_id("lightspeed", 2), sale_id("lightspeed", 3)]
        assert load_position(p.store.position(cfg.name)) == {}  # a backfill does not move the cursor past unread sales
        p.sync()
        assert ids(ledger) == sorted(sale_id("lightspeed", i) for i in range(6))


def _square_twelve_locations(st: VendorState) -> tuple[dict[str, str], list[str]]:
    """Locations LOC00-LOC11 (two SearchOrders groups: 10 + 2). Group 1 sold late (T0+2h..), group 2 early."""
    stores = {f"LOC{i:02d}": f"s{i}" for i in range(12)}
    want = []
    for i in range(10):
        o = square_order(i, T0 + timedelta(minutes=120 + i), location=f"LOC{i:02d}")
        st.square[o["id"]] = o
        want.append(f"square:{o['id']}")
    for i in range(10, 16):
        o = square_order(i, T0 + timedelta(minutes=i), location=f"LOC{10 + i % 2:02d}")
        st.square[o["id"]] = o
        want.append(f"square:{o['id']}")
    return stores, sorted(want)


def test_square_location_groups_keep_their_own_checkpoint(tmp_path: Path) -> None:
    """Group 1 is read to T0+2h, then group 2 fails mid-way: group 2 must restart from its own position, not from
    group 1's later one (which would skip its unread orders for good)."""
    with vendor_server() as (base, st):
        stores, want = _square_twelve_locations(st)
        cfg = config("square", base, stores=stores)
        ledger: list[PosTicket] = []
        # Group 1: 10 orders, page_size 3 = 4 flushes; group 2's first page is flush 5, its second fails.
        with pytest.raises(DeliveryError):
            make_poller(cfg, ListSink(ledger, fail_at=6), tmp_path, NOW).sync()
        saved = load_position(CheckpointStore(tmp_path / "checkpoint.sqlite").position(cfg.name))
        assert set(saved) == set(stores)  # one entry per location
        assert saved["LOC00"] == "2026-03-14T11:09:00.000Z" and saved["LOC10"] == "2026-03-14T09:12:00.000Z"
        make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(minutes=1)).sync()
        assert ids(ledger) == want and len(ledger) == len(want)


def test_square_single_checkpoint_of_older_versions_is_migrated_to_every_location(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        stores, _ = _square_twelve_locations(st)
        old = square_order(90, T0 - timedelta(minutes=30), location="LOC10")  # before the old checkpoint
        st.square[old["id"]] = old
        cfg = config("square", base, stores=stores)
        store = CheckpointStore(tmp_path / "checkpoint.sqlite")
        store.commit(cfg.name, [], json.dumps({"all": "2026-03-14T09:11:00.000Z"}))  # the old format
        ledger: list[PosTicket] = []
        make_poller(cfg, ListSink(ledger), tmp_path, NOW).sync()
        # Every location starts from the old time less the 10-minute overlap: all of group 1, and the group-2
        # orders from 09:01 on (09:10-09:15), none lost; the 08:30 one, already read before, is not re-read.
        assert ids(ledger) == sorted(sale_id("square", i) for i in range(16))
        saved = load_position(store.position(cfg.name))
        assert "all" not in saved and set(saved) == set(stores)
        assert saved["LOC10"] == "2026-03-14T09:15:00.000Z"


@pytest.mark.parametrize("vendor", VENDORS)
def test_backfill_takes_the_sales_made_in_the_window_whenever_they_last_changed(vendor: str, tmp_path: Path) -> None:
    """Sale 1 is made on day 1 and refunded on day 40, sale 2 made on day 35, sale 3 made before the window and
    refunded on day 10. A fresh source backfills days 0-30: sale 1 only (the vendors' updated/modified filters
    would miss it and take sale 3)."""
    with vendor_server() as (base, st):
        add_sale(vendor, st, 1, T0 + timedelta(days=1))
        add_refund(vendor, st, 1, T0 + timedelta(days=40))
        add_sale(vendor, st, 2, T0 + timedelta(days=35))
        add_sale(vendor, st, 3, T0 - timedelta(days=5))
        add_refund(vendor, st, 3, T0 + timedelta(days=10))
        ledger: list[PosTicket] = []
        p = make_poller(config(vendor, base), ListSink(ledger), tmp_path, T0 + timedelta(days=60))
        p.sync(since=T0, until=T0 + timedelta(days=30))
        sales = {sale_id(vendor, i) for i in (1, 2, 3)}
        assert [t for t in ids(ledger) if t in sales] == [sale_id(vendor, 1)]
        assert all(t.occurred_at < T0 + timedelta(days=30) for t in ledger if t.ticket_id in sales)


def test_clover_backfill_asks_for_at_most_90_days_of_created_time_per_request(tmp_path: Path) -> None:
    """Clover cuts a createdTime range longer than 90 days to its last 90 days (the stand-in does too)."""
    with vendor_server() as (base, st):
        for i, day in enumerate((2, 95, 150, 199)):
            add_sale("clover", st, i, T0 + timedelta(days=day))
        ledger: list[PosTicket] = []
        p = make_poller(config("clover", base), ListSink(ledger), tmp_path, T0 + timedelta(days=300))
        p.sync(since=T0, until=T0 + timedelta(days=200))
        assert ids(ledger) == sorted(sale_id("clover", i) for i in range(4))
        ranges = []
        for _, path in st.log:
            q = parse_qs(urlsplit(path).query)
            if "filter" in q:
                assert not any(f.startswith("modifiedTime") for f in q["filter"])
                lo = next(int(f[13:]) for f in q["filter"] if f.startswith("createdTime>="))
                hi = next(int(f[12:]) for f in q["filter"] if f.startswith("createdTime<"))
                ranges.append((lo, hi))
        assert all(hi - lo <= 90 * 86_400_000 for lo, hi in ranges) and len(ranges) >= 3


def test_square_refund_tender_comes_from_the_sale(tmp_path: Path) -> None:
    """A Square Refund names its tender by id only: the poller reads the sale's tenders, from the same page or
    with BatchRetrieveOrders when the sale was read in an earlier sync."""
    with vendor_server() as (base, st):
        add_sale("square", st, 1, T0)
        add_sale("square", st, 2, T0 + timedelta(minutes=1))
        cfg = config("square", base, page_size=10)
        ledger: list[PosTicket] = []
        make_poller(cfg, ListSink(ledger), tmp_path, NOW).sync()
        add_refund("square", st, 1, NOW + timedelta(minutes=1))
        del st.square["SQ000001ORDER"]["refunds"], st.square["SQ000001ORDER"]["return_amounts"]
        st.square["SQ000001ORDER"]["updated_at"] = "2026-03-14T08:00:00.000Z"  # the sale is not re-read
        make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(hours=1)).sync()
        [refund] = [t for t in ledger if t.ticket_id == "square:SQ000501RETURN"]
        assert [(p.method.value, p.amount) for p in refund.payments] == [("CASH", -353)]
        assert st.retrieved == [["SQ000001ORDER"]]
        add_refund("square", st, 2, NOW + timedelta(hours=2))  # the sale changes too: found in the same page
        make_poller(cfg, ListSink(ledger), tmp_path, NOW + timedelta(hours=3)).sync()
        [refund2] = [t for t in ledger if t.ticket_id == "square:SQ000502RETURN"]
        assert [(p.method.value, p.amount) for p in refund2.payments] == [("CASH", -353)]
        assert st.retrieved == [["SQ000001ORDER"], ["SQ000001ORDER"]]  # the first return, re-read in the overlap


def test_retry_after_longer_than_backoff_max_is_honoured_up_to_its_own_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with vendor_server() as (base, st):
        add_sale("square", st, 1, T0)
        st.fault("/v2/orders/search", 429, 1, **{"Retry-After": "120"})
        st.fault("/v2/orders/search", 429, 1, **{"Retry-After": "4000"})
        sleeps: list[float] = []
        cfg = config("square", base, backoff_max=5, retry_after_max=600)
        with caplog.at_level(logging.WARNING, logger="producers.pos.http"):
            make_poller(cfg, ListSink([]), tmp_path, NOW, sleeps).sync()
        assert sleeps == [120.0, 600.0]  # the vendor's 120 s, not backoff_max; 4000 s cut to retry_after_max
        assert "Retry-After 4000s is longer than retry_after_max, waiting 600s" in caplog.text


@pytest.mark.parametrize("vendor", VENDORS)
def test_stop_request_ends_the_sync_after_the_page_with_the_checkpoint_saved(vendor: str, tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(9):
            add_sale(vendor, st, i, T0 + timedelta(minutes=5 * i))
        cfg = config(vendor, base)
        ledger: list[PosTicket] = []
        flag = {"stop": False}
        p = make_poller(cfg, ListSink(ledger), tmp_path, NOW)
        p.stopped = lambda: flag["stop"]

        def stop_after_first_page(scope: str, fraction: float | None, r: Any) -> None:
            flag["stop"] = True

        result = p.sync(on_progress=stop_after_first_page)
        assert result.stopped and result.pages == 1 and ids(ledger) == sorted(sale_id(vendor, i) for i in range(3))
        assert load_position(p.store.position(cfg.name))  # saved with that page
        again = make_poller(cfg, ListSink(ledger), tmp_path, NOW).sync()
        assert not again.stopped and ids(ledger) == sorted(sale_id(vendor, i) for i in range(9))


def test_stop_request_interrupts_a_long_retry_after_wait(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        add_sale("square", st, 1, T0)
        st.fault("/v2/orders/search", 429, 1, **{"Retry-After": "600"})
        cfg = config("square", base)
        flag = {"stop": False}
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            flag["stop"] = len(sleeps) == 3  # SIGTERM during the third second of the wait

        client = make_client(cfg, adapter_for(cfg), TokenFile(tmp_path / "tokens.json"), sleep=sleep,
                             stopped=lambda: flag["stop"])  # fmt: skip
        store = CheckpointStore(tmp_path / "checkpoint.sqlite")
        result = Poller(cfg, ListSink([]), store, client, now=lambda: NOW, stopped=lambda: flag["stop"]).sync()
        assert result.stopped and result.pages == 0 and sum(sleeps) <= 3.0
        assert [p for _, p in st.log] == ["/v2/orders/search"]  # no retry was sent


def test_clover_poll_expands_what_the_mapping_reads(tmp_path: Path) -> None:
    """Unexpanded, Clover gives a line's item and a payment's tender as bare {"id"} references (so does the
    stand-in): the poller must ask for the item categories and the tender to map them."""
    with vendor_server() as (base, st):
        add_sale("clover", st, 1, T0)
        ledger: list[PosTicket] = []
        make_poller(config("clover", base), ListSink(ledger), tmp_path, NOW).sync()
        [t] = ledger
        assert [(ln.sku, ln.category) for ln in t.lines] == [("BRG-1", None), ("BEAN-LB", "Coffee")]
        assert [(p.method.value, p.amount) for p in t.payments] == [("CARD", 2624)]
        # Clover documents at most three expansions per request (the stand-in refuses more with a 400)
        assert st.expand_refused == 0 and st.expands
        assert all(len(e.split(",")) <= 3 for e in st.expands)


def test_clover_page_drops_an_order_modified_between_its_two_expansion_requests(tmp_path: Path) -> None:
    """A page is read once per expansion group; an order changed in between leaves the time range of the second
    request: it is not published half-expanded, and the next sync publishes its new version whole."""
    with vendor_server() as (base, st):
        add_sale("clover", st, 1, T0)
        add_sale("clover", st, 2, T0 + timedelta(minutes=1))

        def touch(method: str, path: str) -> None:
            if path.endswith("/orders") and len(st.expands) == 1:  # between the two requests of the first page
                st.clover[MERCHANT]["CLV000001"]["modifiedTime"] = int((NOW + timedelta(minutes=5)).timestamp() * 1000)

        st.on_request = touch
        ledger: list[PosTicket] = []
        make_poller(config("clover", base), ListSink(ledger), tmp_path, NOW).sync()
        assert ids(ledger) == [sale_id("clover", 2)]
        st.on_request = None
        make_poller(config("clover", base), ListSink(ledger), tmp_path, NOW + timedelta(minutes=10)).sync()
        assert ids(ledger) == [sale_id("clover", 1), sale_id("clover", 2)]
        assert all(t.payments for t in ledger)


def test_clover_stand_in_honours_nested_expands() -> None:
    from tests.producers.pos.vendor_server import _clover_expanded

    order = clover_order(1, 1_700_000_000_000)
    bare = _clover_expanded(order, {"lineItems", "payments"})
    assert bare["lineItems"]["elements"][1]["item"] == {"id": "ITEMBEANS01"}
    assert bare["payments"]["elements"][0]["tender"] == {"id": "TENDERCARD1"} and "refunds" not in bare
    assert "categories" not in _clover_expanded(order, {"lineItems.item"})["lineItems"]["elements"][1]["item"]
    full = _clover_expanded(order, {"lineItems.item.categories"})["lineItems"]["elements"][1]["item"]
    assert full["categories"]["elements"][0]["name"] == "Coffee"
