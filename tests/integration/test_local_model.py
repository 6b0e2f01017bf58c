"""The local model layer (L2) end to end, in-process: a tiny random-weight Gemma-2 GGUF written by
scripts/make_tiny_gguf.py is loaded by the gateway's real llama.cpp generator. Its answers are
nonsense, so these tests check mechanics: /health reports L2, every request is answered by L2 or
falls through to L3, the layer header matches who answered, and the gateway keeps serving."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO, Gateway, answer_for, assert_completion, assert_layer, oa_body, run_isartor, uniq
from fake_hf_hub import FakeHub

PROMPTS = ["hello", "What is the capital of France?", "Spell 'necessary'.", "Convert 3 km to miles.",
           "Write a haiku about the sea.", "Explain quicksort step by step."]
# What the layer logs for every request it consults the model about and does not answer.
CONSULTED = ("classified COMPLEX", "quality guard rejected")


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="isartor-tiny-"))
    path = folder / "tiny.gguf"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_tiny_gguf.py"), str(path)], check=True,
                   capture_output=True, timeout=120)
    yield path
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def l2_gateway(gateway_factory, tiny_model: Path) -> Gateway:
    gw = gateway_factory("openai", ISARTOR__ENABLE_SLM_ROUTER="true", ISARTOR__LAYER2__MODEL_PATH=str(tiny_model),
                         ISARTOR__CACHE_MODE="exact", ISARTOR__LAYER2__MAX_GENERATE_TOKENS="16")
    assert gw.wait_layer("l2")["ready"], gw.log_tail()
    return gw


def consultations(gw: Gateway, since: int) -> int:
    return sum(line.count(marker) for line in gw.log()[since:].splitlines() for marker in CONSULTED)


def test_health_reports_l2(l2_gateway: Gateway) -> None:
    layers = l2_gateway.get("/health").json()["layers"]
    assert layers["l2"] == {"enabled": True, "ready": True, "detail": "tiny.gguf"}, layers


def test_every_answer_comes_from_l2_or_l3(l2_gateway: Gateway) -> None:
    gw = l2_gateway
    layers = []
    for text in PROMPTS:
        prompt = f"{text} ({uniq()})"
        calls_before = len(gw.fake.calls_for(prompt))
        log_before = gw.log_size()
        resp = gw.post("/v1/chat/completions", oa_body(prompt), timeout=60)
        assert resp.status_code == 200, resp.text
        layer = resp.headers.get("x-isartor-layer")
        assert layer in ("l2", "l3"), resp.headers
        assert_layer(resp, layer)
        layers.append(layer)
        calls = len(gw.fake.calls_for(prompt)) - calls_before
        if layer == "l2":
            body = resp.json()
            content = body["choices"][0]["message"]["content"]
            assert content.strip(), body
            assert body["choices"][0]["finish_reason"] == "stop", body
            assert body["model"] == "tiny.gguf", body
            assert calls == 0, "an L2 answer must not reach the provider"
        else:
            assert_completion(resp, answer_for(prompt))
            assert calls == 1
            # L2 did look at it (single-turn plain text) and declined: COMPLEX or guard.
            assert consultations(gw, log_before) == 1, gw.log_tail(log_before)
    # The tiny model is mostly SIMPLE to its label logits, so the generate path must have run at
    # least once (its random text never ends within 16 tokens, so the guard sends it to L3).
    assert layers.count("l2") + gw.log().count("quality guard rejected") >= 1, layers
    assert gw.alive()


def test_streaming_request_is_answered(l2_gateway: Gateway) -> None:
    prompt = uniq("hi")
    result = l2_gateway.stream("/v1/chat/completions", oa_body(prompt, stream=True), timeout=60)
    assert result.status == 200, result.raw[:2000]
    assert result.done(), result.raw[-500:]
    layer = result.headers.get("x-isartor-layer")
    assert layer in ("l2", "l3"), result.headers
    assert result.openai_text().strip(), result.raw[:2000]
    if layer == "l3":
        assert result.openai_text() == answer_for(prompt)


def test_multi_turn_and_tools_skip_the_model(l2_gateway: Gateway) -> None:
    gw = l2_gateway
    log_before = gw.log_size()
    prompt = uniq("again")
    multi = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                          {"role": "user", "content": prompt}]}
    resp = gw.post("/v1/chat/completions", multi, timeout=30)
    assert_completion(resp, answer_for(prompt))
    assert_layer(resp, "l3")
    prompt = uniq("tool")
    tools = oa_body(prompt, tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    resp = gw.post("/v1/chat/completions", tools, timeout=30)
    assert resp.status_code == 200, resp.text
    assert_layer(resp, "l3")
    assert consultations(gw, log_before) == 0, gw.log_tail(log_before)


def test_repeated_prompt_is_cached_after_first_answer(l2_gateway: Gateway) -> None:
    gw = l2_gateway
    prompt = uniq("repeat")
    first = gw.post("/v1/chat/completions", oa_body(prompt), timeout=60)
    assert first.status_code == 200, first.text
    second = gw.post("/v1/chat/completions", oa_body(prompt), timeout=60)
    assert_layer(second, "l1a")
    assert second.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]


def test_uncached_default_model_offline_leaves_l2_off(gateway_factory, tmp_path: Path) -> None:
    # No model path: the default Gemma would come from the hub, but offline and not cached it cannot.
    gw = gateway_factory("openai", ISARTOR__ENABLE_SLM_ROUTER="true", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path))
    status = gw.wait_layer("l2")
    assert status["enabled"] is True and status["ready"] is False, status
    assert "mradermacher/gemma-2-2b-it-GGUF" in status["detail"], status
    assert "gemma-2-2b-it.Q4_K_M.gguf" in gw.log()
    prompt = uniq()
    assert_completion(gw.post("/v1/chat/completions", oa_body(prompt)), answer_for(prompt))


def test_unloadable_model_leaves_l2_off(gateway_factory, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"GGUF nonsense")
    gw = gateway_factory("openai", ISARTOR__ENABLE_SLM_ROUTER="true", ISARTOR__LAYER2__MODEL_PATH=str(bogus))
    status = gw.wait_layer("l2")
    assert status["ready"] is False and status["detail"].startswith("unavailable"), status
    prompt = uniq()
    assert_completion(gw.post("/v1/chat/completions", oa_body(prompt)), answer_for(prompt))


def test_missing_model_file_leaves_l2_off(gateway_factory, tmp_path: Path) -> None:
    gw = gateway_factory("openai", ISARTOR__ENABLE_SLM_ROUTER="true",
                         ISARTOR__LAYER2__MODEL_PATH=str(tmp_path / "nowhere.gguf"))
    status = gw.wait_layer("l2")
    assert status["ready"] is False and "nowhere.gguf" in status["detail"], status


# ----------------------------------------------------------------------------------------------
# The default model from the (fake) Hugging Face hub
# ----------------------------------------------------------------------------------------------

GEMMA_REPO = "mradermacher/gemma-2-2b-it-GGUF"
GEMMA_FILE = "gemma-2-2b-it.Q4_K_M.gguf"


@pytest.fixture(scope="module")
def gemma_hub(tiny_model: Path):
    """A fake hub whose default L2 repo holds the tiny model under the real default file name."""
    root = Path(tempfile.mkdtemp(prefix="isartor-l2hub-"))
    (root / GEMMA_REPO).mkdir(parents=True)
    shutil.copy(tiny_model, root / GEMMA_REPO / GEMMA_FILE)
    hub = FakeHub(root).start()
    yield hub
    hub.stop()
    shutil.rmtree(root, ignore_errors=True)


def hub_env(hub: FakeHub, home: Path, **extra: str) -> dict[str, str]:
    env = {"ISARTOR__ENABLE_SLM_ROUTER": "true", "HF_ENDPOINT": hub.url, "HF_HOME": str(home),
           "ISARTOR__CACHE_MODE": "exact"}
    env.update(extra)
    return env


def snapshot_file(home: Path) -> Path:
    folder = home / "hub" / ("models--" + GEMMA_REPO.replace("/", "--"))
    [path] = list((folder / "snapshots").glob(f"*/{GEMMA_FILE}"))
    return path


def test_default_model_is_downloaded_while_the_gateway_serves(gateway_factory, gemma_hub: FakeHub,
                                                               tiny_model: Path, tmp_path: Path) -> None:
    # Slow the download down so the gateway is seen serving (through L3) while it runs.
    requests.post(gemma_hub.url + "/_fake/config?chunk_delay_ms=60", timeout=5)
    try:
        gw = gateway_factory("openai", **hub_env(gemma_hub, tmp_path))
        prompt = uniq()
        resp = gw.post("/v1/chat/completions", oa_body(prompt))
        assert_completion(resp, answer_for(prompt))
        assert_layer(resp, "l3")
        status = gw.get("/health").json()["layers"]["l2"]
        assert status["ready"] is False, status
        assert status["detail"].startswith(("resolving", "downloading")), status
    finally:
        requests.post(gemma_hub.url + "/_fake/config?chunk_delay_ms=0", timeout=5)
    status = gw.wait_layer("l2", timeout=120)
    assert status == {"enabled": True, "ready": True, "detail": GEMMA_FILE}, status
    cached = snapshot_file(tmp_path)
    assert cached.is_symlink() and cached.read_bytes() == tiny_model.read_bytes()
    assert f"Local model ready ({GEMMA_FILE}" in gw.log(), gw.log_tail()


def test_models_pull_fetches_the_local_model_for_offline_use(gateway_factory, gemma_hub: FakeHub,
                                                              tmp_path: Path) -> None:
    result = run_isartor(["models", "pull"], hub_env(gemma_hub, tmp_path), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"local model ready: {snapshot_file(tmp_path)}" in result.stdout, result.stdout
    assert "embedding model" not in result.stdout  # CACHE_MODE=exact needs no embedder
    # Offline, the cached copy is used without asking the hub.
    requests.post(gemma_hub.url + "/_fake/reset", timeout=5)
    gw = gateway_factory("openai", **hub_env(gemma_hub, tmp_path, HF_HUB_OFFLINE="1"))
    assert gw.wait_layer("l2")["ready"], gw.log_tail()
    assert requests.get(gemma_hub.url + "/_fake/requests", timeout=5).json() == []


def test_sigterm_during_the_download_exits_promptly(gateway_factory, gemma_hub: FakeHub, tmp_path: Path) -> None:
    requests.post(gemma_hub.url + "/_fake/config?chunk_delay_ms=300", timeout=5)
    try:
        gw = gateway_factory("openai", **hub_env(gemma_hub, tmp_path))
        deadline = time.monotonic() + 30
        while not gw.get("/health").json()["layers"]["l2"]["detail"].startswith("downloading"):
            assert time.monotonic() < deadline, gw.log_tail()
            time.sleep(0.05)
        started = time.monotonic()
        assert gw.stop() == 0
        assert time.monotonic() - started < 5, "the download must not hold up the shutdown"
    finally:
        requests.post(gemma_hub.url + "/_fake/config?chunk_delay_ms=0", timeout=5)
    # What was fetched so far stays for a resume.
    blobs = tmp_path / "hub" / ("models--" + GEMMA_REPO.replace("/", "--")) / "blobs"
    assert list(blobs.glob("*.incomplete")), list(blobs.iterdir())
