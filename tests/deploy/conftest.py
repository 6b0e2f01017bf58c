"""Fixtures for the deployment suite: the archive and the .deb built once per session from the
real binary ($ISARTOR_BIN or <repo>/build/isartor) into a temp dir, and helpers to run install.sh
and the installed gateway."""
from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_SH = REPO / "install.sh"
UNIT = REPO / "deploy" / "systemd" / "isartor.service"
ENV_EXAMPLE = REPO / "deploy" / "env.example"
ARCH = platform.machine()


def version() -> str:
    for line in (REPO / "CMakeLists.txt").read_text().splitlines():
        if line.startswith("project(isartor VERSION "):
            return line.split()[2]
    raise AssertionError("no project(isartor VERSION ...) in CMakeLists.txt")


VERSION = version()
NAME = f"isartor-{VERSION}-linux-{ARCH}"


def isartor_bin() -> Path:
    path = Path(os.environ.get("ISARTOR_BIN") or REPO / "build" / "isartor")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"isartor binary not found at {path}: build it or set ISARTOR_BIN", pytrace=False)
    return path


def run(cmd: list[str], timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Runs a command, output captured as text; with check, a failure shows its output."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def dist_script(target: str, out: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    """scripts/dist.sh <target> with its output in `out`; the path it printed."""
    full_env = {**os.environ, "ISARTOR_BIN": str(isartor_bin()), "ISARTOR_DIST": str(out), **(env or {})}
    return Path(run([REPO / "scripts" / "dist.sh", target, *args], env=full_env).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Path:
    """dist/isartor-<version>-linux-<arch>.tar.gz (and its .sha256), built once."""
    return dist_script("tar", tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def deb(tmp_path_factory) -> Path:
    return dist_script("deb", tmp_path_factory.mktemp("deb"))


def install_sh(*args: str, env: dict[str, str] | None = None, check: bool = True,
               script: Path = INSTALL_SH) -> subprocess.CompletedProcess:
    """sh install.sh ARGS, in a clean environment (no ISARTOR_ARCHIVE etc. from the caller)."""
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return run(["sh", script, *args], env={**base, **(env or {})}, check=check)


def tree_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def extract(archive_path: Path, into: Path) -> Path:
    run(["tar", "-xzf", archive_path, "-C", into])
    return into / NAME


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gateway:
    proc: subprocess.Popen
    url: str


def start_gateway(binary: Path, workdir: Path, timeout: float = 10.0, attempts: int = 5) -> Gateway:
    """`binary up` on a free local port with the exact cache only and no L2, so nothing is
    downloaded; returns once it logged "Listening on 127.0.0.1:PORT" and GET /health answers 200.
    free_port() only says the port was free a moment ago: when another process takes it before the
    gateway binds it ("cannot listen on ...: Address already in use"), it starts again on a fresh one."""
    log_path = workdir / "isartor.log"
    for _ in range(attempts):
        port = free_port()
        env = {"PATH": os.environ["PATH"], "HOME": str(workdir), "ISARTOR__HOST_PORT": f"127.0.0.1:{port}",
               "ISARTOR__CACHE_MODE": "exact", "ISARTOR__ENABLE_SLM_ROUTER": "false", "HF_HUB_OFFLINE": "1"}
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([str(binary), "up"], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        gw = Gateway(proc, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + timeout
        listening = False
        while time.monotonic() < deadline:
            exited = proc.poll() is not None
            text = log_path.read_text(errors="replace")
            # Only once this process says it listens there is the answer on the port its own.
            listening = listening or f"Listening on 127.0.0.1:{port}" in text
            if listening:
                try:
                    with urllib.request.urlopen(gw.url + "/health", timeout=0.5) as r:
                        if r.status == 200:
                            return gw
                except OSError:
                    pass
            if exited:
                break
            time.sleep(0.05)
        stop_gateway(gw)
        if f"cannot listen on 127.0.0.1:{port}: Address already in use" not in log_path.read_text(errors="replace"):
            break
    raise AssertionError(f"{binary} up did not answer /health:\n{log_path.read_text(errors='replace')}")


def stop_gateway(gw: Gateway) -> int:
    if gw.proc.poll() is None:
        gw.proc.terminate()
        try:
            gw.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            gw.proc.kill()
            gw.proc.wait()
    return gw.proc.returncode


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (it creates the isartor user and files under /etc, /var)")


def require_clean_host() -> None:
    """The system-wide tests install and remove a real isartor: refuse to run over one that is there."""
    taken = [p for p in ("/etc/isartor", "/var/cache/isartor", "/usr/bin/isartor",
                         "/etc/systemd/system/isartor.service", "/lib/systemd/system/isartor.service")
             if os.path.lexists(p)]
    if shutil.which("getent") and run(["getent", "passwd", "isartor"], check=False).returncode == 0:
        taken.append("user isartor")
    if taken:
        pytest.fail(f"isartor is already installed on this machine ({', '.join(taken)}): "
                    "the system-wide tests would overwrite and then remove it", pytrace=False)
