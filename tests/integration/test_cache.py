"""The exact cache (L1a): hits, misses, replay as SSE, TTL, what must never be cached."""
from __future__ import annotations

import time

import pytest

from conftest import (an_body, answer_for, assert_anthropic_stream, assert_completion, assert_layer, assert_message,
                      assert_openai_error, assert_openai_stream, native_body, oa_body, uniq)

# A streamed answer is cached once it completed; the client may see the last event a moment before
# the gateway stored the answer, so repeats after a stream wait this long first.
SETTLE = 0.1


def long_answer_prompt(label: str) -> str:
    """Long enough that a replayed answer must come in several chunks."""
    return uniq(label) + " " + "the quick brown fox jumps over the lazy dog " * 3


def test_repeat_is_l1a_hit(any_gw):
    prompt = uniq("repeat")
    first = any_gw.post("/v1/chat/completions", oa_body(prompt))
    assert_completion(first, answer_for(prompt))
    assert_layer(first, "l3")
    second = any_gw.post("/v1/chat/completions", oa_body(prompt))
    assert_completion(second, answer_for(prompt))
    assert_layer(second, "l1a")
    assert any_gw.fake.count(prompt) == 1


def test_native_repeat_is_l1a_hit(gw_anthropic):
    prompt = uniq("native repeat")
    first = gw_anthropic.post("/api/chat", native_body(prompt)).json()
    second = gw_anthropic.post("/api/chat", native_body(prompt))
    assert second.status_code == 200, second.text
    assert (first["layer"], second.json()["layer"]) == ("l3", "l1a")
    assert second.json()["message"] == first["message"] == answer_for(prompt)
    assert_layer(second, "l1a")
    assert gw_anthropic.fake.count(prompt) == 1


def test_messages_repeat_is_l1a_hit(gw_anthropic):
    prompt = uniq("messages repeat")
    assert_layer(gw_anthropic.post("/v1/messages", an_body(prompt)), "l3")
    second = gw_anthropic.post("/v1/messages", an_body(prompt))
    assert_message(second, answer_for(prompt))
    assert_layer(second, "l1a")
    assert gw_anthropic.fake.count(prompt) == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_stream_after_non_stream_is_replayed_as_sse(shared_gateway, provider):
    gw = shared_gateway(provider)
    prompt = long_answer_prompt("replay")
    assert_completion(gw.post("/v1/chat/completions", oa_body(prompt)), answer_for(prompt))
    result = gw.stream("/v1/chat/completions", oa_body(prompt, stream=True))
    assert_openai_stream(result, answer_for(prompt))
    assert_layer(result, "l1a")
    assert len(result.content_events()) >= 2, "a cached answer must be replayed in several chunks"
    assert gw.fake.count(prompt) == 1
    headers = {k.lower(): v for k, v in result.headers.items()}
    # Known up front, the replay goes out as one body with a length; still an event stream.
    assert headers.get("content-type") == "text/event-stream", headers
    assert headers.get("cache-control") == "no-cache", headers
    assert int(headers.get("content-length", -1)) == len(result.raw), headers
    assert "transfer-encoding" not in headers, headers


def test_non_stream_after_stream_is_hit(gw_openai):
    prompt = uniq("stream first")
    result = gw_openai.stream("/v1/chat/completions", oa_body(prompt, stream=True))
    assert_openai_stream(result, answer_for(prompt))
    assert_layer(result, "l3")
    time.sleep(SETTLE)
    second = gw_openai.post("/v1/chat/completions", oa_body(prompt))
    assert_completion(second, answer_for(prompt))
    assert_layer(second, "l1a")
    assert gw_openai.fake.count(prompt) == 1


def test_anthropic_stream_replay(gw_openai):
    prompt = long_answer_prompt("anthropic replay")
    assert_message(gw_openai.post("/v1/messages", an_body(prompt)), answer_for(prompt))
    result = gw_openai.stream("/v1/messages", an_body(prompt, stream=True))
    assert_anthropic_stream(result, answer_for(prompt))
    assert_layer(result, "l1a")
    assert gw_openai.fake.count(prompt) == 1
    assert {k.lower() for k in result.headers} >= {"content-length", "x-accel-buffering"}, result.headers


def test_stream_twice_second_is_hit(gw_anthropic):
    prompt = uniq("stream twice")
    assert_openai_stream(gw_anthropic.stream("/v1/chat/completions", oa_body(prompt, stream=True)), answer_for(prompt))
    time.sleep(SETTLE)
    second = gw_anthropic.stream("/v1/chat/completions", oa_body(prompt, stream=True))
    assert_openai_stream(second, answer_for(prompt))
    assert_layer(second, "l1a")
    assert gw_anthropic.fake.count(prompt) == 1


@pytest.mark.parametrize("variant", ["temperature", "system", "model", "messages", "max_tokens"])
def test_different_request_is_miss(gw_openai, variant):
    prompt = uniq(f"variant {variant}")
    base = oa_body(prompt, temperature=0.1)
    changed = {
        "temperature": oa_body(prompt, temperature=0.9),
        "system": {"messages": [{"role": "system", "content": "Be brief."}] + base["messages"], "temperature": 0.1},
        "model": oa_body(prompt, temperature=0.1, model="gpt-4o"),
        "messages": {"messages": [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"}]
                     + base["messages"], "temperature": 0.1},
        "max_tokens": oa_body(prompt, temperature=0.1, max_tokens=12),
    }[variant]
    assert_layer(gw_openai.post("/v1/chat/completions", base), "l3")
    second = gw_openai.post("/v1/chat/completions", changed)
    assert_completion(second, answer_for(prompt))
    assert_layer(second, "l3")
    assert gw_openai.fake.count(prompt) == 2


def test_formats_do_not_share_entries(gw_openai):
    prompt = uniq("formats")
    assert_layer(gw_openai.post("/v1/chat/completions", oa_body(prompt)), "l3")
    r = gw_openai.post("/v1/messages", an_body(prompt))
    assert_message(r, answer_for(prompt))
    assert_layer(r, "l3")
    r = gw_openai.post("/api/chat", native_body(prompt))
    assert r.status_code == 200 and r.json()["layer"] == "l3", r.text
    assert gw_openai.fake.count(prompt) == 3
    # ... while each format hits its own entry.
    for path, body in (("/v1/chat/completions", oa_body(prompt)), ("/v1/messages", an_body(prompt)),
                       ("/api/chat", native_body(prompt))):
        assert_layer(gw_openai.post(path, body), "l1a")
    assert gw_openai.fake.count(prompt) == 3


def test_interrupted_stream_is_not_cached(gw_openai):
    prompt = uniq("[[cut]] interrupted")
    first = gw_openai.stream("/v1/chat/completions", oa_body(prompt, stream=True))
    assert "stop" not in first.finish_reasons(), "an interrupted upstream stream was presented as complete"
    time.sleep(SETTLE)
    second = gw_openai.stream("/v1/chat/completions", oa_body(prompt, stream=True))
    assert second.headers.get("x-isartor-layer") != "l1a"
    assert gw_openai.fake.count(prompt) == 2
    assert gw_openai.get("/healthz").status_code == 200


def test_interrupted_anthropic_stream_is_not_cached(gw_anthropic):
    prompt = uniq("[[cut]] interrupted anthropic")
    first = gw_anthropic.stream("/v1/messages", an_body(prompt, stream=True))
    names = [name for name, _ in first.anthropic_events()] if first.status == 200 else []
    assert not any(name == "message_delta" and data["delta"].get("stop_reason") == "end_turn"
                   for name, data in first.anthropic_events()), names
    time.sleep(SETTLE)
    gw_anthropic.stream("/v1/messages", an_body(prompt, stream=True))
    assert gw_anthropic.fake.count(prompt) == 2


def test_upstream_error_is_not_cached(gw_openai):
    prompt = uniq("[[fail:503]] not cached")
    for _ in range(2):
        assert_openai_error(gw_openai.post("/v1/chat/completions", oa_body(prompt)), 502)
    assert gw_openai.fake.count(prompt) == 2


def test_ttl_expiry(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__CACHE_TTL_SECS="1")
    prompt = uniq("ttl")
    assert_layer(gw.post("/v1/chat/completions", oa_body(prompt)), "l3")
    assert_layer(gw.post("/v1/chat/completions", oa_body(prompt)), "l1a")
    time.sleep(2.1)
    third = gw.post("/v1/chat/completions", oa_body(prompt))
    assert_completion(third, answer_for(prompt))
    assert_layer(third, "l3")
    assert gw.fake.count(prompt) == 2


def test_cache_mode_none_never_caches(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__CACHE_MODE="none")
    prompt = uniq("no cache")
    for _ in range(3):
        r = gw.post("/v1/chat/completions", oa_body(prompt))
        assert_completion(r, answer_for(prompt))
        assert_layer(r, "l3")
    r = gw.post("/api/chat", native_body(prompt))
    assert r.json()["layer"] == "l3"
    assert gw.fake.count(prompt) == 4


def test_equivalent_json_spellings_hit(gw_openai):
    """Key order, whitespace and number spelling do not split cache entries."""
    prompt = uniq("spelling")
    first = '{"temperature": 1, "messages": [{"role": "user", "content": "%s"}]}' % prompt
    second = '{ "messages":[ {"content":"%s","role":"user"} ],\n "temperature":1.0 }' % prompt
    headers = {"Content-Type": "application/json"}
    assert_layer(gw_openai.request("POST", "/v1/chat/completions", data=first, headers=headers), "l3")
    r = gw_openai.request("POST", "/v1/chat/completions", data=second, headers=headers)
    assert_completion(r, answer_for(prompt))
    assert_layer(r, "l1a")
    assert gw_openai.fake.count(prompt) == 1


@pytest.mark.parametrize("path,stream", [("/v1/messages", False), ("/v1/messages", True),
                                         ("/v1/chat/completions", True), ("/v1/completions", False)])
def test_a_rendered_hit_is_kept_and_follows_its_entry(any_gw, path, stream):
    prompt = uniq("rendered once")
    if path == "/v1/messages":
        body = an_body(prompt, stream=stream)
    elif path == "/v1/completions":
        body = {"model": "m", "prompt": prompt, "max_tokens": 64}
    else:
        body = oa_body(prompt, stream=stream)
    assert any_gw.post(path, body).status_code == 200
    time.sleep(SETTLE)
    first, second = any_gw.post(path, body), any_gw.post(path, body)
    assert_layer(first, "l1a")
    assert_layer(second, "l1a")
    assert first.content == second.content
    # A fresh answer under the same key (no-cache looks past the cache, then stores): the hits
    # that follow are rendered from it, not from the answer before.
    fresh = any_gw.post(path, body, headers={"Cache-Control": "no-cache"})
    assert_layer(fresh, "l3")
    time.sleep(SETTLE)
    third = any_gw.post(path, body)
    assert_layer(third, "l1a")
    assert third.content != first.content  # another answer id
    assert third.content == any_gw.post(path, body).content
    assert any_gw.fake.count(prompt) == 2
