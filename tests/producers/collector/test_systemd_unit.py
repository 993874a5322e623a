"""The collector's systemd unit and sysusers file: they parse, agree with each other, the repository and the CLI,
and pass systemd's own checks where systemd is installed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tillflow.cli import app
from tillflow.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "deploy" / "systemd" / "tillflow-collector.service"
SYSUSERS = ROOT / "deploy" / "systemd" / "tillflow.sysusers.conf"
INSTALL_DIR = "/opt/tillflow"  # where the unit expects the repository checkout and its .venv


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd unit syntax: [Section], Key=Value (repeated keys accumulate), # and ; comments, \\ continuations."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            assert line.endswith("]"), line
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not Key=Value inside a section: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def sysusers_users(text: str) -> dict[str, list[str]]:
    """Name -> the fields of each ``u`` line of a sysusers.d file."""
    users = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            fields = shlex.split(line)
            if fields[0] == "u":
                users[fields[1]] = fields
    return users


def one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key, [])
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def test_unit_is_consistent_with_the_repository_the_cli_and_the_system_user() -> None:
    unit = parse_unit(UNIT.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]

    # Documentation= points into the checkout the unit runs from, at a file that exists there.
    docs = one(unit["Unit"], "Documentation").split()
    for url in docs:
        assert url.startswith(f"file://{INSTALL_DIR}/"), url
        assert (ROOT / url.removeprefix(f"file://{INSTALL_DIR}/")).is_file(), url

    # ExecStart runs this CLI's `collect --spec`.
    argv = shlex.split(one(service, "ExecStart"))
    assert argv[0] == f"{INSTALL_DIR}/.venv/bin/tillflow" and argv[1:3] == ["collect", "--spec"]
    help_text = CliRunner().invoke(app, ["collect", "--help"], env={"COLUMNS": "200"}).output
    assert "--spec" in help_text

    # The user it runs as is created by the sysusers file shipped beside it, home = the state directory.
    users = sysusers_users(SYSUSERS.read_text())
    user = one(service, "User")
    assert user in users and one(service, "Group") == user  # a `u` line creates the group of the same name
    state = f"/var/lib/{one(service, 'StateDirectory')}"
    assert users[user][4] == state
    assert re.fullmatch(r"0[0-7]{3}", one(service, "StateDirectoryMode"))

    # Environment= names real settings; the state directory is the one systemd creates; no secret in the unit.
    env = dict(v.split("=", 1) for line in service["Environment"] for v in shlex.split(line))
    assert env["TILLFLOW_STATE_DIR"] == state
    fields = {f"TILLFLOW_{name.upper()}" for name in Settings.model_fields} | {"TILLFLOW_CONFIG"}
    assert set(env) <= fields, set(env) - fields
    assert not [k for k in env if re.search("PASSWORD|SECRET|TOKEN|AUTH", k)]
    assert one(service, "ProtectSystem") == "strict" and one(service, "NoNewPrivileges") == "yes"
    assert one(unit["Install"], "WantedBy") == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own parser finds nothing wrong but the missing binary (tillflow is not installed in /opt here)."""
    copy = tmp_path / UNIT.name
    shutil.copy(UNIT, copy)
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    expected = f"{UNIT.name}: Command {INSTALL_DIR}/.venv/bin/tillflow is not executable: No such file or directory"
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip() and line != expected]
    assert problems == [], problems


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_sysusers_file_is_valid() -> None:
    """--dry-run parses the file and says what it would create, writing nothing."""
    result = subprocess.run(["systemd-sysusers", "--dry-run", str(SYSUSERS)], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Syntax error" not in result.stderr + result.stdout
