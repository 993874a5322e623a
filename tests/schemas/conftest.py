"""Fixtures for the contract tests: one real registry server for the module that asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tillflow.registry.process import RegistryProcess


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RegistryProcess(tmp_path_factory.mktemp("registry") / "data").start()
    try:
        yield server.url
    finally:
        server.stop()
