"""Optional parts name the extra to install when their package is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tillflow.extras import missing_extra
from tillflow.settings import Settings


def test_missing_extra_names_the_extra_and_the_install_command() -> None:
    assert missing_extra("the door counter", "json") is None
    message = missing_extra("the door counter", "cv2", "no_such_module_here")
    if importlib.util.find_spec("cv2") is None:
        assert message is not None and "camera" in message
    assert message is not None and "no_such_module_here" in message


def test_embedded_clickhouse_without_chdb_says_which_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tillflow import clickhouse as connection

    real = importlib.util.find_spec
    monkeypatch.setattr(
        "tillflow.extras.importlib.util.find_spec", lambda name, *a: None if name == "chdb" else real(name, *a)
    )
    with pytest.raises(connection.ClickHouseConfigError, match=r"pip install 'tillflow\[local\]'"):
        connection.connect(Settings(state_dir=tmp_path))


def test_local_broker_without_noida_db_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from tillflow import devstack

    real = importlib.util.find_spec
    monkeypatch.setattr(
        "tillflow.extras.importlib.util.find_spec", lambda name, *a: None if name == "noida_db" else real(name, *a)
    )
    with pytest.raises(devstack.StackError, match=r"local broker needs the local extra"):
        devstack.broker_binary()
