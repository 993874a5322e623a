from pathlib import Path
from typing import Any

import pytest

from schemas.catalogue import CatalogueError, load_catalogue, parse_catalogue

GOOD: dict[str, Any] = {
    "stores": [
        {
            "id": "s1",
            "name": "One",
            "timezone": "Asia/Kolkata",
            "area_m2": 100,
            "category": "fashion",
            "zones": [{"id": "z1", "area_m2": 40}],
            "opening_hours": {"mon": {"open": "09:00", "close": "21:00"}},
        },
        {"id": "s2", "name": "Two", "timezone": "Europe/Berlin", "area_m2": 50, "category": "food", "mall_id": "m"},
    ],
    "cameras": [
        {"id": "c1", "store_id": "s1", "zone_id": None, "role": "entrance"},
        {"id": "c2", "store_id": "s1", "zone_id": "z1", "role": "zone", "source": "rtsp://cam/1"},
    ],
}


def test_demo_estate_is_valid(demo_catalogue):
    assert len(demo_catalogue.stores) >= 6
    zones = {s.timezone for s in demo_catalogue.stores}
    assert {"Asia/Kolkata", "America/New_York", "Europe/Berlin"} <= zones
    for cam in demo_catalogue.cameras:
        demo_catalogue.store(cam.store_id)


def test_parses_and_answers_lookups():
    cat = parse_catalogue(GOOD)
    store = cat.store("s1")
    assert store.tz.key == "Asia/Kolkata"
    assert store.hours_on(0) is not None and store.hours_on(1) is None  # open Mondays only
    assert cat.store("s2").hours_on(6) is not None  # no opening hours: always open
    assert [c.id for c in cat.cameras_of("s1")] == ["c1", "c2"]
    assert cat.camera("c2").model_extra == {"source": "rtsp://cam/1"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["stores"][0].update(timezone="Asia/Kolkatta"), "stores[0].timezone: unknown IANA time zone"),
        (lambda d: d["stores"][1].update(area_m2=0), "stores[1].area_m2: Input should be greater than 0"),
        (lambda d: d["stores"][1].update(id="s1"), "stores[1].id: duplicate store id 's1'"),
        (lambda d: d["cameras"][0].update(store_id="nope"), "cameras[0].store_id: no store 'nope'"),
        (lambda d: d["cameras"][1].update(zone_id="z9"), "cameras[1].zone_id: store 's1' has no zone 'z9'"),
        (lambda d: d["cameras"][0].update(zone_id="z1"), "an entrance camera has zone_id null"),
        (lambda d: d["stores"][1].update(currency="eur"), "stores[1].currency: currency must be an active ISO 4217"),
        (lambda d: d["stores"][1].update(currency="ABC"), "got 'ABC'"),
        (
            lambda d: d["stores"][0]["zones"].append({"id": "z1", "area_m2": 5}),
            "stores[0].zones: duplicate zone id 'z1'",
        ),
        (
            lambda d: d["cameras"][0].update(zoneid="z1"),
            "cameras[0]: unknown key(s) 'zoneid' (did you mean 'zone_id'?)",
        ),
        (lambda d: d["cameras"][1].update(sourse="rtsp://x"), "'sourse' (did you mean 'source'?)"),
        (
            lambda d: d["stores"][0]["opening_hours"].update(monday={"open": "09:00", "close": "10:00"}),
            "unknown weekday(s) ['monday']",
        ),
        (
            lambda d: d["stores"][0]["opening_hours"].update(tue={"open": "21:00", "close": "09:00"}),
            "closes at 09:00:00 before it opens at 21:00:00",
        ),
    ],
)
def test_errors_name_file_key_and_reason(tmp_path: Path, mutate, message):
    import copy

    import yaml

    data = copy.deepcopy(GOOD)
    mutate(data)
    path = tmp_path / "estate.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_camera_setting_keys_are_the_camera_producer_settings():
    """The catalogue lets through exactly the keys the camera producer reads (and checks the values of)."""
    from producers.camera.config import CameraSettings
    from schemas.catalogue import CAMERA_SETTING_KEYS

    assert set(CameraSettings.model_fields) == CAMERA_SETTING_KEYS


def test_a_currency_the_catalogue_accepts_is_one_tickets_accept():
    """`catalogue validate` and `simulate` agree: a store's currency passes both or neither."""
    from pydantic import ValidationError

    from schemas.models import ISO_4217_CODES, PosTicket
    from tests.support.records import GOOD_TICKET

    for code in [*sorted(ISO_4217_CODES), "eur", "XAU", "EURO", "", "ABC"]:
        data = {"stores": [{**GOOD["stores"][1], "currency": code}]}
        try:
            parse_catalogue(data)
            in_catalogue = True
        except CatalogueError:
            in_catalogue = False
        try:
            PosTicket.model_validate({**GOOD_TICKET, "currency": code})
            on_tickets = True
        except ValidationError:
            on_tickets = False
        assert in_catalogue == on_tickets == (code in ISO_4217_CODES), code


def test_toml_and_unreadable_files(tmp_path: Path):
    toml = tmp_path / "estate.toml"
    toml.write_text('[[stores]]\nid = "s"\nname = "S"\ntimezone = "Asia/Kathmandu"\narea_m2 = 10\ncategory = "food"\n')
    assert parse_catalogue is not None and load_catalogue(toml).store("s").timezone == "Asia/Kathmandu"
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stores: [unclosed")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(bad)


def test_cli_validate(tmp_path: Path):
    from typer.testing import CliRunner

    from tillflow.cli import app

    path = tmp_path / "estate.yaml"
    path.write_text("stores:\n  - {id: a, name: A, timezone: Mars/Olympus, area_m2: 5, category: x}\n")
    result = CliRunner().invoke(app, ["catalogue", "validate", str(path)])
    assert result.exit_code == 1
    assert "stores[0].timezone: unknown IANA time zone 'Mars/Olympus'" in result.output
