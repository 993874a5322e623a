"""POS vendor test helpers: a list sink, sales and refunds added to the vendor stand-in, a source config per vendor."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from producers.pos.examples import (
    clover_order,
    clover_refund,
    lightspeed_sale,
    shopify_order,
    shopify_refund,
    square_order,
    square_return_order,
)
from producers.pos.source import Auth, Secret, SourceConfig
from schemas.models import PosTicket
from tests.producers.pos.vendor_server import VendorState
from tillflow.sender import DeliveryError

MERCHANT = "MJ3ZB0FP6X2P1"


class ListSink:
    """A sink that acknowledges on flush into a shared ledger, or fails the flush numbered ``fail_at``."""

    def __init__(self, ledger: list[PosTicket], fail_at: int | None = None) -> None:
        self.ledger = ledger
        self.pending: list[PosTicket] = []
        self.rejects: list[tuple[str, str]] = []
        self.flushes = 0
        self.fail_at = fail_at

    def send(self, ticket: PosTicket) -> None:
        self.pending.append(ticket)

    def reject(self, source: str, record_id: str, payload: Any, reason: str) -> None:
        self.rejects.append((record_id, reason))

    def flush(self) -> None:
        self.flushes += 1
        if self.fail_at == self.flushes:
            self.pending.clear()
            raise DeliveryError("1 of 1 records not acknowledged: broker down")
        self.ledger.extend(self.pending)
        self.pending.clear()


def sale_id(vendor: str, i: int) -> str:
    return {
        "square": f"square:SQ{i:06d}ORDER",
        "shopify": f"shopify:{820982911946154500 + i}",
        "lightspeed": f"lightspeed:5e9b7a3c-0000-4000-8000-{i:012d}",
        "clover": f"clover:CLV{i:06d}",
    }[vendor]


def add_sale(vendor: str, st: VendorState, i: int, at: datetime) -> None:
    if vendor == "square":
        o = square_order(i, at)
        st.square[o["id"]] = o
    elif vendor == "shopify":
        o = shopify_order(i, at)
        st.shopify[int(o["legacyResourceId"])] = o
    elif vendor == "lightspeed":
        st.put_lightspeed(lightspeed_sale(i, at, 0))
    else:
        o = clover_order(i, int(at.timestamp() * 1000))
        st.clover.setdefault(MERCHANT, {})[o["id"]] = o


def add_refund(vendor: str, st: VendorState, i: int, at: datetime) -> str:
    """Refund part of sale ``i`` at ``at`` (the sale's record changes too); returns the new ticket id."""
    if vendor == "square":
        ret = square_return_order(500 + i, f"SQ{i:06d}ORDER", at)
        st.square[ret["id"]] = ret
        orig = st.square[f"SQ{i:06d}ORDER"]
        orig.update(updated_at=at.isoformat().replace("+00:00", "Z"), version=orig["version"] + 1,
                    refunds=copy.deepcopy(ret["refunds"]), return_amounts=ret["return_amounts"])  # fmt: skip
        return f"square:{ret['id']}"
    if vendor == "shopify":
        o = st.shopify[820982911946154500 + i]
        o["refunds"].append(shopify_refund(o, 9000 + i, at))
        o["updatedAt"] = at.isoformat()
        return f"shopify:{o['legacyResourceId']}:refund:{9000 + i}"
    if vendor == "lightspeed":
        ret = lightspeed_sale(500 + i, at, 0)
        ret.update(return_for=f"5e9b7a3c-0000-4000-8000-{i:012d}", total_price=-19.130435, total_tax=-2.869565)
        ret["line_items"] = [dict(ret["line_items"][1], quantity=-1, total_price=-19.130435)]
        ret["payments"][0]["amount"] = -22.0
        st.put_lightspeed(ret)
        return f"lightspeed:{ret['id']}"
    o = st.clover[MERCHANT][f"CLV{i:06d}"]
    ms = int(at.timestamp() * 1000)
    o["refunds"]["elements"].append(clover_refund(o, f"RF{i}", ms))
    o["modifiedTime"] = ms
    return f"clover:refund:RF{i}"


def config(vendor: str, base: str, **kw: Any) -> SourceConfig:
    stores = {"square": {"L8RY5ZZ0T8RZM": "s1"}, "shopify": {"48752903": "s2"}, "lightspeed": {OUTLET: "s3"},
              "clover": {MERCHANT: "s4"}}[vendor]  # fmt: skip
    base_kw: dict[str, Any] = {
        "name": f"{vendor}-test", "vendor": vendor, "base_url": base, "stores": stores, "currency": "NZD",
        "auth": Auth(kind="api_key", token=Secret(env="POS_TEST_TOKEN")), "page_size": 3, "overlap": "10m",
        "backoff_base": 0.01, "backoff_max": 5, "max_attempts": 4,
    }  # fmt: skip
    base_kw.update(kw)
    return SourceConfig(**base_kw)


OUTLET = "0adaafb3-6583-11e5-fb60-d3e7e1dbd1a1"
