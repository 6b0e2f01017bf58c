"""The chat routes against every provider: formats in and out, translation, headers sent upstream."""
from __future__ import annotations

import http.client
import json

import pytest

from conftest import (AZURE_API_VERSION, AZURE_DEPLOYMENT, GATEWAY_KEY, PROVIDER_KEY, an_body, answer_for,
                      assert_anthropic_stream, assert_completion, assert_incremental, assert_layer, assert_message,
                      assert_openai_stream, long_uniq, native_body, oa_body, raw_exchange, raw_post, uniq)
from fake_provider import content_text

UPSTREAM_PATHS = {
    "openai": "/v1/chat/completions",
    "xai": "/v1/chat/completions",
    "azure": f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions",
    "anthropic": "/v1/messages",
}


def the_call(gw, prompt: str) -> dict:
    calls = gw.fake.calls_for(prompt)
    assert len(calls) == 1, f"expected one upstream call for {prompt!r}, got {len(calls)}"
    return calls[0]


def assert_upstream_request(gw, call: dict) -> None:
    """The request the fake saw is the provider's dialect with the provider key, never the gateway key."""
    assert call["method"] == "POST"
    assert call["path"] == UPSTREAM_PATHS[gw.provider], call["path"]
    headers = call["headers"]
    if gw.provider in ("openai", "xai"):
        assert headers.get("authorization") == f"Bearer {PROVIDER_KEY}", headers
    elif gw.provider == "azure":
        assert headers.get("api-key") == PROVIDER_KEY, headers
        assert call["query"].get("api-version") == AZURE_API_VERSION, call["query"]
    else:
        assert headers.get("x-api-key") == PROVIDER_KEY, headers
        assert headers.get("anthropic-version"), headers
        assert isinstance(call["body"].get("max_tokens"), int), call["body"]
    assert call["headers"].get("content-type", "").startswith("application/json"), headers
    for name, value in headers.items():
        assert GATEWAY_KEY not in value, f"gateway key leaked upstream in {name}"


def upstream_model(call: dict) -> str | None:
    return call["body"].get("model")


# -- /api/chat ------------------------------------------------------------------------------

def test_native_chat(any_gw):
    prompt = uniq("native")
    r = any_gw.post("/api/chat", native_body(prompt))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["layer"] == "l3"
    assert body["message"] == answer_for(prompt)
    assert isinstance(body["model"], str) and body["model"]
    assert_layer(r, "l3")
    call = the_call(any_gw, prompt)
    assert_upstream_request(any_gw, call)
    assert call["body"].get("stream") in (None, False)
    if any_gw.provider != "azure":  # Azure picks the model by deployment; the body model is optional
        assert upstream_model(call) == any_gw.model
        assert body["model"] == any_gw.model


def test_native_chat_model_override(gw_openai):
    prompt = uniq("native model")
    r = gw_openai.post("/api/chat", native_body(prompt, model="gpt-4.1-nano"))
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "gpt-4.1-nano"
    assert upstream_model(the_call(gw_openai, prompt)) == "gpt-4.1-nano"


# -- /v1/chat/completions -----------------------------------------------------------------

def test_openai_route_non_stream(any_gw):
    prompt = uniq("openai route")
    r = any_gw.post("/v1/chat/completions", oa_body(prompt))
    body = assert_completion(r, answer_for(prompt))
    assert_layer(r, "l3")
    call = the_call(any_gw, prompt)
    assert_upstream_request(any_gw, call)
    if any_gw.provider != "azure":
        assert upstream_model(call) == any_gw.model
        assert body["model"] == any_gw.model


def test_openai_route_stream(any_gw):
    prompt = long_uniq("openai stream")
    result = any_gw.stream("/v1/chat/completions", oa_body(prompt, stream=True))
    assert_openai_stream(result, answer_for(prompt))
    assert_layer(result, "l3")
    assert_incremental(result)
    call = the_call(any_gw, prompt)
    assert_upstream_request(any_gw, call)
    assert call["body"].get("stream") is True


def test_openai_route_stream_usage(gw_anthropic):
    prompt = uniq("usage chunk")
    result = gw_anthropic.stream("/v1/chat/completions",
                                 oa_body(prompt, stream=True, stream_options={"include_usage": True}))
    assert_openai_stream(result, answer_for(prompt))
    usage = [c["usage"] for c in result.openai_chunks() if c.get("usage")]
    assert usage and usage[-1]["completion_tokens"] > 0, result.raw[-1500:]


@pytest.mark.parametrize("odd", ["yes", 1, None, [True]])
def test_odd_stream_options_do_not_break_the_request(gw_openai, odd):
    # Not a bool: no usage chunk is asked for, and nothing throws.
    prompt = uniq("odd options")
    result = gw_openai.stream("/v1/chat/completions",
                              oa_body(prompt, stream=True, stream_options={"include_usage": odd}))
    assert_openai_stream(result, answer_for(prompt))
    assert not [c for c in result.openai_chunks() if not c.get("choices")], result.raw[-1500:]


def test_openai_route_model_and_params_forwarded(gw_openai):
    prompt = uniq("params")
    r = gw_openai.post("/v1/chat/completions", oa_body(prompt, model="gpt-4o", temperature=0.2, max_tokens=33))
    assert assert_completion(r, answer_for(prompt))["model"] == "gpt-4o"
    body = the_call(gw_openai, prompt)["body"]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-4o", 0.2, 33)


def test_openai_route_system_prompt_to_anthropic(gw_anthropic):
    """OpenAI-format system messages become Anthropic's top-level "system" upstream."""
    prompt = uniq("with system")
    body = {"messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": prompt}], "temperature": 0.5, "max_tokens": 40}
    r = gw_anthropic.post("/v1/chat/completions", body)
    assert_completion(r, answer_for(prompt))
    sent = the_call(gw_anthropic, prompt)["body"]
    system = sent.get("system")
    system_text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system or [])
    assert system_text == "You are terse.", sent
    assert all(m["role"] in ("user", "assistant") for m in sent["messages"]), sent
    assert (sent["max_tokens"], sent["temperature"]) == (40, 0.5), sent


def test_openai_route_multi_turn_and_parts(any_gw):
    prompt = uniq("parts")
    body = {"messages": [{"role": "user", "content": "first question"},
                         {"role": "assistant", "content": "first answer"},
                         {"role": "user", "content": [{"type": "text", "text": prompt}]}]}
    r = any_gw.post("/v1/chat/completions", body)
    assert_completion(r, answer_for(prompt))
    sent = the_call(any_gw, prompt)["body"]
    assert len(sent["messages"]) == 3, sent


# -- /v1/messages --------------------------------------------------------------------------

def test_messages_route_non_stream(any_gw):
    prompt = uniq("messages route")
    r = any_gw.post("/v1/messages", an_body(prompt, system="Be kind."))
    assert_message(r, answer_for(prompt))
    assert_layer(r, "l3")
    call = the_call(any_gw, prompt)
    assert_upstream_request(any_gw, call)
    sent = call["body"]
    if any_gw.provider == "anthropic":
        assert sent.get("system") in ("Be kind.", [{"type": "text", "text": "Be kind."}]), sent
    else:
        assert sent["messages"][0]["role"] == "system", sent
        assert content_text(sent["messages"][0]["content"]) == "Be kind.", sent


def test_messages_route_stream(any_gw):
    prompt = long_uniq("messages stream")
    result = any_gw.stream("/v1/messages", an_body(prompt, stream=True))
    assert_anthropic_stream(result, answer_for(prompt))
    assert_layer(result, "l3")
    assert_incremental(result)
    assert_upstream_request(any_gw, the_call(any_gw, prompt))


def test_messages_route_model_forwarded(gw_anthropic):
    prompt = uniq("claude model")
    r = gw_anthropic.post("/v1/messages", an_body(prompt, model="claude-opus-4-1", max_tokens=77))
    assert assert_message(r, answer_for(prompt))["model"] == "claude-opus-4-1"
    sent = the_call(gw_anthropic, prompt)["body"]
    assert (sent["model"], sent["max_tokens"]) == ("claude-opus-4-1", 77)


# -- /v1/models, keep-alive -----------------------------------------------------------------

def test_models(any_gw):
    r = any_gw.get("/v1/models")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list"
    assert all(m["object"] == "model" and isinstance(m["id"], str) for m in body["data"]), body
    assert any_gw.model in [m["id"] for m in body["data"]]


def test_keep_alive_serves_many_requests_on_one_connection(gw_openai):
    conn = http.client.HTTPConnection("127.0.0.1", gw_openai.port, timeout=10)
    headers = {"Content-Type": "application/json", **gw_openai.auth()}
    sock = None
    for i in range(5):
        prompt = uniq(f"keepalive {i}")
        conn.request("POST", "/v1/chat/completions", json.dumps(oa_body(prompt, stream=i % 2 == 1)), headers)
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 200, data
        if i % 2:
            assert data.rstrip().endswith(b"data: [DONE]"), data
        else:
            assert json.loads(data)["choices"][0]["message"]["content"] == answer_for(prompt)
        sock = sock or conn.sock
        assert conn.sock is sock, "the gateway closed a keep-alive connection"
    conn.close()


def test_http10_answer_has_a_length_and_the_connection_closes(gw_openai):
    prompt = uniq("http10 whole")
    data = raw_exchange(gw_openai, raw_post(gw_openai, oa_body(prompt), version="1.0"))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n"), head
    assert f"content-length: {len(body)}".encode() in head.lower(), head
    assert json.loads(body)["choices"][0]["message"]["content"] == answer_for(prompt)


def test_http10_stream_is_not_chunked_and_ends_with_the_connection(gw_openai):
    """An HTTP/1.0 client cannot read chunked encoding: the events come raw, the close ends them."""
    prompt = uniq("http10 stream")
    data = raw_exchange(gw_openai, raw_post(gw_openai, oa_body(prompt, stream=True), version="1.0"))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n"), head
    assert b"transfer-encoding" not in head.lower(), head
    assert body.startswith(b"data: {"), body[:80]
    assert body.rstrip().endswith(b"data: [DONE]"), body[-80:]


def test_pipelined_requests_are_answered_in_order(gw_openai):
    prompts = [uniq(f"pipelined {i}") for i in range(3)]
    requests_ = b"".join(raw_post(gw_openai, oa_body(p), extra="Connection: close\r\n" if i == 2 else "")
                         for i, p in enumerate(prompts))
    data = raw_exchange(gw_openai, requests_)
    answers = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1 ")[0])["choices"][0]["message"]["content"]
               for part in data.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    assert answers == [answer_for(p) for p in prompts], data[:500]
    assert data.count(b"Connection: close\r\n") == 1, "only the last answer closes the connection"


def test_head_gets_the_head_without_a_body_and_keeps_the_connection(gw_openai):
    conn = http.client.HTTPConnection("127.0.0.1", gw_openai.port, timeout=10)
    conn.request("HEAD", "/health")
    head = conn.getresponse()
    assert head.status == 200
    assert int(head.getheader("Content-Length")) > 0
    assert head.read() == b""
    # Had a body been sent, it would be read as the next response's head.
    conn.request("GET", "/health")
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["status"]
    conn.close()
