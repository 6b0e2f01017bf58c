"""The fake provider against the official SDKs and raw sockets, without the gateway: proves the fakes
speak the real wire protocols, so gateway failures elsewhere are the gateway's."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time

import anthropic
import openai
import pytest
import requests

from conftest import REPO, answer_for, an_body, assert_anthropic_sequence, long_uniq, oa_body, sse_request, uniq
from fake_provider import DEFAULT_API_KEY, FakeProvider

KEY = DEFAULT_API_KEY
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Weather of a city",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.fixture
def oai(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url + "/v1", api_key=KEY, max_retries=0, timeout=10)


@pytest.fixture
def ant(fake: FakeProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.url, api_key=KEY, max_retries=0, timeout=10)


# -- OpenAI ---------------------------------------------------------------------------------

def test_openai_sdk_non_stream(fake, oai):
    prompt = uniq("hello")
    out = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    assert out.choices[0].message.content == answer_for(prompt)
    assert out.choices[0].finish_reason == "stop"
    assert out.model == "gpt-4o-mini"
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    [call] = fake.calls
    assert (call["method"], call["path"]) == ("POST", "/v1/chat/completions")
    assert call["headers"]["authorization"] == f"Bearer {KEY}"
    assert call["body"]["messages"][0]["content"] == prompt


def test_openai_content_parts_use_last_user_message(oai):
    out = oai.chat.completions.create(model="m1", messages=[
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "part one, "}, {"type": "text", "text": "two"}]},
    ])
    assert out.choices[0].message.content == "Echo: part one, two"
    assert out.model == "m1"


def test_openai_sdk_stream_arrives_incrementally(fake, oai):
    prompt = long_uniq("stream me please")
    times, pieces, usage, finish = [], [], None, None
    t0 = time.monotonic()
    for chunk in oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": prompt}],
                                             stream=True, stream_options={"include_usage": True}):
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
                times.append(time.monotonic() - t0)
            finish = choice.finish_reason or finish
        assert chunk.model == "gpt-4o"
    assert "".join(pieces) == answer_for(prompt)
    assert len(pieces) >= 4
    assert times[-1] - times[0] >= 0.06
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_openai_stream_wire_format(fake):
    result = sse_request(fake.url, "/v1/chat/completions", oa_body("wire", stream=True, model="x"),
                         {"Authorization": f"Bearer {KEY}"})
    assert result.status == 200 and result.error is None
    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.headers["transfer-encoding"] == "chunked"
    assert result.done()
    assert result.openai_chunks()[0]["choices"][0]["delta"]["role"] == "assistant"
    assert result.finish_reasons() == ["stop"]
    assert result.openai_text() == "Echo: wire"
    assert all(c["object"] == "chat.completion.chunk" for c in result.openai_chunks())


def test_openai_sdk_tool_call(oai):
    out = oai.chat.completions.create(model="gpt-4o-mini", tools=TOOLS,
                                      messages=[{"role": "user", "content": "weather? [[tool]]"}])
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_openai_sdk_tool_call_stream(oai):
    name, args, ids, finish = "", "", set(), None
    for chunk in oai.chat.completions.create(model="gpt-4o-mini", tools=TOOLS, stream=True,
                                             messages=[{"role": "user", "content": "weather? [[tool]]"}]):
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                assert tc.index == 0
                ids.add(tc.id) if tc.id else None
                name += (tc.function.name or "") if tc.function else ""
                args += (tc.function.arguments or "") if tc.function else ""
            finish = choice.finish_reason or finish
    assert (name, json.loads(args), len(ids), finish) == ("get_weather", {"city": "Paris"}, 1, "tool_calls")


def test_openai_sdk_wrong_key(fake):
    client = openai.OpenAI(base_url=fake.url + "/v1", api_key="sk-test-wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 401
    assert err.value.body["code"] == "invalid_api_key"
    assert "sk-te*****" in err.value.body["message"] and "sk-test-wrong" not in err.value.body["message"]


def test_openai_missing_key_and_missing_model(fake):
    r = requests.post(fake.url + "/v1/chat/completions", json=oa_body("x", model="m"))
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    r = requests.post(fake.url + "/v1/chat/completions", json=oa_body("x"), headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"


def test_openai_sdk_upstream_failure_mentions_key(oai):
    with pytest.raises(openai.InternalServerError) as err:
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "boom [[fail:503]]"}])
    assert err.value.status_code == 503
    assert KEY in err.value.body["message"]


def test_openai_sdk_models(oai):
    ids = [m.id for m in oai.models.list()]
    assert "gpt-4o-mini" in ids


def test_bad_json_and_bad_messages(fake):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    r = requests.post(fake.url + "/v1/chat/completions", data="{not json", headers=headers)
    assert r.status_code == 400 and "error" in r.json()
    r = requests.post(fake.url + "/v1/chat/completions", json={"model": "m", "messages": []}, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = requests.post(fake.url + "/nope", json={}, headers=headers)
    assert r.status_code == 404
    r = requests.get(fake.url + "/v1/chat/completions", headers=headers)
    assert r.status_code == 405


# -- Azure ----------------------------------------------------------------------------------

def test_azure_sdk(fake):
    client = openai.AzureOpenAI(azure_endpoint=fake.url, api_key=KEY, api_version="2024-10-21", max_retries=0)
    prompt = uniq("azure")
    out = client.chat.completions.create(model="dep1", messages=[{"role": "user", "content": prompt}])
    assert out.choices[0].message.content == answer_for(prompt)
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="dep1", messages=[{"role": "user", "content": prompt}], stream=True) if c.choices)
    assert streamed == answer_for(prompt)
    for call in fake.calls:
        assert call["path"] == "/openai/deployments/dep1/chat/completions"
        assert call["query"]["api-version"] == "2024-10-21"
        assert call["headers"]["api-key"] == KEY


def test_azure_requires_api_version_and_key(fake):
    url = fake.url + "/openai/deployments/dep1/chat/completions"
    r = requests.post(url, json=oa_body("x"), headers={"api-key": KEY})
    assert r.status_code == 400 and "api-version" in r.json()["error"]["message"]
    r = requests.post(url + "?api-version=2024-10-21", json=oa_body("x"), headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 401
    r = requests.post(url + "?api-version=2024-10-21", json=oa_body("x"), headers={"api-key": KEY})
    assert r.status_code == 200 and r.json()["model"] == "dep1"


# -- Anthropic ------------------------------------------------------------------------------

def test_anthropic_sdk_non_stream(fake, ant):
    prompt = uniq("bonjour")
    msg = ant.messages.create(model="claude-haiku-4-5", max_tokens=100, system="be nice",
                              messages=[{"role": "user", "content": prompt}])
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].type == "text" and msg.content[0].text == answer_for(prompt)
    assert msg.stop_reason == "end_turn"
    assert msg.model == "claude-haiku-4-5"
    assert msg.usage.output_tokens > 0
    [call] = fake.calls
    assert call["path"] == "/v1/messages"
    # anthropic SDK 2.x sends the API key as a Bearer token rather than x-api-key.
    assert call["headers"].get("x-api-key") == KEY or call["headers"].get("authorization") == f"Bearer {KEY}"
    assert call["headers"]["anthropic-version"]


def test_anthropic_text_blocks(ant):
    msg = ant.messages.create(model="c", max_tokens=10, messages=[
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    assert msg.content[0].text == "Echo: ab"


def test_anthropic_sdk_stream(ant):
    prompt = long_uniq("stream anthropic")
    times = []
    t0 = time.monotonic()
    with ant.messages.stream(model="claude-x", max_tokens=100, messages=[{"role": "user", "content": prompt}]) as s:
        pieces = []
        for text in s.text_stream:
            pieces.append(text)
            times.append(time.monotonic() - t0)
        final = s.get_final_message()
    assert "".join(pieces) == answer_for(prompt)
    assert len(pieces) >= 4 and times[-1] - times[0] >= 0.06
    assert final.content[0].text == answer_for(prompt)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_anthropic_stream_wire_format(fake):
    result = sse_request(fake.url, "/v1/messages", an_body("wire", stream=True, model="c"),
                         {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert result.status == 200 and result.error is None
    assert result.headers["content-type"].startswith("text/event-stream")
    events = result.anthropic_events()
    assert_anthropic_sequence(events)
    assert [n for n, _ in events][:3] == ["message_start", "content_block_start", "ping"]
    assert result.anthropic_text() == "Echo: wire"
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_anthropic_sdk_tool(ant):
    msg = ant.messages.create(model="c", max_tokens=100, tools=ANTHROPIC_TOOLS,
                              messages=[{"role": "user", "content": "weather? [[tool]]"}])
    assert msg.stop_reason == "tool_use"
    [block] = msg.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Paris"}
    with ant.messages.stream(model="c", max_tokens=100, tools=ANTHROPIC_TOOLS,
                             messages=[{"role": "user", "content": "weather? [[tool]]"}]) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].name == "get_weather" and final.content[0].input == {"city": "Paris"}


def test_anthropic_sdk_errors(fake, ant):
    bad = anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as err:
        bad.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert err.value.body == {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    with pytest.raises(anthropic.InternalServerError) as err:
        ant.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x [[fail:500]]"}])
    assert err.value.status_code == 500 and KEY in err.value.body["error"]["message"]


def test_anthropic_requires_version_and_max_tokens(fake):
    url = fake.url + "/v1/messages"
    r = requests.post(url, json=an_body("x", model="c"), headers={"x-api-key": KEY})
    assert r.status_code == 400 and r.json()["type"] == "error"
    body = {"model": "c", "messages": [{"role": "user", "content": "x"}]}
    r = requests.post(url, json=body, headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]


# -- Transport behaviour ---------------------------------------------------------------------

def test_keep_alive_reuses_connection(fake):
    host, port = fake.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    conn.request("POST", "/v1/chat/completions", json.dumps(oa_body("one", model="m")), headers)
    r1 = conn.getresponse()
    assert r1.getheader("Content-Type") == "application/json" and json.loads(r1.read())
    sock = conn.sock
    conn.request("POST", "/v1/chat/completions", json.dumps(oa_body("two", stream=True, model="m")), headers)
    r2 = conn.getresponse()
    assert b"data: [DONE]" in r2.read()
    conn.request("POST", "/v1/chat/completions", json.dumps(oa_body("three", model="m")), headers)
    assert json.loads(conn.getresponse().read())["choices"][0]["message"]["content"] == "Echo: three"
    assert conn.sock is sock
    conn.close()


@pytest.mark.parametrize("path,headers,body", [
    ("/v1/chat/completions", {"Authorization": f"Bearer {KEY}"}, oa_body("a [[cut]] b", stream=True, model="m")),
    ("/v1/messages", {"x-api-key": KEY, "anthropic-version": "2023-06-01"}, an_body("a [[cut]] b", stream=True, model="c")),
])
def test_cut_stream_is_truncated(fake, path, headers, body):
    result = sse_request(fake.url, path, body, headers)
    assert result.status == 200
    assert result.error is not None
    assert len(result.content_events()) == 2
    assert b"[DONE]" not in result.raw and b"message_stop" not in result.raw


def test_cut_non_stream_is_truncated(fake):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.post(fake.url + "/v1/chat/completions", json=oa_body("x [[cut]]", model="m"),
                      headers={"Authorization": f"Bearer {KEY}"})


def test_garbage_and_slow(fake):
    headers = {"Authorization": f"Bearer {KEY}"}
    r = requests.post(fake.url + "/v1/chat/completions", json=oa_body("[[garbage]]", model="m"), headers=headers)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    t0 = time.monotonic()
    r = requests.post(fake.url + "/v1/chat/completions", json=oa_body("[[slow:0.3]]", model="m"), headers=headers)
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.3


def test_call_log_over_http(fake):
    requests.post(fake.url + "/v1/chat/completions?x=1", json=oa_body("logged", model="m"),
                  headers={"Authorization": f"Bearer {KEY}", "X-Extra": "yes"})
    calls = requests.get(fake.url + "/_fake/calls").json()
    assert len(calls) == 1
    assert calls[0]["query"] == {"x": "1"} and calls[0]["headers"]["x-extra"] == "yes"
    assert calls[0]["body"]["messages"][0]["content"] == "logged"
    assert fake.count("logged") == 1
    assert requests.post(fake.url + "/_fake/reset").status_code == 200
    assert requests.get(fake.url + "/_fake/calls").json() == [] and fake.calls == []


def test_script_mode():
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "fakes" / "fake_provider.py"), "--port", "0",
                             "--latency-ms", "20", "--chunk-delay-ms", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "script"}])
        assert out.choices[0].message.content == "Echo: script"
        ant = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
        assert ant.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "s"}]).content[0].text == "Echo: s"
        assert len(requests.get(url + "/_fake/calls").json()) == 2
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
