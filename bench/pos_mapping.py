"""Tickets per second mapped per POS vendor, against json.loads of the same payloads (the baseline).

Run: ``python -m bench.pos_mapping [--records N] [--repeats R]``. Prints the median of R runs per vendor:
payloads decoded per second by ``json.loads`` alone, tickets per second through ``json.loads`` + mapping
(validated ``PosTicket`` models), and the ratio of the two. Also CSV export lines per second through the
file parser against ``csv.reader`` of the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from producers.files.parse import parse_file
from producers.files.spec import FileSpec
from producers.pos import clover, lightspeed, shopify, square
from producers.pos.common import MapContext
from producers.pos.examples import (
    clover_order,
    lightspeed_sale,
    shopify_order,
    shopify_transactions,
    square_order,
)

AT = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
CTX = MapContext(
    source="bench", ingested_at=AT, currency="NZD",
    stores={"L8RY5ZZ0T8RZM": "s1", "48752903": "s2", "0adaafb3-6583-11e5-fb60-d3e7e1dbd1a1": "s3",
            "MJ3ZB0FP6X2P1": "s4"},
)  # fmt: skip


def payloads(vendor: str, n: int) -> list[str]:
    out = []
    for i in range(n):
        at = AT + timedelta(seconds=i)
        if vendor == "square":
            p = square_order(i, at)
        elif vendor == "shopify":
            p = shopify_order(i, at)
            p["transactions"] = shopify_transactions(p)
        elif vendor == "lightspeed":
            p = lightspeed_sale(i, at, i)
        else:
            p = clover_order(i, int(at.timestamp() * 1000))
        out.append(json.dumps(p))
    return out


MAPPERS: dict[str, Callable[[dict[str, Any]], list[Any]]] = {
    "square": lambda o: square.map_order(o, CTX),
    "shopify": lambda o: shopify.map_order(o, CTX),
    "lightspeed": lambda o: lightspeed.map_sale(o, CTX),
    "clover": lambda o: clover.map_order(o, CTX, "MJ3ZB0FP6X2P1"),
}


def _decode(raw: list[str]) -> int:
    return sum(1 for r in raw if json.loads(r))


def _map(raw: list[str], mapper: Callable[[dict[str, Any]], list[Any]]) -> int:
    return sum(len(mapper(json.loads(r))) for r in raw)


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    count = fn()
    return time.perf_counter() - start, count


CSV_SPEC: dict[str, Any] = {
    "name": "bench-csv", "format": "csv", "encoding": "cp1252", "delimiter": ";", "decimal": ",",
    "date_format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris", "currency": "EUR", "store": "paris-01",
    "fields": {"ticket": 0, "occurred_at": 1, "sku": 2, "description": 3, "quantity": 4, "unit_price": 5,
               "tax_amount": 6, "payment_method": 7},
}  # fmt: skip


def csv_export(lines: int) -> bytes:
    """A cp1252 export with three lines per ticket."""
    rows = ["Ticket;Date;Article;Libellé;Qté;PU;TVA;Règlement"]
    rows += [
        f"{i // 3};14/03/2026 10:{i % 60:02d};SKU{i % 97};Café {i};1;{i % 40 + 1},50;0,25;CB" for i in range(lines)
    ]
    return "\n".join(rows).encode("cp1252")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv or [])
    print(f"{'vendor':<11}{'json.loads/s':>14}{'mapped tickets/s':>18}{'ratio':>8}")
    for vendor, mapper in MAPPERS.items():
        raw = payloads(vendor, args.records)
        base, mapped = [], []
        for _ in range(args.repeats):
            t, n = timed(partial(_decode, raw))
            base.append(n / t)
            t, n = timed(partial(_map, raw, mapper))
            mapped.append(n / t)
        b, m = statistics.median(base), statistics.median(mapped)
        print(f"{vendor:<11}{b:>14,.0f}{m:>18,.0f}{m / b:>8.3f}")

    data = csv_export(args.records * 5)
    spec = FileSpec(**CSV_SPEC)
    base, parsed = [], []
    for _ in range(args.repeats):
        t, n = timed(lambda: sum(1 for _ in csv.reader(io.StringIO(data.decode("cp1252")), delimiter=";")))
        base.append(n / t)
        t, n = timed(lambda: parse_file(data, spec, AT).rows)
        parsed.append(n / t)
    b, m = statistics.median(base), statistics.median(parsed)
    print(f"{'csv file':<11}{b:>14,.0f}{m:>18,.0f}{m / b:>8.3f}   (lines/s: csv.reader vs parse_file)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
