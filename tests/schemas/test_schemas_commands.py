"""`tillflow schemas register` against the real local registry server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from typer.testing import CliRunner

from schemas.serde import schema_text
from schemas.topics import TOPICS
from tillflow.cli import app
from tillflow.registry.process import RegistryProcess


def test_register_puts_every_contract_under_its_subject(registry_url: str) -> None:
    result = CliRunner().invoke(app, ["schemas", "register", "--url", registry_url])
    assert result.exit_code == 0, result.output
    client = SchemaRegistryClient({"url": registry_url})
    assert set(client.get_subjects()) >= {spec.subject for spec in TOPICS.values()}
    for spec in TOPICS.values():
        latest = client.get_latest_version(spec.subject)
        assert json.loads(latest.schema.schema_str or "") == json.loads(schema_text(spec.model.avro_name))
        assert f"{spec.subject}: id {latest.schema_id}, version {latest.version}" in result.output
        assert client.get_compatibility(spec.subject) == "BACKWARD"
    again = CliRunner().invoke(app, ["schemas", "register", "--url", registry_url])
    assert again.exit_code == 0
    ids = [line.split(", compatibility")[0] for line in result.output.splitlines()]
    assert [line.split(", compatibility")[0] for line in again.output.splitlines()] == ids  # same ids, versions
    assert "compatibility BACKWARD\n" in again.output and "(was" not in again.output


def test_register_sets_backward_compatibility_unless_stricter(tmp_path: Path) -> None:
    """A subject left at NONE becomes BACKWARD (and the registry then enforces it); a stricter level stays."""
    server = RegistryProcess(tmp_path / "registry").start()
    try:
        client = SchemaRegistryClient({"url": server.url})
        client.set_compatibility("camera.counts-value", "NONE")
        client.set_compatibility("alerts-value", "FULL_TRANSITIVE")
        result = CliRunner().invoke(app, ["schemas", "register", "--url", server.url])
        assert result.exit_code == 0, result.output
        assert "compatibility BACKWARD (was NONE)" in result.output
        assert "compatibility BACKWARD (was the global default)" in result.output
        assert client.get_compatibility("camera.counts-value") == "BACKWARD"
        assert client.get_compatibility("alerts-value") == "FULL_TRANSITIVE"
        incompatible = json.loads(schema_text("camera_count"))
        incompatible["fields"].append({"name": "lens", "type": "string"})  # no default: old records unreadable
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema("camera.counts-value", Schema(json.dumps(incompatible), "AVRO"))
        assert refused.value.http_status_code == 409
    finally:
        server.stop()


def test_register_reports_a_refused_schema_and_exits_nonzero(tmp_path: Path) -> None:
    server = RegistryProcess(tmp_path / "registry").start()
    try:
        client = SchemaRegistryClient({"url": server.url})
        older = json.loads(schema_text("camera_count"))
        next(f for f in older["fields"] if f["name"] == "frame_seq")["type"] = "string"
        client.register_schema("camera.counts-value", Schema(json.dumps(older), "AVRO"))
        result = CliRunner().invoke(app, ["schemas", "register", "--url", server.url])
        assert result.exit_code == 1
        assert "camera.counts-value" in result.output and "(409/409)" in result.output
        assert "CameraCount.frame_seq" in result.output, result.output
        assert "pos.tickets-value: id" in result.output  # the others are still registered
    finally:
        server.stop()


def test_register_without_a_registry_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path))  # no stack.json there, no registry configured
    result = CliRunner().invoke(app, ["schemas", "register"])
    assert result.exit_code == 1
    assert "tillflow dev up" in result.output
