"""The local registry server driven by confluent_kafka's own SchemaRegistryClient and by raw HTTP.

Every test starts the real server (``python -m tillflow.registry``) as a subprocess on a free port.
Expected bodies, status codes and error codes are Confluent Schema Registry's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas.models import CameraCount
from schemas.serde import TopicSerde, schema_text
from schemas.topics import CAMERA_COUNTS
from tillflow.registry.process import RegistryProcess

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def avro(*fields: dict[str, Any], name: str = "Visit") -> Schema:
    return Schema(json.dumps({"type": "record", "name": name, "namespace": "t", "fields": list(fields)}), "AVRO")


V1 = avro({"name": "store_id", "type": "string"})
V2 = avro({"name": "store_id", "type": "string"}, {"name": "n", "type": "long", "default": 0})
NO_DEFAULT = avro({"name": "store_id", "type": "string"}, {"name": "m", "type": "long"})


def raw(registry: RegistryProcess, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
    return requests.request(
        method,
        registry.url + path,
        data=None if body is None else json.dumps(body),
        params=params,
        headers={"Content-Type": CONTENT_TYPE},
        timeout=5,
    )


def error_of(response: requests.Response) -> tuple[int, int, str]:
    body = response.json()
    assert set(body) == {"error_code", "message"}
    return response.status_code, body["error_code"], body["message"]


def test_register_ids_versions_and_lookups(client: SchemaRegistryClient) -> None:
    first = client.register_schema("visits-value", V1)
    assert client.register_schema("visits-value", V1) == first  # same schema, same id, no new version
    second = client.register_schema("visits-value", V2)
    assert second == first + 1
    assert client.get_versions("visits-value") == [1, 2]
    # Ids are global: the same schema under another subject gets the same id, version 1 there.
    assert client.register_schema("other-value", V2) == second
    assert client.get_subjects() == ["other-value", "visits-value"]
    assert client.get_subjects(subject_prefix="vis") == ["visits-value"]

    latest = client.get_latest_version("visits-value")
    assert (latest.version, latest.schema_id, latest.subject) == (2, second, "visits-value")
    assert json.loads(latest.schema.schema_str or "") == json.loads(V2.schema_str or "")
    assert client.get_version("visits-value", 1).schema_id == first
    found = client.lookup_schema("visits-value", V1)
    assert (found.version, found.schema_id) == (1, first)

    assert json.loads(client.get_schema(first).schema_str or "") == json.loads(V1.schema_str or "")
    versions = client.get_schema_versions(second)
    assert [(v.subject, v.version) for v in versions] == [("other-value", 1), ("visits-value", 2)]
    assert client.get_subjects_by_schema_id(second) == ["other-value", "visits-value"]
    assert client.get_schema_types() == ["AVRO"]


def test_layout_of_the_schema_text_does_not_change_its_identity(client: SchemaRegistryClient) -> None:
    compact = client.register_schema("visits-value", V1)
    pretty = Schema(json.dumps(json.loads(V1.schema_str or ""), indent=4), "AVRO")
    qualified = json.loads(V1.schema_str or "")
    qualified["name"] = "t.Visit"
    del qualified["namespace"]
    assert client.register_schema("visits-value", pretty) == compact
    assert (
        client.register_schema("visits-value", Schema(json.dumps(qualified), "AVRO"), normalize_schemas=True) == compact
    )
    assert client.get_versions("visits-value") == [1]


def test_compatibility_is_enforced_on_registration(client: SchemaRegistryClient) -> None:
    client.register_schema("visits-value", V1)
    assert client.get_compatibility() == "BACKWARD"
    assert client.test_compatibility("visits-value", V2) is True
    assert client.test_compatibility("visits-value", NO_DEFAULT) is False
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("visits-value", NO_DEFAULT)
    assert refused.value.http_status_code == 409
    assert refused.value.error_code == 409
    assert 'incompatible with an earlier schema for subject "visits-value"' in refused.value.error_message
    assert "Visit.m" in refused.value.error_message and "no default" in refused.value.error_message
    assert client.get_versions("visits-value") == [1]

    # Subject-level NONE lets it through; the global level is untouched.
    client.set_compatibility("visits-value", "NONE")
    assert client.get_compatibility("visits-value") == "NONE"
    assert client.register_schema("visits-value", NO_DEFAULT) > 0
    assert client.get_compatibility() == "BACKWARD"


def test_forward_and_full_levels_refuse_removing_a_field_without_default(client: SchemaRegistryClient) -> None:
    both = avro({"name": "store_id", "type": "string"}, {"name": "zone", "type": "string"})
    client.register_schema("visits-value", both)
    client.set_compatibility("visits-value", "FULL")
    assert client.test_compatibility("visits-value", V1) is False  # old readers need `zone`
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("visits-value", V1)
    assert refused.value.http_status_code == 409 and "zone" in refused.value.error_message
    client.set_compatibility("visits-value", "BACKWARD")
    assert client.register_schema("visits-value", V1) > 0  # a reader may drop a field


def test_transitive_levels_check_all_versions(client: SchemaRegistryClient) -> None:
    client.set_compatibility("x-value", "NONE")
    client.register_schema("x-value", avro({"name": "v", "type": "string"}))
    client.register_schema("x-value", avro({"name": "v", "type": "int"}))
    candidate = avro({"name": "v", "type": "long"})
    client.set_compatibility("x-value", "BACKWARD")
    assert client.test_compatibility("x-value", candidate) is True
    client.set_compatibility("x-value", "BACKWARD_TRANSITIVE")
    assert client.test_compatibility("x-value", candidate) is False
    assert client.test_compatibility("x-value", candidate, version=2) is True  # against version 2 alone
    assert client.test_compatibility_all_versions("x-value", candidate) is False


def test_verbose_compatibility_messages(registry: RegistryProcess, client: SchemaRegistryClient) -> None:
    client.register_schema("visits-value", V1)
    body = {"schema": NO_DEFAULT.schema_str}
    verbose = raw(registry, "POST", "/compatibility/subjects/visits-value/versions/latest", body, verbose="true")
    assert verbose.status_code == 200
    result = verbose.json()
    assert result["is_compatible"] is False
    assert any("Visit.m" in m and "no default" in m for m in result["messages"])
    plain = raw(registry, "POST", "/compatibility/subjects/visits-value/versions/1", {"schema": V2.schema_str})
    assert plain.json() == {"is_compatible": True}


def test_soft_and_permanent_deletes(registry: RegistryProcess, client: SchemaRegistryClient) -> None:
    v1_id = client.register_schema("visits-value", V1)
    client.register_schema("visits-value", V2)
    assert client.delete_version("visits-value", 1) == 1
    assert client.get_versions("visits-value") == [2]
    assert client.get_versions("visits-value", deleted=True) == [1, 2]
    assert client.get_schema(v1_id) is not None  # ids stay readable after a soft delete
    assert error_of(raw(registry, "DELETE", "/subjects/visits-value/versions/1"))[:2] == (404, 40406)
    assert error_of(raw(registry, "DELETE", "/subjects/visits-value/versions/2", permanent="true"))[:2] == (404, 40407)
    assert client.delete_version("visits-value", 1, permanent=True) == 1
    assert client.get_versions("visits-value", deleted=True) == [2]
    assert error_of(raw(registry, "GET", f"/schemas/ids/{v1_id}")) == (404, 40403, f"Schema {v1_id} not found")

    assert error_of(raw(registry, "DELETE", "/subjects/visits-value", permanent="true"))[:2] == (404, 40405)
    assert client.delete_subject("visits-value") == [2]
    assert client.get_subjects() == []
    assert client.get_subjects(deleted=True) == ["visits-value"]
    assert error_of(raw(registry, "DELETE", "/subjects/visits-value"))[:2] == (404, 40404)
    assert client.delete_subject("visits-value", permanent=True) == [2]
    assert client.get_subjects(deleted=True) == []
    # Ids are never reused.
    assert client.register_schema("visits-value", V1) > v1_id


def test_error_codes_and_bodies(registry: RegistryProcess, client: SchemaRegistryClient) -> None:
    client.register_schema("visits-value", V1)
    root = raw(registry, "GET", "/")
    assert root.status_code == 200 and root.json() == {}
    assert root.headers["Content-Type"] == CONTENT_TYPE

    assert error_of(raw(registry, "GET", "/subjects/nope/versions")) == (404, 40401, "Subject 'nope' not found.")
    assert error_of(raw(registry, "GET", "/subjects/nope/versions/1"))[:2] == (404, 40401)
    assert error_of(raw(registry, "GET", "/subjects/visits-value/versions/7")) == (404, 40402, "Version 7 not found.")
    for bad in ("0", "abc", "2147483648"):
        status, code, message = error_of(raw(registry, "GET", f"/subjects/visits-value/versions/{bad}"))
        assert (status, code) == (422, 42202) and f"'{bad}'" in message
    assert error_of(raw(registry, "GET", "/schemas/ids/999")) == (404, 40403, "Schema 999 not found")
    assert error_of(raw(registry, "POST", "/subjects/visits-value", {"schema": V2.schema_str})) == (
        404,
        40403,
        "Schema not found",
    )
    assert error_of(raw(registry, "POST", "/subjects/nope", {"schema": V1.schema_str}))[:2] == (404, 40401)

    invalid = [
        {"schema": "{not json"},
        {"schema": json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "Nope"}]})},
        {
            "schema": json.dumps(
                {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": "x"}]}
            )
        },
        {"schema": ""},
        {"schema": 'syntax = "proto3";', "schemaType": "PROTOBUF"},
        {"schema": V1.schema_str, "references": [{"name": "x", "subject": "y", "version": 1}]},
    ]
    for body in invalid:
        status, code, message = error_of(raw(registry, "POST", "/subjects/visits-value/versions", body))
        assert (status, code) == (422, 42201), body
    assert "AVRO" in error_of(raw(registry, "POST", "/subjects/a/versions", invalid[4]))[2]

    status, code, message = error_of(raw(registry, "PUT", "/config", {"compatibility": "SIDEWAYS"}))
    assert (status, code) == (422, 42203) and "backward_transitive" in message
    assert error_of(raw(registry, "GET", "/config/visits-value"))[:2] == (404, 40408)
    assert raw(registry, "GET", "/config/visits-value", defaultToGlobal="true").json() == {
        "compatibilityLevel": "BACKWARD"
    }
    assert raw(registry, "PUT", "/config", {"compatibility": "full"}).json() == {"compatibility": "FULL"}
    assert raw(registry, "GET", "/config").json() == {"compatibilityLevel": "FULL"}
    assert raw(registry, "DELETE", "/config").json() == {"compatibilityLevel": "FULL"}
    assert raw(registry, "GET", "/config").json() == {"compatibilityLevel": "BACKWARD"}

    assert error_of(raw(registry, "GET", "/no/such/path")) == (404, 404, "HTTP 404 Not Found")
    assert error_of(raw(registry, "PATCH", "/subjects"))[:2] == (405, 405)
    assert error_of(raw(registry, "GET", "/schemas/ids/abc"))[:2] == (404, 404)
    schema_only = raw(registry, "GET", "/subjects/visits-value/versions/latest/schema")
    assert json.loads(schema_only.text) == json.loads(V1.schema_str or "")
    assert client.get_referenced_by("visits-value", 1) == []
    assert error_of(raw(registry, "GET", "/subjects/visits-value/versions/9/referencedby"))[:2] == (404, 40402)
    assert client.get_contexts() == ["."]
    assert raw(registry, "GET", "/mode").json() == {"mode": "READWRITE"}


def test_state_survives_a_restart(registry: RegistryProcess, client: SchemaRegistryClient) -> None:
    v1 = client.register_schema("visits-value", V1)
    v2 = client.register_schema("visits-value", V2)
    other = client.register_schema("other-value", avro({"name": "x", "type": "int"}, name="Other"))
    client.set_compatibility("visits-value", "FULL")
    client.delete_version("visits-value", 1)

    assert registry.stop() == 0  # SIGTERM: clean exit
    assert "stopped" in registry.log.read_text()
    registry.start()

    fresh = SchemaRegistryClient({"url": registry.url})  # no client-side cache
    assert fresh.get_subjects() == ["other-value", "visits-value"]
    assert fresh.get_versions("visits-value") == [2]
    assert fresh.get_versions("visits-value", deleted=True) == [1, 2]
    assert fresh.get_latest_version("visits-value").schema_id == v2
    assert json.loads(fresh.get_schema(v1).schema_str or "") == json.loads(V1.schema_str or "")
    assert fresh.get_compatibility("visits-value") == "FULL"
    assert fresh.register_schema("other-value", avro({"name": "x", "type": "int"}, name="Other")) == other
    assert fresh.register_schema("new-value", avro({"name": "y", "type": "int"}, name="New")) == other + 1


def test_a_second_server_on_the_same_data_dir_is_refused(registry: RegistryProcess) -> None:
    from tillflow.devstack import free_port

    args = [sys.executable, "-m", "tillflow.registry", "--port", str(free_port()), "--data-dir", str(registry.data_dir)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "another registry is using" in result.stderr


def test_confluent_serializer_and_tillflow_serde_interoperate(client: SchemaRegistryClient) -> None:
    """Bytes from confluent_kafka's AvroSerializer decode with TopicSerde and the other way round."""
    record = CameraCount(
        camera_id="cam-2", store_id="S1", zone_id="shoes", frame_ts=datetime(2026, 3, 29, 1, tzinfo=UTC),
        frame_seq=7, people_in_frame=2, entries=1, exits=0, detector="mog2",
    )  # fmt: skip
    ctx = SerializationContext(CAMERA_COUNTS, MessageField.VALUE)
    serializer = AvroSerializer(client, schema_text("camera_count"), conf={"auto.register.schemas": True})
    data = serializer(record.to_avro(), ctx)
    assert data is not None
    serde = TopicSerde(client, CAMERA_COUNTS)
    assert serde.decode_model(data) == record
    deserializer = AvroDeserializer(client)
    assert type(record).model_validate(deserializer(serde.encode(record), ctx)) == record
    assert client.get_versions("camera.counts-value") == [1]


def test_an_acknowledged_registration_survives_sigkill(registry: RegistryProcess, client: SchemaRegistryClient) -> None:
    schema_id = client.register_schema("visits-value", V1)
    assert registry.proc is not None
    registry.proc.kill()  # no clean shutdown: what was answered must already be on disk
    registry.proc.wait()
    registry.start()
    fresh = SchemaRegistryClient({"url": registry.url})
    assert fresh.lookup_schema("visits-value", V1).schema_id == schema_id
