"""The lock files (requirements/*.txt, made by `make lock`) agree with pyproject.toml and with each other.

A dependency added to or changed in pyproject.toml without regenerating the locks fails here, before a fresh
clone's `make test` or `make demo` installs something else than what the project declares.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REQ = ROOT / "requirements"

# Lock file -> (pyproject extras it covers, extra input files); as in requirements/lock.sh.
LOCKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "core.txt": ((), ("build.in",)),
    "demo.txt": (("local",), ("build.in",)),
    "test.txt": (("local", "dev", "camera", "camera-bench", "cdc", "malls"), ("build.in", "test.in")),
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def read_lock(text: str) -> dict[str, str]:
    """Pinned name -> version of a pip-compile output; every pin must carry at least one hash."""
    pins: dict[str, str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = PIN.match(line)
        if not m:
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if "--hash=sha256:" not in line + following:
            raise ValueError(f"{m.group(1)}=={m.group(2)} has no hash")
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def read_inputs(text: str) -> list[Requirement]:
    """The requirements of a pip-compile input file (comments and blank lines skipped)."""
    reqs = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            reqs.append(Requirement(line))
    return reqs


def declared(pyproject: dict, extras: tuple[str, ...]) -> list[Requirement]:
    """pyproject.toml's core dependencies plus those of ``extras``."""
    project = pyproject["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def disagreements(requirements: list[Requirement], pins: dict[str, str]) -> list[str]:
    """Each requirement that applies here and that the lock does not pin, or pins outside its range."""
    env = default_environment()
    problems = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate(env):  # type: ignore[arg-type]
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req} but the lock has {name}=={pins[name]}")
    return problems


def test_each_lock_pins_what_pyproject_declares() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for lock, (extras, inputs) in LOCKS.items():
        pins = read_lock((REQ / lock).read_text())
        reqs = declared(pyproject, extras)
        for name in inputs:
            reqs += read_inputs((REQ / name).read_text())
        assert disagreements(reqs, pins) == [], f"requirements/{lock} is stale: run `make lock`"


def test_locks_agree_on_every_version() -> None:
    locks = {lock: read_lock((REQ / lock).read_text()) for lock in LOCKS}
    full = locks["test.txt"]
    for lock, pins in locks.items():
        differ = {n: (v, full.get(n)) for n, v in pins.items() if full.get(n) != v}
        assert differ == {}, f"requirements/{lock} and test.txt disagree (lock, test): {differ}"


def test_every_optional_set_the_tests_install_is_locked() -> None:
    """An extra added to pyproject.toml is either locked or named here as deliberately left out."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    left_out = {"mssql"}  # pymssql: only `tillflow cdc poll` against SQL Server, installed by hand (docs/cdc.md)
    locked = {extra for extras, _ in LOCKS.values() for extra in extras}
    assert set(pyproject["project"]["optional-dependencies"]) == locked | left_out


def test_a_changed_dependency_is_caught() -> None:
    pins = {"typer": "0.29.3", "rich": "15.0.0"}
    assert disagreements([Requirement("typer>=0.12"), Requirement("rich>=13")], pins) == []
    assert disagreements([Requirement("typer>=0.30")], pins) == ["typer>=0.30 but the lock has typer==0.29.3"]
    assert disagreements([Requirement("matplotlib>=3")], pins) == ["matplotlib>=3 is not in the lock"]
    assert disagreements([Requirement("pywin32>=300; sys_platform == 'win32'")], pins) == []
    with pytest.raises(ValueError, match=r"typer==0\.29\.3 has no hash"):
        read_lock("typer==0.29.3\n    # via tillflow\n")


def test_makefile_and_dockerfile_install_from_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r" in makefile
    for lock in ("requirements/demo.txt", "requirements/test.txt"):
        assert lock in makefile
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements/core.txt" in dockerfile
