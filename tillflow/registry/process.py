"""The local registry as a child process (``python -m tillflow.registry``), for tests and benchmarks."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tillflow.devstack import HOST, free_port, registry_healthy
from tillflow.errors import UnavailableError


class RegistryProcess:
    """One registry server on a free port with its own data directory; restartable on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = data_dir.parent / f"{data_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> RegistryProcess:
        args = [sys.executable, "-m", "tillflow.registry", "--host", HOST, "--port", str(self.port)]
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen([*args, "--data-dir", str(self.data_dir)], stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise UnavailableError(f"registry exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if registry_healthy(self.url, timeout=1.0):
                return self
            time.sleep(0.1)
        self.stop()
        raise UnavailableError(f"registry not healthy within {timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it was not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def restart(self) -> RegistryProcess:
        self.stop()
        return self.start()
