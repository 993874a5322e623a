"""`tillflow registry serve` runs the same server in the foreground and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
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


def _run_server(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "tillflow.registry", "--port", str(port), "--data-dir", str(data_dir)]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def test_unreadable_state_file_is_a_clear_startup_error(tmp_path: Path) -> None:
    (tmp_path / "registry.json").write_text('{"subjects": ')
    result = _run_server(tmp_path, free_port())
    assert result.returncode != 0
    assert "registry.json is not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_startup_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        result = _run_server(tmp_path, busy.getsockname()[1])
    assert result.returncode != 0
    assert "cannot listen on" in result.stderr and "Traceback" not in result.stderr
