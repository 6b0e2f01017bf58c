"""Runs one air-gapped scenario for test_airgapped.py from inside a fresh network namespace
(`unshare -n python3 airgap_driver.py SPEC.json`): brings up the namespace's loopback, starts a fake
provider and a tripwire fake hub (an empty one: any hub request would show in its log) on it, runs
the gateway (under `strace -e trace=connect` when strace is installed) with SPEC's arguments and
environment, waits for L1b and L2, sends SPEC's prompts, stops the gateway with SIGTERM and prints
one JSON report on stdout. Not a test module itself (pytest collects test_*.py only)."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import clean_env, oa_body, provider_env, require_binary, start_listening  # noqa: E402
from fake_hf_hub import FakeHub  # noqa: E402
from fake_provider import FakeProvider  # noqa: E402

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
LAYER_TIMEOUT = 30.0


def bring_up_loopback() -> None:
    """`ip link set lo up` without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_layers(url: str, deadline: float) -> dict:
    """/health once L1b and L2 are ready or say they are unavailable (or the time is up)."""
    import requests
    while True:
        health = requests.get(url + "/health", timeout=5).json()
        pending = [name for name in ("l1b", "l2") if not health["layers"][name]["ready"]
                   and not health["layers"][name]["detail"].startswith("unavailable")]
        if not pending or time.monotonic() > deadline:
            return health
        time.sleep(0.1)


def run(spec: dict) -> dict:
    import requests
    bring_up_loopback()
    work = Path(tempfile.mkdtemp(prefix="isartor-airgap-"))
    fake = FakeProvider().start()
    tripwire = FakeHub(work / "empty-hub").start()
    trace = work / "connect.trace"
    log_path = work / "isartor.log"
    env = provider_env("openai", fake.url)
    env.update({"ISARTOR__ENABLE_SLM_ROUTER": "true",
                "ISARTOR__CACHE_MODE": "both", "ISARTOR__EMBEDDING__REQUIRED": "true",
                "ISARTOR__LAYER2__MAX_GENERATE_TOKENS": "16", "ISARTOR_LOG": "info",
                "HF_ENDPOINT": tripwire.url, "HF_HOME": str(work / "hf-home")})
    env.update(spec["env"])
    strace = shutil.which("strace")
    command = [str(require_binary()), "up", *spec["args"]]
    if strace:
        command = [strace, "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-o", str(trace), *command]
    report: dict = {"fake_port": fake.port, "traced": bool(strace)}
    proc = None
    try:
        started = time.monotonic()
        proc, port = start_listening(command, clean_env(env), work, log_path, LAYER_TIMEOUT)
        url = f"http://127.0.0.1:{port}"
        report["health"] = wait_layers(url, started + LAYER_TIMEOUT)
        report["ready_secs"] = round(time.monotonic() - started, 2)
        report["layers"] = []
        for prompt in spec["prompts"]:
            resp = requests.post(url + "/v1/chat/completions", json=oa_body(prompt), timeout=60)
            report["layers"].append([resp.status_code, resp.headers.get("x-isartor-layer")])
        gateway = children_of(proc.pid) if strace else [proc.pid]
        for pid in gateway:
            os.kill(pid, signal.SIGTERM)
        report["exit_code"] = proc.wait(timeout=15)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        report["hub_requests"] = tripwire.requests
        tripwire.stop()
        fake.stop()
        report["log"] = log_path.read_text(errors="replace")
        report["connects"] = [line for line in trace.read_text().splitlines() if "connect(" in line] if strace else []
        shutil.rmtree(work, ignore_errors=True)
    return report


if __name__ == "__main__":
    print(json.dumps(run(json.loads(Path(sys.argv[1]).read_text()))))
