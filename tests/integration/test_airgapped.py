"""Air-gapped hosts: the gateway in a fresh network namespace (`unshare -n`: a loopback and no route
anywhere) with its models from
  (1) an HF cache filled beforehand by `isartor models pull` from the fake hub, and HF_HUB_OFFLINE=1;
  (2) `isartor up --model-dir DIR`, DIR laid out as `huggingface-cli download ... --local-dir` leaves it
      (the L2 GGUF and the spec's tokenizer.json in DIR, all-MiniLM-L6-v2 in DIR/all-MiniLM-L6-v2/);
  (3) ISARTOR__MODEL_DIR pointing at that HF cache (a copied cache, without HF_HUB_OFFLINE).
Each starts with L1b and L2 ready and serves a semantic hit with no network call attempted: the
tripwire hub at HF_ENDPOINT sees no request, the log no hub or download line, and (when strace is
installed) every connect() the gateway makes goes to the fake provider on loopback.
L2 is the tiny random-weight GGUF of test_local_model.py under the default Gemma file name; L1b the
real all-MiniLM-L6-v2 of test_semantic.py. Needs root for `unshare -n` (skipped otherwise)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, isartor_bin, oa_body, run_isartor
from test_local_model import GEMMA_FILE, GEMMA_REPO, gemma_hub, tiny_model  # noqa: F401 (fixtures)
from test_semantic import REPO_ID, hf_cache, hub, hub_root, minilm_dir  # noqa: F401 (fixtures)

DRIVER = Path(__file__).with_name("airgap_driver.py")
PROMPTS = ["How many legs does a spider have?", "How many legs do spiders have?"]
# What the hub client logs when it asks the hub or fetches from it.
HUB_LINES = re.compile(r"download|could not reach|Hugging Face hub|resolve/", re.IGNORECASE)


def can_unshare() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not can_unshare(), reason="needs `unshare -n` (root or CAP_SYS_ADMIN)")


@pytest.fixture(scope="module")
def full_cache(hf_cache: Path, gemma_hub) -> Path:  # noqa: F811
    """The HF cache with both models: MiniLM (pulled by test_semantic's fixture) plus the L2 GGUF."""
    env = {"HF_ENDPOINT": gemma_hub.url, "ISARTOR__HF_CACHE_DIR": str(hf_cache), "ISARTOR__CACHE_MODE": "exact",
           "ISARTOR__ENABLE_SLM_ROUTER": "true"}
    result = run_isartor(["models", "pull"], env, cwd=hf_cache, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return hf_cache


@pytest.fixture
def local_dir(tmp_path: Path, tiny_model: Path) -> Path:  # noqa: F811
    """The spec's `huggingface-cli download ... --local-dir ./models` layout."""
    models = tmp_path / "models"
    models.mkdir()
    os.symlink(tiny_model, models / GEMMA_FILE)
    (models / "tokenizer.json").write_text("{}")  # the spec also fetches Gemma's tokenizer; not needed
    os.symlink(minilm_dir(), models / REPO_ID.split("/")[1])
    return models


def run_airgapped(tmp_path: Path, args: list[str], env: dict[str, str]) -> dict:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"args": args, "env": env, "prompts": PROMPTS}))
    driver_env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    driver_env["ISARTOR_BIN"] = str(isartor_bin())
    result = subprocess.run(["unshare", "-n", sys.executable, str(DRIVER), str(spec)], capture_output=True,
                            text=True, timeout=90, env=driver_env, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_served_without_network(report: dict) -> None:
    log = report["log"]
    layers = report["health"]["layers"]
    assert layers["l1b"]["ready"] is True, (layers, log)
    assert layers["l2"] == {"enabled": True, "ready": True, "detail": GEMMA_FILE}, (layers, log)
    first, second = report["layers"]
    assert first[0] == 200 and first[1] in ("l2", "l3"), report["layers"]
    assert second == [200, "l1b"], (report["layers"], log)
    assert report["exit_code"] == 0, log
    assert report["hub_requests"] == [], "the hub was asked"
    assert not [line for line in log.splitlines() if HUB_LINES.search(line)], log
    if report["traced"]:
        provider = f'sin_port=htons({report["fake_port"]}), sin_addr=inet_addr("127.0.0.1")'
        elsewhere = [c for c in report["connects"] if "AF_UNIX" not in c and provider not in c]
        assert elsewhere == [], f"connect() attempts beyond the fake provider: {elsewhere}"


def test_precached_hf_cache_offline(tmp_path: Path, full_cache: Path) -> None:
    report = run_airgapped(tmp_path, [], {"ISARTOR__HF_CACHE_DIR": str(full_cache), "HF_HUB_OFFLINE": "1"})
    assert_served_without_network(report)
    assert "Local model ready (gemma-2-2b-it.Q4_K_M.gguf" in report["log"]


def test_model_dir_in_the_local_dir_layout(tmp_path: Path, local_dir: Path) -> None:
    report = run_airgapped(tmp_path, ["--model-dir", str(local_dir)], {})
    assert_served_without_network(report)
    assert f"embedding model {REPO_ID} from {local_dir / 'all-MiniLM-L6-v2'}" in report["log"]
    assert f"Loading the local model ({local_dir / GEMMA_FILE})" in report["log"]


def test_model_dir_holding_a_copied_hf_cache(tmp_path: Path, full_cache: Path) -> None:
    # No HF_HUB_OFFLINE: the model dir alone keeps the gateway off the network.
    report = run_airgapped(tmp_path, [], {"ISARTOR__MODEL_DIR": str(full_cache)})
    assert_served_without_network(report)
    assert f"embedding model {REPO_ID} from the Hugging Face cache {full_cache}" in report["log"]


def test_model_dir_missing_embedding_is_a_startup_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "models" / "all-MiniLM-L6-v2").mkdir(parents=True)
    env = {"ISARTOR__CACHE_MODE": "both", "ISARTOR__EMBEDDING__REQUIRED": "true", "ISARTOR__ENABLE_SLM_ROUTER": "false",
           "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "home")}
    result = run_isartor(["up", "--model-dir", str(tmp_path / "models")], env, cwd=tmp_path, timeout=30)
    assert result.returncode == 1, result.stderr
    assert f"ISARTOR__MODEL_DIR={tmp_path / 'models'}" in result.stderr, result.stderr
    assert f"{tmp_path / 'models' / 'all-MiniLM-L6-v2'}: no config.json" in result.stderr, result.stderr
    assert not HUB_LINES.search(result.stderr), result.stderr


def test_model_dir_missing_local_model_leaves_l2_off_naming_the_file(gateway_factory, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    gw = gateway_factory("openai", ISARTOR__ENABLE_SLM_ROUTER="true", ISARTOR__MODEL_DIR=str(tmp_path / "models"),
                         HF_ENDPOINT="http://127.0.0.1:9")
    status = gw.wait_layer("l2")
    assert status["ready"] is False, status
    assert str(tmp_path / "models" / GEMMA_FILE) in status["detail"], status
    assert GEMMA_REPO in status["detail"], status
    assert gw.post("/v1/chat/completions", oa_body("hi there")).status_code == 200


def test_up_rejects_an_unknown_argument(tmp_path: Path) -> None:
    result = run_isartor(["up", "--model-dri", "x"], {}, cwd=tmp_path)
    assert result.returncode == 2
    assert "bad argument '--model-dri'" in result.stderr and "--model-dir DIR" in result.stderr
