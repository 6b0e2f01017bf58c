"""L2 with a real instruct model end to end: SmolLM2-135M-Instruct (from its PyPI package) loaded
in-process by the gateway's llama.cpp generator, and served by a real llama-server as the Level 2
sidecar. The prompts are ones this model labels SIMPLE and answers within the token cap (greedy
decoding, so the answers are deterministic); what the tests check is that L2 really answers them,
streams them token by token, caches them, cancels work for departed clients, refuses with 503 when
overloaded and nothing can take over, and that the sidecar mode behaves the same."""
from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import anthropic
import openai
import pytest
import requests

from conftest import (GATEWAY_KEY, Gateway, answer_for, assert_completion, assert_incremental, assert_layer,
                      assert_openai_error, oa_body, uniq)
from local_models import SMOLLM_FILE, LlamaServer, real_model

# Answered by SmolLM2 itself: labelled SIMPLE and finished well within the cap.
GREETING = "Hi! How are you?"
# A longer answer (well over the guard's 32-byte opening), for streaming.
LONG_ANSWER = "What is the boiling point of water?"
# The sidecar classifies with a grammar-constrained answer, so it labels some prompts differently.
SIDECAR_LONG_ANSWER = "Tell me a fun fact about cats."
# Labelled COMPLEX by this model in both classification modes (no random suffix: a small model's
# label can change with one extra word).
COMPLEX_PROMPT = "Implement a thread-safe LRU cache in C++ with get and put in O(1)."
MAX_TOKENS = "200"


@pytest.fixture(scope="module")
def smollm() -> Path:
    return real_model()


def l2_env(**extra: str) -> dict[str, str]:
    env = {"ISARTOR__ENABLE_SLM_ROUTER": "true", "ISARTOR__CACHE_MODE": "none",
           "ISARTOR__LAYER2__MAX_GENERATE_TOKENS": MAX_TOKENS, "ISARTOR__GATEWAY_API_KEY": GATEWAY_KEY,
           # A busy machine makes the real model slow, not wrong: these tests are not about the timeout.
           "ISARTOR__LAYER2__TIMEOUT_SECS": "100"}
    env.update(extra)
    return env


@pytest.fixture
def real_gw(gateway_factory, smollm: Path) -> Gateway:
    gw = gateway_factory("openai", **l2_env(ISARTOR__LAYER2__MODEL_PATH=str(smollm)))
    assert gw.wait_layer("l2")["ready"], gw.log_tail()
    return gw


def l2_answer(gw: Gateway, prompt: str) -> str:
    """Asks without streaming; asserts L2 answered it and the provider never saw it."""
    calls = len(gw.fake.calls_for(prompt))
    resp = gw.post("/v1/chat/completions", oa_body(prompt), timeout=120)
    assert resp.status_code == 200, resp.text
    assert_layer(resp, "l2")
    body = resp.json()
    assert body["model"] == SMOLLM_FILE, body
    assert body["choices"][0]["finish_reason"] == "stop", body
    assert body["usage"]["completion_tokens"] > 0, body
    assert len(gw.fake.calls_for(prompt)) == calls, "an L2 answer must not reach the provider"
    text = body["choices"][0]["message"]["content"]
    assert text.strip() and text != answer_for(prompt), body
    return text


def test_health_names_the_real_model(real_gw: Gateway) -> None:
    assert real_gw.get("/health").json()["layers"]["l2"] == {"enabled": True, "ready": True, "detail": SMOLLM_FILE}


def test_simple_prompts_are_answered_locally_and_deterministically(real_gw: Gateway) -> None:
    first = l2_answer(real_gw, GREETING)
    assert l2_answer(real_gw, GREETING) == first  # greedy decoding


def test_complex_prompt_goes_to_the_cloud(real_gw: Gateway) -> None:
    resp = real_gw.post("/v1/chat/completions", oa_body(COMPLEX_PROMPT), timeout=120)
    assert_completion(resp, answer_for(COMPLEX_PROMPT))
    assert_layer(resp, "l3")


def test_stream_is_token_by_token_and_matches_the_whole_answer(real_gw: Gateway) -> None:
    whole = l2_answer(real_gw, LONG_ANSWER)
    assert len(whole.encode()) > 64, whole
    result = real_gw.stream("/v1/chat/completions", oa_body(LONG_ANSWER, stream=True), timeout=120)
    assert result.status == 200 and result.done(), result.raw[-2000:]
    assert_layer(result, "l2")
    assert result.openai_text() == whole
    assert result.finish_reasons() == ["stop"], result.raw[-2000:]
    # Many chunks, arriving as the model writes them, not a replay in one burst.
    assert len(result.content_events()) >= 5, result.raw[:2000]
    assert_incremental(result, min_spread=0.1)


def test_anthropic_route_streams_the_local_answer(real_gw: Gateway) -> None:
    whole = l2_answer(real_gw, LONG_ANSWER)
    client = anthropic.Anthropic(base_url=real_gw.url, api_key=GATEWAY_KEY, max_retries=0)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=512,
                                messages=[{"role": "user", "content": LONG_ANSWER}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole
    assert final.stop_reason == "end_turn"


def test_openai_sdk_streams_the_local_answer(real_gw: Gateway) -> None:
    whole = l2_answer(real_gw, LONG_ANSWER)
    client = openai.OpenAI(base_url=real_gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": LONG_ANSWER}]) as response:
        assert response.headers["x-isartor-layer"] == "l2"
        pieces = [chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices]
    assert "".join(pieces) == whole
    assert len([p for p in pieces if p]) >= 5


def test_local_answer_is_cached(gateway_factory, smollm: Path) -> None:
    gw = gateway_factory("openai", **l2_env(ISARTOR__LAYER2__MODEL_PATH=str(smollm), ISARTOR__CACHE_MODE="exact"))
    assert gw.wait_layer("l2")["ready"], gw.log_tail()
    first = l2_answer(gw, GREETING)
    again = gw.post("/v1/chat/completions", oa_body(GREETING), timeout=30)
    assert_layer(again, "l1a")
    assert again.json()["choices"][0]["message"]["content"] == first
    # A streamed local answer is cached once it finished too.
    streamed = gw.stream("/v1/chat/completions", oa_body(LONG_ANSWER, stream=True), timeout=120)
    assert_layer(streamed, "l2")
    hit = gw.post("/v1/chat/completions", oa_body(LONG_ANSWER), timeout=30)
    assert_layer(hit, "l1a")
    assert hit.json()["choices"][0]["message"]["content"] == streamed.openai_text()


def open_stream(gw: Gateway, prompt: str) -> socket.socket:
    """Starts a streaming request on a raw socket and returns once the first SSE event arrived."""
    body = json.dumps(oa_body(prompt, stream=True)).encode()
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=120)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + GATEWAY_KEY.encode() + b"\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    received = b""
    while b"data:" not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    assert b"x-isartor-layer: l2" in received.lower(), received
    return sock


def test_client_leaving_mid_answer_cancels_the_generation(gateway_factory, smollm: Path) -> None:
    gw = gateway_factory("openai", **l2_env(ISARTOR__LAYER2__MODEL_PATH=str(smollm), ISARTOR__LAYER2__MAX_SEQUENCES="1",
                                            ISARTOR_LOG="debug"))
    assert gw.wait_layer("l2")["ready"], gw.log_tail()
    since = gw.log_size()
    open_stream(gw, LONG_ANSWER).close()
    deadline = time.monotonic() + 30
    while "generation cancelled" not in gw.log()[since:]:
        assert time.monotonic() < deadline, gw.log_tail(since)
        time.sleep(0.05)
    # The one slot is free again at once: the next request is answered by L2.
    l2_answer(gw, GREETING)


def test_overload_without_a_provider_is_503_with_retry_after(gateway_factory, smollm: Path) -> None:
    gw = gateway_factory("openai", **l2_env(ISARTOR__LAYER2__MODEL_PATH=str(smollm), ISARTOR__LAYER2__MAX_SEQUENCES="1",
                                            ISARTOR__LAYER2__MAX_QUEUED="1", ISARTOR__EXTERNAL_LLM_API_KEY=""))
    assert gw.wait_layer("l2")["ready"], gw.log_tail()
    busy = open_stream(gw, LONG_ANSWER)  # holds the only slot while it generates
    results: list[requests.Response] = []

    def ask() -> None:
        results.append(gw.post("/v1/chat/completions", oa_body(GREETING), timeout=120))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy.close()
    assert len(results) == 4  # every request was answered
    refused = [r for r in results if r.status_code == 503 and r.headers.get("retry-after")]
    assert refused, [(r.status_code, r.text) for r in results]
    error = assert_openai_error(refused[0], 503)
    assert "busy" in error["message"], error
    assert all(r.status_code in (200, 503) for r in results), [(r.status_code, r.text) for r in results]


# ----------------------------------------------------------------------------------------------
# The same model behind a real llama-server (Level 2 sidecar)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sidecar(smollm: Path, tmp_path_factory: pytest.TempPathFactory) -> LlamaServer:
    server = LlamaServer(smollm, tmp_path_factory.mktemp("sidecar") / "llama-server.log").start()
    yield server
    server.stop()


@pytest.mark.parametrize("backend", ["embedded", "vllm"])
def test_sidecar_answers_and_streams(gateway_factory, sidecar: LlamaServer, backend: str) -> None:
    gw = gateway_factory("openai", **l2_env(ISARTOR__LAYER2__SIDECAR_URL=sidecar.url, ISARTOR__ROUTER_BACKEND=backend))
    status = gw.wait_layer("l2")
    assert status["ready"] and status["detail"].endswith(SMOLLM_FILE), status
    resp = gw.post("/v1/chat/completions", oa_body(GREETING), timeout=120)
    assert resp.status_code == 200, resp.text
    assert_layer(resp, "l2")
    text = resp.json()["choices"][0]["message"]["content"]
    assert text.strip() and text != answer_for(GREETING)
    result = gw.stream("/v1/chat/completions", oa_body(SIDECAR_LONG_ANSWER, stream=True), timeout=120)
    assert result.status == 200 and result.done(), result.raw[-2000:]
    assert_layer(result, "l2")
    assert len(result.content_events()) >= 5, result.raw[:2000]
    assert_incremental(result, min_spread=0.1)
    # A COMPLEX request still goes to the cloud.
    resp = gw.post("/v1/chat/completions", oa_body(COMPLEX_PROMPT), timeout=120)
    assert_completion(resp, answer_for(COMPLEX_PROMPT))
    assert_layer(resp, "l3")


def test_sidecar_that_comes_up_later_is_picked_up(gateway_factory, smollm: Path, tmp_path: Path) -> None:
    server = LlamaServer(smollm, tmp_path / "late.log", parallel=1)
    gw = gateway_factory("openai", **l2_env(ISARTOR__LAYER2__SIDECAR_URL=server.url))
    status = gw.get("/health").json()["layers"]["l2"]
    assert status["ready"] is False and "sidecar" in status["detail"], status
    prompt = uniq()
    assert_completion(gw.post("/v1/chat/completions", oa_body(prompt)), answer_for(prompt))  # L3 meanwhile
    server.start()
    try:
        deadline = time.monotonic() + 30
        while not gw.get("/health").json()["layers"]["l2"]["ready"]:
            assert time.monotonic() < deadline, gw.log_tail()
            time.sleep(0.2)
        resp = gw.post("/v1/chat/completions", oa_body(GREETING), timeout=120)
        assert_layer(resp, "l2")
    finally:
        server.stop()
    # Gone again: requests fall through to the cloud instead of failing.
    prompt = uniq()
    assert_completion(gw.post("/v1/chat/completions", oa_body(prompt), timeout=60), answer_for(prompt))
