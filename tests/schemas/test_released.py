"""Today's schemas against the released versions in schemas/released, and the `tillflow schemas` commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas.released import AVRO_DIR, RELEASED_DIR, check_released, release, released_versions
from schemas.topics import TOPICS, topic_spec
from tillflow.cli import app


def test_every_topic_has_a_released_version() -> None:
    for spec in TOPICS.values():
        versions = released_versions(spec.subject)
        assert versions, f"no released version for {spec.subject}"
        assert versions[0].name == "v1.avsc"


def test_todays_schemas_are_backward_compatible_with_every_released_version() -> None:
    results = check_released()
    assert {r.subject for r in results} == {spec.subject for spec in TOPICS.values()}
    assert {r.subject: r.problems for r in results} == {r.subject: [] for r in results}


def test_released_versions_sort_numerically(tmp_path: Path) -> None:
    folder = tmp_path / "s-value"
    folder.mkdir()
    for name in ("v10.avsc", "v2.avsc", "v1.avsc", "notes.txt", "v0.avsc"):
        (folder / name).write_text("{}")
    assert [p.name for p in released_versions("s-value", tmp_path)] == ["v1.avsc", "v2.avsc", "v10.avsc"]


@pytest.fixture
def work(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of today's schemas and of the released versions that a test may change."""
    avro, released = tmp_path / "avro", tmp_path / "released"
    shutil.copytree(AVRO_DIR, avro)
    shutil.copytree(RELEASED_DIR, released)
    return avro, released


def edit(avro: Path, name: str, change: Any) -> None:
    path = avro / f"{name}.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2))


def problems_of(avro: Path, released: Path, subject: str) -> list[str]:
    return next(r for r in check_released(released, avro) if r.subject == subject).problems


def test_new_field_without_default_is_detected(work: tuple[Path, Path]) -> None:
    avro, released = work
    edit(avro, "pos_ticket", lambda s: s["fields"].append({"name": "store_group", "type": "string"}))
    problems = problems_of(avro, released, "pos.tickets-value")
    assert problems == [
        "new schema cannot read version 1: PosTicket.store_group: field 'store_group' is not in the writer's "
        "io.tillflow.pos.PosTicket and has no default"
    ]


def test_type_change_and_removed_enum_symbol_are_detected(work: tuple[Path, Path]) -> None:
    avro, released = work

    def narrow(schema: dict[str, Any]) -> None:
        next(f for f in schema["fields"] if f["name"] == "frame_seq")["type"] = "int"

    edit(avro, "camera_count", narrow)
    assert problems_of(avro, released, "camera.counts-value") == [
        "new schema cannot read version 1: CameraCount.frame_seq: reader expects int but the writer wrote long"
    ]

    def drop_symbol(schema: dict[str, Any]) -> None:
        kind = next(f for f in schema["fields"] if f["name"] == "kind")["type"]
        kind["symbols"].remove("CAMERA_SILENT")

    edit(avro, "alert", drop_symbol)
    problems = problems_of(avro, released, "alerts-value")
    versions = len(list((released / "alerts-value").glob("v*.avsc")))
    assert len(problems) == versions >= 1, problems  # one per released version that wrote the symbol
    assert all("Alert.kind" in problem and "CAMERA_SILENT" in problem for problem in problems)


def test_removed_field_passes_backward_but_is_caught_by_a_full_registry(work: tuple[Path, Path]) -> None:
    """BACKWARD lets a reader drop a field (it skips it); FORWARD/FULL subjects refuse it (see registry tests)."""
    avro, released = work
    edit(avro, "camera_count", lambda s: s["fields"].remove(next(f for f in s["fields"] if f["name"] == "detector")))
    assert problems_of(avro, released, "camera.counts-value") == []


def test_release_adds_the_next_version_only_for_compatible_changes(work: tuple[Path, Path]) -> None:
    avro, released = work
    spec = topic_spec("camera.counts")
    assert release(spec, released, avro) is None  # unchanged
    edit(
        avro, "camera_count", lambda s: s["fields"].append({"name": "fps", "type": ["null", "double"], "default": None})
    )
    assert next(r for r in check_released(released, avro) if r.subject == spec.subject).unreleased_change
    path = release(spec, released, avro)
    assert path == released / spec.subject / "v2.avsc"
    assert json.loads(path.read_text())["fields"][-1]["name"] == "fps"
    edit(avro, "camera_count", lambda s: s["fields"].append({"name": "lens", "type": "string"}))
    with pytest.raises(ValueError, match="lens"):
        release(spec, released, avro)
    assert [p.name for p in released_versions(spec.subject, released)] == ["v1.avsc", "v2.avsc"]


def test_check_command_exits_nonzero_with_reasons(work: tuple[Path, Path]) -> None:
    avro, released = work
    runner = CliRunner()
    ok = runner.invoke(app, ["schemas", "check", "--avro-dir", str(avro), "--released-dir", str(released)])
    assert ok.exit_code == 0, ok.output
    assert "pos.tickets-value: compatible with released v1" in ok.output
    edit(avro, "pos_ticket", lambda s: s["fields"].append({"name": "store_group", "type": "string"}))
    bad = runner.invoke(app, ["schemas", "check", "--avro-dir", str(avro), "--released-dir", str(released)])
    assert bad.exit_code == 1
    assert "PosTicket.store_group" in bad.output and f"1 of {len(TOPICS)} subjects" in bad.output
