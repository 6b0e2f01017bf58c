"""Real local models for the L2 integration tests: the SmolLM2-135M-Instruct GGUF that
scripts/models.py extracts from its PyPI package, and llama-server (built by scripts/bootstrap.sh
from the same llama.cpp source as the gateway) as a real Level 2 sidecar on loopback."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, free_port, read_from, wait_for_http

SMOLLM = "smollm2-135m"
SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def real_model() -> Path:
    """The SmolLM2 GGUF (bootstrap fetches it; this fetches it too when run by hand)."""
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "models.py"), "path", SMOLLM],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"cannot get the {SMOLLM} model: {result.stderr}", pytrace=False)
    return Path(result.stdout.strip())


def llama_server_bin() -> Path:
    prefix = subprocess.run([str(REPO / "scripts" / "bootstrap.sh"), "prefix"], capture_output=True, text=True,
                            check=True).stdout.strip()
    path = Path(prefix) / "bin" / "llama-server"
    if not path.is_file():
        pytest.fail(f"llama-server not found at {path}: run scripts/bootstrap.sh", pytrace=False)
    return path


class LlamaServer:
    """A real llama-server on loopback serving `model` with `parallel` slots.

    Its port is fixed as late as possible: by the kernel at llama-server's bind (--port 0, read back
    from its "listening on" line), unless `port` is given or `url` is asked for before start() (the
    caller needs the address in advance, e.g. to configure a gateway before the sidecar exists)."""

    def __init__(self, model: Path, log: Path, port: int | None = None, parallel: int = 2):
        self.model = model
        self.port = port
        self.log = log
        self.parallel = parallel
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            self.port = free_port()
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "LlamaServer":
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(llama_server_bin()), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(self.port or 0),
                 "-c", str(2048 * self.parallel), "-np", str(self.parallel), "-t", "2"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        tail = lambda: read_from(self.log, offset)[-3000:]  # noqa: E731
        try:
            if self.port is None:
                self.port = self._bound_port(offset, timeout, tail)
            wait_for_http(self.proc, self.url + "/health", timeout, "llama-server", tail)
        except AssertionError:
            self.stop()
            raise
        return self

    def _bound_port(self, offset: int, timeout: float, tail) -> int:
        """The port llama-server logged it listens on (it binds before loading the model)."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll() is not None
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", read_from(self.log, offset))
            if found:
                return int(found[1])
            if exited:
                raise AssertionError(f"llama-server exited with {self.proc.returncode} during start-up:\n{tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"llama-server did not say where it listens within {timeout}s:\n{tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
