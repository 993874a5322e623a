"""`make sysdeps` with stand-ins for dpkg, apt-get, systemctl and update-rc.d (shell scripts that record their
calls): the real ones would change this machine. It stops only the services its own install started."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Debian package -> the service it installs (and apt starts).
SERVICE_OF = {"postgresql": "postgresql", "prometheus": "prometheus", "firebird3.0-server": "firebird3.0"}


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _sysdeps(
    tmp_path: Path, installed: set[str], apt_fails: bool = False
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the sysdeps recipe with ``installed`` packages present; returns the run and the recorded calls."""
    bin_dir, units, init_d, db = tmp_path / "bin", tmp_path / "units", tmp_path / "init.d", tmp_path / "dpkg"
    for d in (bin_dir, units, init_d, db):
        d.mkdir(exist_ok=True)
    for package in installed:
        (db / package).touch()
        if package in SERVICE_OF:
            (units / f"{SERVICE_OF[package]}.service").touch()
    calls = tmp_path / "calls"
    services = " ".join(f"{p}) s={s};;" for p, s in SERVICE_OF.items())
    _stub(bin_dir / "dpkg", f'[ -e "{db}/$2" ]\n')
    _stub(
        bin_dir / "apt-get",
        f'echo "apt-get $*" >> "{calls}"\n'
        'for p in "$@"; do case "$p" in -*|update|install) continue;; esac\n'
        f'  touch "{db}/$p"; s=""; case "$p" in {services} esac\n'
        f'  [ -n "$s" ] && touch "{units}/$s.service"\n'
        f"done; exit {100 if apt_fails else 0}\n",
    )
    _stub(bin_dir / "systemctl", f'echo "systemctl $*" >> "{calls}"\n')
    _stub(bin_dir / "update-rc.d", f'echo "update-rc.d $*" >> "{calls}"\n')
    _stub(bin_dir / "pkill", f'echo "pkill $*" >> "{calls}"\n')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run = subprocess.run(
        ["make", "-s", "sysdeps", f"SYSTEMD_UNITS={units}", f"INIT_D={init_d}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return run, calls.read_text().splitlines() if calls.exists() else []


def _packages() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    line = next(x for x in text.splitlines() if x.startswith("APT_PACKAGES :="))
    return line.split(":=", 1)[1].split()


def test_everything_installed_touches_no_service(tmp_path: Path) -> None:
    run, calls = _sysdeps(tmp_path, set(_packages()))
    assert run.returncode == 0, run.stderr
    assert calls == []  # no apt-get, no systemctl, no pkill: a developer's running services are left alone


def test_only_the_services_this_run_installed_are_stopped(tmp_path: Path) -> None:
    before = set(_packages()) - {"prometheus", "firebird3.0-server", "opencv-doc"}  # PostgreSQL was already there
    run, calls = _sysdeps(tmp_path, before)
    assert run.returncode == 0, run.stderr
    assert calls[0] == "apt-get update -qq"
    assert calls[1].startswith("apt-get install") and calls[1].split()[-3:] == [
        "prometheus", "opencv-doc", "firebird3.0-server"
    ]  # fmt: skip
    assert [c for c in calls if c.startswith("systemctl")] == [
        "systemctl disable --now prometheus",
        "systemctl disable --now firebird3.0",
    ]
    assert not [c for c in calls if "postgresql" in c or c.startswith("pkill")]


def test_a_failed_install_fails_the_target(tmp_path: Path) -> None:
    run, calls = _sysdeps(tmp_path, set(_packages()) - {"opencv-doc"}, apt_fails=True)
    assert run.returncode != 0
    assert not [c for c in calls if c.startswith("systemctl")]


def _need_disk(tmp_path: Path, gigabytes: int) -> subprocess.CompletedProcess[str]:
    """Call the Makefile's ``need_disk`` from a makefile that includes it, in a folder with a ``.venv``."""
    (tmp_path / ".venv").mkdir()
    (tmp_path / "Makefile").write_text(
        f"include {ROOT / 'Makefile'}\ncheck:\n\t$(call need_disk,{gigabytes},the test install)\n\t@echo enough\n"
    )
    return subprocess.run(["make", "-s", "check"], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def _free_kb(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize // 1024


def test_an_install_that_cannot_fit_stops_before_pip_with_what_to_do(tmp_path: Path) -> None:
    too_much = _free_kb(tmp_path) // (1024 * 1024) + 50
    run = _need_disk(tmp_path, too_much)
    assert run.returncode != 0 and "enough" not in run.stdout
    assert f"the test install needs about {too_much} GB of disk" in run.stderr
    assert "Free some space" in run.stderr


def test_an_install_that_fits_goes_on(tmp_path: Path) -> None:
    run = _need_disk(tmp_path, 1 if _free_kb(tmp_path) > 2 * 1024 * 1024 else 0)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "enough"
