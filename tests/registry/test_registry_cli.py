"""`tillflow registry serve` runs the same server in the foreground and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tillflow.devstack import HOST, free_port, registry_healthy


def test_registry_serve_command(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://{HOST}:{port}"
    args = ["-m", "tillflow", "registry", "serve", "--port", str(port), "--data-dir", str(tmp_path / "r")]
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not registry_healthy(url, timeout=1.0):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "registry serve did not answer"
            time.sleep(0.2)
        body = {"schema": '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}'}
        assert requests.post(f"{url}/subjects/r-value/versions", json=body, timeout=5).json() == {"id": 1}
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, output
    assert "stopped" in output
    assert (tmp_path / "r" / "registry.json").exists()
