"""The portable build: the shipped binary holds no instruction above its x86-64-v3 baseline (no AMX,
which crashes ggml on Sapphire Rapids and newer, no AVX-512), refuses older CPUs in one line, and
runs for real on a CPU that has exactly the baseline. The other CPUs are emulated by qemu's user
mode (Debian's qemu-user), which reports the chosen model's CPUID to the binary and faults on any
instruction that model lacks."""
from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, Gateway, assert_completion, assert_layer, oa_body, require_binary
from local_models import SMOLLM_FILE, llama_server_bin, real_model
from test_semantic import hf_cache, hub, hub_root, semantic_env  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="the x86-64-v3 baseline is x86-64's")

# Haswell is the first Intel CPU with all of x86-64-v3 and has no AVX-512.
BASELINE_CPU = "Haswell-v4"
# What qemu's models of older CPUs lack from the baseline, in the order the binary names them.
BELOW_BASELINE = {
    "Nehalem": "AVX, AVX2, FMA, F16C, BMI1, BMI2, LZCNT, MOVBE",
    "SandyBridge": "AVX2, FMA, F16C, BMI1, BMI2, LZCNT, MOVBE",
    "IvyBridge": "AVX2, FMA, BMI1, BMI2, LZCNT, MOVBE",
}


def qemu(cpu: str) -> list[str]:
    path = shutil.which("qemu-x86_64")
    if path is None:
        pytest.fail("qemu-x86_64 not found: scripts/bootstrap.sh installs Debian's qemu-user", pytrace=False)
    return [path, "-cpu", cpu]


@pytest.mark.parametrize("binary", ["isartor", "llama-server"])
def test_binaries_hold_no_instruction_above_the_baseline(binary: str):
    path = require_binary() if binary == "isartor" else llama_server_bin()
    result = subprocess.run([str(REPO / "scripts" / "check_portable.sh"), str(path)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_checker_finds_avx512_and_amx(tmp_path: Path):
    """The check above can fail: an object with one AVX-512 and one AMX function is refused by name."""
    source = tmp_path / "above.c"
    source.write_text("#include <immintrin.h>\n"
                      "__m512 add512(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }\n"
                      "void tiles(const void* cfg) { _tile_loadconfig(cfg); }\n")
    obj = tmp_path / "above.o"
    subprocess.run(["cc", "-O2", "-mavx512f", "-mamx-tile", "-c", str(source), "-o", str(obj)], check=True)
    result = subprocess.run([str(REPO / "scripts" / "check_portable.sh"), str(obj)], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout
    assert "<add512>" in result.stderr and "<tiles>" in result.stderr, result.stderr


@pytest.mark.parametrize("cpu", sorted(BELOW_BASELINE))
def test_a_cpu_below_the_baseline_is_refused_in_one_line(cpu: str):
    result = subprocess.run([*qemu(cpu), str(require_binary()), "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if not line.startswith("qemu-x86_64: warning")]
    assert lines == [f"isartor: this CPU lacks {BELOW_BASELINE[cpu]}, which this build needs (x86-64-v3); "
                     "build one for it from source with `make build NATIVE=1`"], result.stderr


def test_version_names_the_baseline(tmp_path: Path):
    result = subprocess.run([str(require_binary()), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "cpu: built for x86-64-v3" in result.stdout, result.stdout + result.stderr


@pytest.fixture
def emulated_gw(fake, hub, hf_cache: Path) -> Gateway:  # noqa: F811 (fixtures)
    env = semantic_env(hub, hf_cache, ISARTOR__ENABLE_SLM_ROUTER="true",
                       ISARTOR__LAYER2__MODEL_PATH=str(real_model()),
                       ISARTOR__LAYER2__MAX_GENERATE_TOKENS="48", ISARTOR__LAYER2__TIMEOUT_SECS="120")
    gateway = Gateway("openai", fake, env, wrapper=qemu(BASELINE_CPU), start_timeout=120)
    try:
        yield gateway.start()
        assert gateway.stop() == 0
    finally:
        gateway.cleanup()


def test_the_gateway_runs_on_a_cpu_with_exactly_the_baseline(emulated_gw: Gateway):
    """Real MiniLM embeddings (L1b) and a real SmolLM2 answer (L2) computed by llama.cpp's kernels
    on an emulated Haswell: any AVX-512 or AMX instruction on these paths would kill the process."""
    status = emulated_gw.wait_layer("l2", timeout=300)
    assert status == {"enabled": True, "ready": True, "detail": SMOLLM_FILE}, emulated_gw.log_tail()
    answered = emulated_gw.post("/v1/chat/completions", oa_body("Hi! How are you?"), timeout=300)
    assert answered.status_code == 200, answered.text
    assert_layer(answered, "l2")
    assert answered.json()["choices"][0]["message"]["content"].strip()
    # The first answer may come from L2 or L3; the paraphrase gets that same answer from L1b.
    first = emulated_gw.post("/v1/chat/completions", oa_body("What is the capital city of Italy?"), timeout=300)
    assert first.status_code == 200, first.text
    hit = emulated_gw.post("/v1/chat/completions", oa_body("Which city is the capital of Italy?"), timeout=300)
    assert_layer(hit, "l1b")
    assert_completion(hit, first.json()["choices"][0]["message"]["content"])
    assert emulated_gw.alive()
