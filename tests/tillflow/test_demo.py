"""`tillflow demo` end to end, as `make demo` runs it: real stack, worker, sink and simulator processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_pipeline_and_alerts_exactly_on_the_injected_incidents(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLFLOW_")}
    env.update(TILLFLOW_STATE_DIR=str(tmp_path / "state"), COLUMNS="200", TILLFLOW_CONFIG=str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "tillflow", "demo", "--date", "2026-11-20", "--day-seconds", "30", "--fps", "0.1",
         "--timeout", "400"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:] + out[-3000:]
    summary = out[out.index("demo summary") :]
    fired = [line.split() for line in summary.splitlines() if line.startswith("  ") and "UTC" in line]
    kinds = {(f[0], f[1]) for f in fired}
    # The demo injects a sales drop at wg-grocer, a silent POS feed at wg-fashion and a dead camera at nyc-soho.
    assert ("SALES_DROP", "wg-grocer") in kinds
    assert ("FEED_SILENT", "wg-fashion") in kinds
    assert ("CAMERA_SILENT", "nyc-soho") in kinds
    assert {store for _, store in kinds} <= {"wg-grocer", "wg-fashion", "nyc-soho"}  # nowhere else
    for store in ("wg-grocer", "wg-volt", "mum-bandra", "nyc-soho"):  # open on Fridays
        assert f"│ {store}" in summary
    assert "wg-grocer on 2026-11-20 (Europe/Berlin, EUR)" in out  # read back from ClickHouse
    assert "final" in out.split("wg-grocer on 2026-11-20")[1]
    assert not (tmp_path / "state" / "demo" / "stack.json").exists()  # the stack was stopped
