"""Every contract through schemas.serde with the real local registry, and the JSON form of each record."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from pydantic import ValidationError

from schemas.models import (
    Alert,
    AlertKind,
    AlertState,
    CameraCount,
    Channel,
    HourlyConversion,
    Payment,
    PaymentMethod,
    PosTicket,
    Record,
    Severity,
    TicketKind,
    TicketLine,
)
from schemas.serde import DecodeError, EncodeError, RegistryUnavailable, TopicSerde, schema_text
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from tillflow.registry.process import RegistryProcess

T0 = datetime(2026, 3, 29, 1, 0, 0, 123000, tzinfo=UTC)
PARIS_SUMMER = timezone(timedelta(hours=2))


def tickets() -> list[PosTicket]:
    full = PosTicket(
        ticket_id="T-1",
        source="pos-db-1",
        store_id="S1",
        tenant_id="tenant-9",
        terminal_id="till-3",
        kind=TicketKind.SALE,
        occurred_at=datetime(2026, 3, 29, 3, 0, 0, 500000, tzinfo=PARIS_SUMMER),  # aware, not UTC
        currency="EUR",
        gross_amount=12_99,
        net_amount=10_83,
        tax_amount=2_16,
        discount_amount=1_00,
        payments=(Payment(method=PaymentMethod.CARD, amount=10_00), Payment(method=PaymentMethod.CASH, amount=2_99)),
        channel=Channel.ONLINE,
        lines=(
            TicketLine(sku="A1", description="tea", quantity=1.5, unit_price=4_00, net_amount=6_00, category="food"),
            TicketLine(sku="B2", quantity=1.0, unit_price=6_99, discount_amount=1_00, net_amount=5_99),
        ),
        original_ticket_id=None,
        ingested_at=T0,
    )
    minimal = PosTicket(
        ticket_id="T-2",
        source="file",
        store_id="S1",
        kind=TicketKind.VOID,
        occurred_at=T0,
        currency="GBP",
        gross_amount=0,
        net_amount=0,
        tax_amount=0,
        discount_amount=0,
        original_ticket_id="T-1",
        ingested_at=T0,
    )
    every_kind = [minimal.model_copy(update={"kind": kind, "ticket_id": f"K-{kind}"}) for kind in TicketKind]
    return [full, minimal, *every_kind]


def counts() -> list[CameraCount]:
    entrance = CameraCount(
        camera_id="cam-1",
        store_id="S1",
        frame_ts=T0,
        frame_seq=2**40,
        people_in_frame=3,
        entries=2,
        exits=1,
        detector="yolo11n-pose",
    )
    return [entrance, entrance.model_copy(update={"zone_id": "shoes", "frame_seq": 0})]


def hourly() -> list[HourlyConversion]:
    full = HourlyConversion(
        store_id="S1",
        zone_id=None,
        tenant_id="tenant-9",
        mall_id="M1",
        category="fashion",
        hour_start=datetime(2026, 3, 29, 1, tzinfo=UTC),
        local_hour="2026-03-29T03:00:00+02:00",
        timezone="Europe/Paris",
        currency="EUR",
        visitors=120,
        exits=110,
        transactions=30,
        net_revenue=1_234_56,
        gross_revenue=1_400_00,
        discount_amount=50_00,
        units=41.5,
        refunds=1,
        refund_amount=20_00,
        voids=2,
        employee_sales=1,
        cash_amount=300_00,
        conversion=0.25,
        avg_ticket=4115.2,
        units_per_transaction=1.38,
        revenue_per_visitor=1028.8,
        revenue_per_m2=8.2,
        void_rate=0.06,
        discount_rate=0.035,
        cash_share=0.24,
        quality_flags=("CONVERSION_OVER_ONE", "NO_CAMERA_DATA"),
        is_final=True,
        revision=2,
        updated_at=T0,
    )
    empty = HourlyConversion(
        store_id="S2",
        hour_start=datetime(2026, 3, 29, 1, tzinfo=UTC),
        local_hour="2026-03-29T01:00:00+00:00",
        timezone="Europe/London",
        visitors=0,
        exits=0,
        transactions=0,
        net_revenue=0,
        refunds=0,
        voids=0,
        employee_sales=0,
        is_final=False,
        revision=0,
        updated_at=T0,
    )
    return [full, empty]


def alerts() -> list[Alert]:
    base = Alert(
        alert_id="SALES_DROP:S1:2026-03-29T01",
        kind=AlertKind.SALES_DROP,
        state=AlertState.FIRING,
        severity=Severity.CRITICAL,
        store_id="S1",
        tenant_id="tenant-9",
        mall_id="M1",
        hour_start=datetime(2026, 3, 29, 1, tzinfo=UTC),
        observed=0.02,
        expected=0.21,
        message="conversion 2% vs 21% expected",
        fired_at=T0,
        details={"visitors": "120", "transactions": "2"},
    )
    bare = Alert(
        alert_id="x", kind=AlertKind.CAMERA_SILENT, state=AlertState.RESOLVED, store_id="S1",
        hour_start=T0, message="camera back", fired_at=T0,
    )  # fmt: skip
    return [base, bare, *(bare.model_copy(update={"kind": kind}) for kind in AlertKind)]


CASES: dict[str, list[Record]] = {
    POS_TICKETS: list(tickets()),
    CAMERA_COUNTS: list(counts()),
    CONVERSION_HOURLY: list(hourly()),
    ALERTS: list(alerts()),
}


@pytest.fixture(scope="module")
def client(registry_url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry_url})


@pytest.mark.parametrize("topic", sorted(CASES))
def test_every_model_round_trips_through_the_registry(
    client: SchemaRegistryClient, registry_url: str, topic: str
) -> None:
    serde = TopicSerde(client, topic)
    assert serde.schema_id > 0  # registers today's schema under <topic>-value
    registered = client.lookup_schema(serde.spec.subject, Schema(schema_text(serde.spec.model.avro_name), "AVRO"))
    for record in CASES[topic]:
        data = serde.encode(record)
        magic, schema_id = struct.unpack(">bI", data[:5])
        assert magic == 0 and schema_id == registered.schema_id
        # A second serde knows nothing yet: it must fetch the writer schema by id from the server.
        fresh = TopicSerde(SchemaRegistryClient({"url": registry_url}), topic, auto_register=False)
        decoded = fresh.decode_model(data)
        assert decoded == record
        assert type(decoded) is type(record)


def test_timestamps_are_aware_utc_with_millisecond_precision(client: SchemaRegistryClient) -> None:
    serde = TopicSerde(client, POS_TICKETS)
    ticket = tickets()[0]
    assert ticket.occurred_at == datetime(2026, 3, 29, 1, 0, 0, 500000, tzinfo=UTC)
    decoded = serde.decode_model(serde.encode(ticket))
    assert isinstance(decoded, PosTicket)
    assert decoded.occurred_at.tzinfo is not None and decoded.occurred_at.utcoffset() == timedelta(0)
    fine = PosTicket.model_validate({**ticket.to_json(), "occurred_at": "2026-03-29T01:00:00.123456+00:00"})
    assert fine.occurred_at.microsecond == 123000
    assert serde.decode_model(serde.encode(fine)) == fine


def test_same_schema_same_id_and_old_writers_still_decode(client: SchemaRegistryClient) -> None:
    """A record written with an older registered schema reads into today's model (Avro resolution)."""
    serde = TopicSerde(client, CAMERA_COUNTS)
    first = serde.schema_id
    assert TopicSerde(client, CAMERA_COUNTS).schema_id == first
    old_schema = json.loads(schema_text("camera_count"))
    old_schema["fields"] = [f for f in old_schema["fields"] if f["name"] != "zone_id"]  # before zones existed
    old_id = client.register_schema("camera.counts.v0-value", Schema(json.dumps(old_schema), "AVRO"))
    assert old_id != first
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, old_id))
    datum = {k: v for k, v in counts()[1].to_avro().items() if k != "zone_id"}
    fastavro.schemaless_writer(buf, fastavro.parse_schema(old_schema), datum)
    decoded = serde.decode_model(buf.getvalue())
    assert decoded == counts()[1].model_copy(update={"zone_id": None})


def test_bad_bytes_are_decode_errors(client: SchemaRegistryClient) -> None:
    serde = TopicSerde(client, CAMERA_COUNTS)
    good = serde.encode(counts()[0])
    with pytest.raises(DecodeError, match="too short"):
        serde.decode(b"\x00\x00")
    with pytest.raises(DecodeError, match="magic byte 1"):
        serde.decode(b"\x01" + good[1:])
    with pytest.raises(DecodeError, match="schema id 99999 is unknown"):
        serde.decode(struct.pack(">bI", 0, 99999) + good[5:])
    with pytest.raises(DecodeError, match="does not match"):
        serde.decode(good[:7])


@pytest.mark.parametrize("topic", sorted(CASES))
def test_json_form_round_trips(topic: str) -> None:
    for record in CASES[topic]:
        text = json.dumps(record.to_json())
        assert type(record).model_validate(json.loads(text)) == record


def test_json_timestamps_accept_iso_with_offset_and_epoch_millis() -> None:
    base = counts()[0].to_json()
    iso = CameraCount.model_validate({**base, "frame_ts": "2026-03-29T03:00:00.123+02:00"})
    zulu = CameraCount.model_validate({**base, "frame_ts": "2026-03-29T01:00:00.123Z"})
    epoch = CameraCount.model_validate({**base, "frame_ts": 1774746000123})
    epoch_text = CameraCount.model_validate({**base, "frame_ts": "1774746000123"})
    assert iso.frame_ts == zulu.frame_ts == epoch.frame_ts == epoch_text.frame_ts == T0
    assert iso.to_json()["frame_ts"].startswith("2026-03-29T01:00:00.123")
    for bad in ("2026-03-29T03:00:00", "yesterday", True, 10**20, "-99999999999999999999", float("nan")):
        with pytest.raises(ValidationError, match="frame_ts"):
            CameraCount.model_validate({**base, "frame_ts": bad})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"currency": "eur"}, "codes are upper case: EUR"),
        ({"currency": "XYZ"}, "active ISO 4217 code"),
        ({"currency": "XAU"}, "active ISO 4217 code"),  # gold: a code, but no till takes it
        ({"ticket_id": " "}, "must not be empty or blank"),
        ({"store_id": ""}, "must not be empty or blank"),
        ({"gross_amount": 2**70}, "less than or equal to 9223372036854775807"),
        ({"tax_amount": True}, "expected a number, got bool"),
        ({"tax_amount": "1234"}, "expected a number, got str"),
        ({"lines": [{"sku": "A", "quantity": float("nan"), "unit_price": 1, "net_amount": 1}]}, "finite number"),
        ({"payments": [{"method": "CARD", "amount": -(2**63) - 1}]}, "greater than or equal to"),
    ],
)
def test_tickets_hold_only_what_the_schema_can(change: dict[str, Any], reason: str) -> None:
    record = {**tickets()[0].to_json(), **change}
    with pytest.raises(ValidationError, match=reason):
        PosTicket.model_validate(record)


def test_a_record_the_schema_cannot_hold_is_an_encode_error(client: SchemaRegistryClient) -> None:
    """The model accepts lone surrogates in strings (JSON can spell them); Avro's UTF-8 cannot."""
    serde = TopicSerde(client, CAMERA_COUNTS)
    broken = CameraCount.model_validate({**counts()[0].to_json(), "detector": "yolo\udc80"})
    with pytest.raises(EncodeError, match="cannot be written as Avro CameraCount: 'utf-8' codec"):
        serde.encode(broken)
    with pytest.raises(EncodeError, match="too large"):  # a dict is written as it is, unchecked by the model
        serde.encode({**counts()[0].to_avro(), "frame_seq": 2**70})


@pytest.mark.parametrize(
    "change",
    [
        {"customer_email": "a@b.c"},
        {"CustomerName": "Ann"},
        {"loyalty_id": "L-1"},
        {"phone": "+33"},
        {"payments": [{"method": "CARD", "amount": 100, "card_number": "4111111111111111"}]},
        {"lines": [{"sku": "A", "quantity": 1, "unit_price": 1, "net_amount": 1, "cardholder": "Ann"}]},
    ],
)
def test_personal_data_fields_are_rejected(change: dict[str, Any]) -> None:
    record = {**tickets()[1].to_json(), **change}
    with pytest.raises(ValidationError, match="personal data"):
        PosTicket.model_validate(record)


def test_a_registry_outage_is_not_a_decode_error(tmp_path: Path) -> None:
    """Consumers dead-letter DecodeErrors; a registry that is down must not turn good records into those."""
    server = RegistryProcess(tmp_path / "registry").start()
    try:
        writer = TopicSerde(SchemaRegistryClient({"url": server.url}), CAMERA_COUNTS)
        data = writer.encode(counts()[0])
    finally:
        server.stop()
    reader = TopicSerde(SchemaRegistryClient({"url": server.url, "max.retries": 0}), CAMERA_COUNTS)
    with pytest.raises(RegistryUnavailable, match="schema id 1"):
        reader.decode(data)
    server.start()  # same port, same data: the record reads once the registry is back
    try:
        assert reader.decode_model(data) == counts()[0]
    finally:
        server.stop()
