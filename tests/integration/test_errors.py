"""Bad input, upstream failures and hostile clients: the right status in the route's error format,
and the server keeps serving."""
from __future__ import annotations

import json
import socket
import time

import pytest

from conftest import (PROVIDER_KEY, an_body, answer_for, assert_anthropic_error, assert_anthropic_stream,
                      assert_completion, assert_layer, assert_openai_error, assert_openai_stream, native_body, oa_body, raw_exchange,
                      long_uniq, uniq)

OPENAI, ANTHROPIC, NATIVE = "/v1/chat/completions", "/v1/messages", "/api/chat"
MSG = [{"role": "user", "content": "hi"}]

BAD_INPUTS = [
    # (id, path, raw body)
    ("openai-malformed", OPENAI, '{"messages": ['),
    ("openai-not-object", OPENAI, '[{"role": "user", "content": "hi"}]'),
    ("openai-string", OPENAI, '"hello"'),
    ("openai-empty-body", OPENAI, ""),
    ("openai-missing-messages", OPENAI, '{"model": "gpt-4o"}'),
    ("openai-empty-messages", OPENAI, '{"messages": []}'),
    ("openai-messages-not-array", OPENAI, '{"messages": {"role": "user", "content": "hi"}}'),
    ("openai-role-not-string", OPENAI, '{"messages": [{"role": 7, "content": "hi"}]}'),
    ("openai-message-not-object", OPENAI, '{"messages": ["hi"]}'),
    ("openai-model-not-string", OPENAI, json.dumps({"messages": MSG, "model": 5})),
    ("openai-stream-not-bool", OPENAI, json.dumps({"messages": MSG, "stream": "yes"})),
    ("openai-temperature-not-number", OPENAI, json.dumps({"messages": MSG, "temperature": "hot"})),
    ("openai-invalid-utf8", OPENAI, b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}'),
    ("anthropic-malformed", ANTHROPIC, "{nope"),
    ("anthropic-not-object", ANTHROPIC, "[1, 2]"),
    ("anthropic-missing-max-tokens", ANTHROPIC, json.dumps({"messages": MSG})),
    ("anthropic-max-tokens-not-int", ANTHROPIC, json.dumps({"messages": MSG, "max_tokens": "10"})),
    ("anthropic-missing-messages", ANTHROPIC, json.dumps({"max_tokens": 10})),
    ("anthropic-empty-messages", ANTHROPIC, json.dumps({"max_tokens": 10, "messages": []})),
    ("anthropic-messages-not-array", ANTHROPIC, json.dumps({"max_tokens": 10, "messages": "hi"})),
    ("anthropic-role-not-string", ANTHROPIC, json.dumps({"max_tokens": 10, "messages": [{"role": None, "content": "x"}]})),
    ("native-malformed", NATIVE, '{"prompt": '),
    ("native-not-object", NATIVE, "42"),
    ("native-missing-prompt", NATIVE, '{"model": "gpt-4o"}'),
    ("native-prompt-not-string", NATIVE, '{"prompt": ["hi"]}'),
    ("native-prompt-null", NATIVE, '{"prompt": null}'),
]

# ~200 KB of JSON nesting 70 000 levels deep inside fields passed upstream: serialising it
# recursively overflowed the stack and killed the process.
DEEP = "[" * 70000 + "]" * 70000
DEEP_INPUTS = [
    ("openai-response-format", OPENAI, '{"messages": [{"role": "user", "content": "hi"}], "response_format": %s}'),
    ("openai-unknown-field", OPENAI, '{"messages": [{"role": "user", "content": "hi"}], "extra": %s}'),
    ("openai-tool-schema", OPENAI, '{"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function",'
     ' "function": {"name": "f", "parameters": {"type": "object", "properties": %s}}}]}'),
    ("anthropic-metadata", ANTHROPIC, '{"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],'
     ' "metadata": %s}'),
    ("native-extra", NATIVE, '{"prompt": "hi", "extra": %s}'),
]


def assert_route_error(resp, path: str, status: int) -> dict:
    if path == ANTHROPIC:
        return assert_anthropic_error(resp, status)
    return assert_openai_error(resp, status)


@pytest.mark.parametrize("path,raw", [(p, r) for _, p, r in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS])
def test_bad_input_is_400(gw_openai, path, raw):
    r = gw_openai.request("POST", path, data=raw, headers={"Content-Type": "application/json"})
    assert_route_error(r, path, 400)
    assert not gw_openai.fake.calls, "a bad request reached the provider"


@pytest.mark.parametrize("path,template", [(p, t) for _, p, t in DEEP_INPUTS], ids=[i for i, _, _ in DEEP_INPUTS])
def test_deeply_nested_json_is_400_and_the_gateway_lives(any_gw, path, template):
    r = any_gw.request("POST", path, data=template % DEEP, headers={"Content-Type": "application/json"})
    error = assert_route_error(r, path, 400)
    assert "deeper than 128 levels" in json.dumps(error), error
    assert not any_gw.fake.calls, "a bad request reached the provider"
    assert any_gw.get("/healthz").status_code == 200


def test_nesting_up_to_the_limit_is_served(gw_openai):
    prompt = uniq("nested")
    body = oa_body(prompt)
    body["metadata"] = json.loads("[" * 120 + "]" * 120)
    assert_completion(gw_openai.post(OPENAI, body), answer_for(prompt))


@pytest.mark.parametrize("field", ["stream", "temperature", "max_tokens", "tools", "stream_options", "model",
                                   "response_format", "user", "n"])
def test_null_optional_field_means_absent(any_gw, field):
    prompt = uniq(f"null {field}")
    body = oa_body(prompt)
    body[field] = None
    assert_completion(any_gw.post(OPENAI, body), answer_for(prompt))


@pytest.mark.parametrize("field", ["stream", "temperature", "system", "stop_sequences", "metadata", "tools"])
def test_null_optional_field_means_absent_on_the_anthropic_route(any_gw, field):
    prompt = uniq(f"null {field}")
    body = an_body(prompt)
    body[field] = None
    r = any_gw.post(ANTHROPIC, body)
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["text"] == answer_for(prompt)


def test_server_serves_after_bad_inputs(gw_openai):
    for _, path, raw in BAD_INPUTS:
        assert gw_openai.request("POST", path, data=raw, headers={"Content-Type": "application/json"}).status_code == 400
    assert gw_openai.get("/healthz").status_code == 200
    prompt = uniq("after bad input")
    assert_completion(gw_openai.post(OPENAI, oa_body(prompt)), answer_for(prompt))


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/nope", 404), ("POST", "/v1/nope", 404), ("GET", "/v1/chat/completion", 404),
    ("GET", OPENAI, 405), ("PUT", OPENAI, 405), ("DELETE", ANTHROPIC, 405), ("GET", NATIVE, 405),
    ("POST", "/health", 405), ("POST", "/v1/models", 405),
])
def test_unknown_route_and_wrong_method(gw_openai, method, path, status):
    r = gw_openai.request(method, path, data="{}", headers={"Content-Type": "application/json"})
    assert_route_error(r, path, status)


# -- Body size limit ----------------------------------------------------------------------------

@pytest.fixture
def small_body_gw(shared_gateway):
    return shared_gateway("openai", ISARTOR__MAX_BODY_BYTES="1024")


@pytest.mark.parametrize("path,make", [(OPENAI, oa_body), (ANTHROPIC, an_body), (NATIVE, native_body)],
                         ids=["openai", "anthropic", "native"])
def test_body_too_large_is_413(small_body_gw, path, make):
    r = small_body_gw.post(path, make("x" * 2048))
    assert_route_error(r, path, 413)
    assert not small_body_gw.fake.calls
    assert small_body_gw.get("/healthz").status_code == 200
    prompt = uniq("small enough")
    assert_completion(small_body_gw.post(OPENAI, oa_body(prompt)), answer_for(prompt))


def test_body_too_large_chunked_is_413(small_body_gw):
    """The limit also holds when the client sends no Content-Length (chunked upload)."""
    def chunks():
        yield b'{"max_tokens": 9, "messages": [{"role": "user", "content": "'
        for _ in range(8):
            yield b"y" * 512
        yield b'"}]}'
    for path in (OPENAI, ANTHROPIC):
        r = small_body_gw.http.post(small_body_gw.url + path, data=chunks(),
                                    headers={"Content-Type": "application/json", **small_body_gw.auth()})
        assert_route_error(r, path, 413)
    assert small_body_gw.get("/healthz").status_code == 200


# -- Upstream failures --------------------------------------------------------------------------

@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC, NATIVE])
def test_upstream_error_is_502_and_redacted(any_gw, path, status):
    prompt = uniq(f"[[fail:{status}]]")
    body = {OPENAI: oa_body, ANTHROPIC: an_body, NATIVE: native_body}[path](prompt)
    r = any_gw.post(path, body)
    err = assert_route_error(r, path, 502)
    assert "Simulated upstream failure" in err["message"], err
    assert "sk-test" not in r.text and PROVIDER_KEY not in r.text, r.text
    assert any_gw.fake.count(prompt) == 1  # no blind retries of a failed call


def test_upstream_error_on_stream_request_is_502(any_gw):
    prompt = uniq("[[fail:500]] streaming")
    result = any_gw.stream(OPENAI, oa_body(prompt, stream=True))
    assert_openai_error(result, 502)
    assert "sk-test" not in result.raw.decode(errors="replace")


def test_upstream_garbage_is_502(any_gw):
    for path, make in ((OPENAI, oa_body), (ANTHROPIC, an_body)):
        prompt = uniq("[[garbage]]")
        r = any_gw.post(path, make(prompt))
        assert_route_error(r, path, 502)
    assert any_gw.get("/healthz").status_code == 200


def test_upstream_truncated_body_is_502(gw_openai):
    prompt = uniq("[[cut]] non stream")
    assert_openai_error(gw_openai.post(OPENAI, oa_body(prompt)), 502)


def test_upstream_timeout_is_504(gateway_factory):
    gw = gateway_factory("anthropic", ISARTOR__L3_TIMEOUT_SECS="1")
    for path, make in ((OPENAI, oa_body), (ANTHROPIC, an_body)):
        t0 = time.monotonic()
        r = gw.post(path, make(uniq("[[slow:2.5]]")))
        elapsed = time.monotonic() - t0
        assert_route_error(r, path, 504)
        assert 0.9 <= elapsed < 2.3, elapsed
    prompt = uniq("after timeout")
    assert_completion(gw.post(OPENAI, oa_body(prompt)), answer_for(prompt))


def test_missing_provider_key_is_503(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__EXTERNAL_LLM_API_KEY="")
    for path, make in ((OPENAI, oa_body), (ANTHROPIC, an_body), (NATIVE, native_body)):
        prompt = uniq("no provider key")
        r = gw.post(path, make(prompt))
        err = assert_route_error(r, path, 503)
        assert "ISARTOR__EXTERNAL_LLM_API_KEY" in err["message"], err
        assert gw.fake.count(prompt) == 0


def test_wrong_provider_key_is_not_leaked(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__EXTERNAL_LLM_API_KEY="sk-test-wrong-key-0000000000")
    r = gw.post(OPENAI, oa_body(uniq("wrong provider key")))
    assert r.status_code >= 400
    assert "sk-test-wrong" not in r.text, r.text


# -- Hostile clients ------------------------------------------------------------------------------

def test_truncated_request_does_not_kill_server(gw_openai):
    head = (f"POST {OPENAI} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {gw_openai.key}\r\nContent-Length: 500\r\n\r\n").encode()
    raw_exchange(gw_openai, head + b'{"messages": [{"role": "us', close_write=True, timeout=5.0)
    assert gw_openai.get("/healthz").status_code == 200
    prompt = uniq("after truncated")
    assert_completion(gw_openai.post(OPENAI, oa_body(prompt)), answer_for(prompt))


@pytest.mark.parametrize("payload", [
    b"GARBAGE\r\n\r\n",
    b"\x00\x01\x02\xff\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /healthz HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100000 + b"\r\n\r\n",
    b"GET /v1/models/" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["garbage", "binary", "bad-version", "negative-length", "huge-length", "bad-chunk", "huge-header", "huge-url"])
def test_garbage_request_does_not_kill_server(gw_openai, payload):
    reply = raw_exchange(gw_openai, payload, close_write=True, timeout=5.0)
    if reply:
        status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.") else 0
        assert 400 <= status < 500 or status == 505, reply[:200]
    assert gw_openai.get("/healthz").status_code == 200


@pytest.mark.parametrize("path,make,check", [(OPENAI, oa_body, assert_openai_stream),
                                              (ANTHROPIC, an_body, assert_anthropic_stream)], ids=["openai", "anthropic"])
def test_terminal_event_ends_the_stream_though_the_upstream_lingers(any_gw, path, make, check):
    """An upstream that keeps its response open after [DONE] / message_stop: the client's stream ends
    at once (it used to wait for the stream silence timeout), and the complete answer is cached."""
    prompt = uniq("linger") + " [[linger:6]]"
    started = time.monotonic()
    result = any_gw.stream(path, make(prompt, stream=True), timeout=20)
    assert time.monotonic() - started < 3, "the terminal event was held back"
    check(result, answer_for(prompt))
    again = any_gw.stream(path, make(prompt, stream=True), timeout=20)
    check(again, answer_for(prompt))
    assert_layer(again, "l1a")


@pytest.mark.parametrize("path,make", [(OPENAI, oa_body), (ANTHROPIC, an_body)], ids=["openai", "anthropic"])
def test_in_band_stream_error_echoing_the_key_reaches_no_sink(any_gw, path, make):
    """The upstream's in-band error quotes its key: redacted where it enters, so neither the client's
    error event nor any log line (at debug level) carries it."""
    result = any_gw.stream(path, make(long_uniq("echo key") + " [[stream-error]]", stream=True))
    received = result.raw.decode(errors="replace")
    assert "Incorrect API key provided" in received, received
    assert PROVIDER_KEY not in received
    assert "Incorrect API key provided" in any_gw.log(), "the failure was not logged"
    assert PROVIDER_KEY not in any_gw.log()
    assert any_gw.get("/healthz").status_code == 200


def test_client_disconnect_mid_stream_does_not_kill_server(gw_openai):
    prompt = uniq("disconnect") + " " + "z" * 200
    body = json.dumps(oa_body(prompt, stream=True)).encode()
    head = (f"POST {OPENAI} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {gw_openai.key}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", gw_openai.port), timeout=5) as s:
        s.sendall(head + body)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    time.sleep(0.3)
    assert gw_openai.get("/healthz").status_code == 200
    prompt = uniq("after disconnect")
    assert_completion(gw_openai.post(OPENAI, oa_body(prompt)), answer_for(prompt))
