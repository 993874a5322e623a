"""Shared fixtures: a real local stack (noida-db broker + tillflow's registry stand-in) on free ports, and the
process's one chDB engine (chDB allows one data directory per process) with a fresh database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tillflow.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Tests read what commands say, not how a terminal lays it out: typer's error panels take their width from
# TERMINAL_WIDTH (read when typer is imported, here and in the commands the tests start), wide enough that a
# renderer's wrapping or cutting of long paths cannot fail a test while the message holds. Compare text with
# ``tests.support.plain``, which also drops the panels' box drawing. (tillflow's own errors are not wrapped.)
os.environ["TERMINAL_WIDTH"] = "400"
DEMO_CATALOGUE = ROOT / "deploy" / "catalogue" / "demo-estate.yaml"


@pytest.fixture(autouse=True, scope="session")
def _isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No TILLFLOW_* variable or config file of the developer's leaks into a test."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("TILLFLOW_")}
    for key in saved:
        del os.environ[key]
    os.environ["TILLFLOW_CONFIG"] = str(tmp_path_factory.mktemp("config") / "none.toml")
    Path(os.environ["TILLFLOW_CONFIG"]).write_text("")
    yield
    os.environ.pop("TILLFLOW_CONFIG", None)
    os.environ.update(saved)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh broker and registry for the test session; yields Settings that point at them.

    Topics are created with 3 partitions. Tests that need topics of their own use unique names
    (see ``unique``) because the broker is shared by the session.
    """
    from tillflow.devstack import down, up

    settings = Settings(state_dir=tmp_path_factory.mktemp("stack"), topic_partitions=3, catalogue=DEMO_CATALOGUE)
    up(settings, timeout=60)
    try:
        yield settings
    finally:
        down(settings)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic names, group ids and app ids."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def demo_catalogue():  # type: ignore[no-untyped-def]
    from schemas.catalogue import load_catalogue

    return load_catalogue(DEMO_CATALOGUE)


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chDB data directory of this test process."""
    return tmp_path_factory.mktemp("chdb-state")


@pytest.fixture
def ch_settings(chdb_dir: Path) -> Settings:
    """Settings on the process's chDB engine with a database of this test's own."""
    return Settings(state_dir=chdb_dir, clickhouse_database=f"t_{uuid.uuid4().hex[:10]}", catalogue=DEMO_CATALOGUE)


@pytest.fixture
def ch(ch_settings: Settings) -> Iterator[Any]:
    """A migrated database (stores loaded) and a client on it."""
    from schemas.catalogue import load_catalogue
    from sinks.clickhouse.migrate import load_stores, migrate
    from tillflow.clickhouse import connect

    client = connect(ch_settings, create=True)
    migrate(client)
    load_stores(client, load_catalogue(DEMO_CATALOGUE))
    yield client
    client.command(f"DROP DATABASE IF EXISTS `{ch_settings.clickhouse_database}`")
    client.close()
