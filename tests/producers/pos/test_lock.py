"""Two processes for one source: the second is refused while the first runs, and the lock dies with it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from producers.pos.lock import AlreadyRunning, exclusive

HOLD = "import sys, time; from pathlib import Path; from producers.pos.lock import exclusive\n" \
       "with exclusive(Path(sys.argv[1]), 'x'):\n    print('held', flush=True); time.sleep(60)\n"  # fmt: skip


def test_second_holder_is_refused_and_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "src.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        refused = rf"poller square-paris is already running \(pid {proc.pid}\)"
        with pytest.raises(AlreadyRunning, match=refused), exclusive(lock, "poller square-paris"):
            pass
    finally:
        proc.kill()
        proc.wait(10)
    time.sleep(0.1)
    with exclusive(lock, "poller square-paris"):
        assert lock.read_text() != ""
