"""Catalogues for the simulator tests: the demo estate and a small one with awkward time zones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.catalogue import Catalogue, parse_catalogue

WEEK = {d: {"open": "09:00", "close": "20:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def small_catalogue() -> Catalogue:
    """Four stores: Berlin fashion with two doors and a zone, Kolkata food (+5:30), Kathmandu sports (+5:45),
    and a Berlin grocery open around the clock (to see the 23-hour DST day)."""
    data: dict[str, Any] = {
        "stores": [
            {"id": "ber-fashion", "name": "Berlin fashion", "timezone": "Europe/Berlin", "area_m2": 300,
             "category": "fashion", "mall_id": "m1", "tenant_id": "t1", "currency": "EUR", "opening_hours": WEEK,
             "zones": [{"id": "shoes", "area_m2": 80}]},
            {"id": "kol-food", "name": "Kolkata food", "timezone": "Asia/Kolkata", "area_m2": 100,
             "category": "food", "currency": "INR", "opening_hours": WEEK},
            {"id": "ktm-sports", "name": "Kathmandu sports", "timezone": "Asia/Kathmandu", "area_m2": 150,
             "category": "sports", "currency": "NPR", "opening_hours": WEEK},
            {"id": "ber-24h", "name": "Berlin 24h grocery", "timezone": "Europe/Berlin", "area_m2": 200,
             "category": "grocery", "currency": "EUR"},
        ],
        "cameras": [
            {"id": "c-ber-main", "store_id": "ber-fashion", "zone_id": None, "role": "entrance"},
            {"id": "c-ber-side", "store_id": "ber-fashion", "zone_id": None, "role": "entrance"},
            {"id": "c-ber-shoes", "store_id": "ber-fashion", "zone_id": "shoes", "role": "zone"},
            {"id": "c-kol", "store_id": "kol-food", "zone_id": None, "role": "entrance"},
            {"id": "c-ktm", "store_id": "ktm-sports", "zone_id": None, "role": "entrance"},
            {"id": "c-24h", "store_id": "ber-24h", "zone_id": None, "role": "entrance"},
        ],
    }  # fmt: skip
    return parse_catalogue(data)


@pytest.fixture(scope="session")
def small() -> Catalogue:
    return small_catalogue()


@pytest.fixture(scope="session")
def small_catalogue_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import yaml

    path = tmp_path_factory.mktemp("catalogue") / "small.yaml"
    path.write_text(yaml.safe_dump(small_catalogue().model_dump(mode="json")))
    return path
