"""Real local models for the L2 integration tests: the SmolLM2-135M-Instruct GGUF that
scripts/models.py extracts from its PyPI package, and llama-server (built by scripts/bootstrap.sh
from the same llama.cpp source as the gateway) as a real Level 2 sidecar on loopback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, free_port, wait_for_http

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
    """A real llama-server on loopback serving `model` with `parallel` slots."""

    def __init__(self, model: Path, log: Path, port: int | None = None, parallel: int = 2):
        self.model = model
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.parallel = parallel
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "LlamaServer":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(llama_server_bin()), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
                 "-c", str(2048 * self.parallel), "-np", str(self.parallel), "-t", "2"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_http(self.proc, self.url + "/health", timeout, "llama-server", lambda: self.log.read_text()[-3000:])
        except AssertionError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
