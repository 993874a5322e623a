"""SchemaStore without HTTP: a failed write changes nothing, and the state file is replaced atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tillflow.registry.store import STATE_FILE, RegistryError, SchemaStore

V1 = {"schema": json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})}
V2 = {"schema": json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]})}


def test_a_failed_write_is_a_50001_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SchemaStore(tmp_path)
    assert store.register("r-value", V1) == {"id": 1}
    before = (tmp_path / STATE_FILE).read_text()

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(RegistryError) as failed:
        store.register("r-value", V2)
    assert (failed.value.status, failed.value.code) == (500, 50001)
    assert "No space left on device" in failed.value.message
    assert store.versions("r-value") == [1]  # memory unchanged
    assert (tmp_path / STATE_FILE).read_text() == before  # disk unchanged
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temporary left behind

    monkeypatch.undo()
    assert store.register("r-value", V2) == {"id": 2}
    assert SchemaStore(tmp_path).versions("r-value") == [1, 2]


def test_state_file_is_readable_json_with_every_version(tmp_path: Path) -> None:
    store = SchemaStore(tmp_path)
    store.register("r-value", V1)
    store.set_config("r-value", {"compatibility": "FULL"})
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["subjects"]["r-value"] == [{"version": 1, "id": 1, "deleted": False}]
    assert state["config"]["subjects"] == {"r-value": "FULL"}
    assert state["next_id"] == 2
    assert oct((tmp_path / STATE_FILE).stat().st_mode & 0o777) == "0o644"
