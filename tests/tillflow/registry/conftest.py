"""Fixtures: a real registry server per test, and clients that talk to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from tillflow.registry.process import RegistryProcess


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    """A fresh registry server (own data directory, free port), stopped with SIGTERM afterwards."""
    server = RegistryProcess(tmp_path / "registry").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(registry: RegistryProcess) -> SchemaRegistryClient:
    """confluent_kafka's own Schema Registry client pointed at the server."""
    return SchemaRegistryClient({"url": registry.url})
