"""End to end with the official SDKs through the gateway (gateway key gw-secret), for an OpenAI and an
Anthropic provider behind it."""
from __future__ import annotations

import json

import anthropic
import openai
import pytest

from conftest import GATEWAY_KEY, answer_for, long_uniq, uniq

PROVIDERS = ["openai", "anthropic"]


def oai_client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=15)


def ant_client(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=15)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_sdk_non_stream_then_hit(shared_gateway, provider):
    gw = shared_gateway(provider)
    client = oai_client(gw)
    prompt = uniq("sdk openai")
    messages = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": prompt}]
    layers = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
        layers.append(raw.headers.get("x-isartor-layer"))
        out = raw.parse()
        assert out.choices[0].message.content == answer_for(prompt)
        assert out.choices[0].finish_reason == "stop"
        assert out.model == "gpt-4o-mini"
    assert layers == ["l3", "l1a"]
    assert gw.fake.count(prompt) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_sdk_stream_then_hit(shared_gateway, provider):
    gw = shared_gateway(provider)
    client = oai_client(gw)
    prompt = long_uniq("sdk openai stream")
    messages = [{"role": "user", "content": prompt}]
    layers = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, stream=True,
                                                               stream_options={"include_usage": True})
        layers.append(raw.headers.get("x-isartor-layer"))
        text, finish, chunks = "", None, 0
        for chunk in raw.parse():
            chunks += 1
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
        assert text == answer_for(prompt)
        assert finish == "stop" and chunks >= 3
    assert layers == ["l3", "l1a"]
    assert gw.fake.count(prompt) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_sdk_tool_call(shared_gateway, provider):
    client = oai_client(shared_gateway(provider))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    out = client.chat.completions.create(model="gpt-4o-mini", tools=tools,
                                         messages=[{"role": "user", "content": uniq("sdk [[tool]]")}])
    [call] = out.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert out.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_sdk_create_then_hit(shared_gateway, provider):
    gw = shared_gateway(provider)
    client = ant_client(gw)
    prompt = uniq("sdk anthropic")
    layers = []
    for _ in range(2):
        raw = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=200, system="Be kind.",
                                                       messages=[{"role": "user", "content": prompt}])
        layers.append(raw.headers.get("x-isartor-layer"))
        msg = raw.parse()
        assert msg.content[0].type == "text" and msg.content[0].text == answer_for(prompt)
        assert msg.stop_reason == "end_turn"
        assert msg.model == "claude-haiku-4-5"
    assert layers == ["l3", "l1a"]
    assert gw.fake.count(prompt) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_sdk_stream_then_hit(shared_gateway, provider):
    gw = shared_gateway(provider)
    client = ant_client(gw)
    prompt = long_uniq("sdk anthropic stream")
    for _ in range(2):
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=200,
                                    messages=[{"role": "user", "content": prompt}]) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == answer_for(prompt)
        assert final.content[0].text == answer_for(prompt)
        assert final.stop_reason == "end_turn"
    assert gw.fake.count(prompt) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_sdk_tool_use(shared_gateway, provider):
    client = ant_client(shared_gateway(provider))
    tools = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=200, tools=tools,
                                messages=[{"role": "user", "content": uniq("sdk stream [[tool]]")}]) as stream:
        final = stream.get_final_message()
    [block] = [b for b in final.content if b.type == "tool_use"]
    assert block.name == "get_weather" and block.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"


def test_sdk_errors(gw_openai):
    bad_oai = openai.OpenAI(base_url=gw_openai.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    bad_ant = anthropic.Anthropic(base_url=gw_openai.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad_ant.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.APIStatusError) as err:
        oai_client(gw_openai).chat.completions.create(
            model="m", messages=[{"role": "user", "content": uniq("[[fail:503]]")}])
    assert err.value.status_code == 502
    assert "sk-test" not in str(err.value.body)
    with pytest.raises(anthropic.APIStatusError) as err:
        ant_client(gw_openai).messages.create(model="c", max_tokens=5,
                                              messages=[{"role": "user", "content": uniq("[[fail:500]]")}])
    assert err.value.status_code == 502
    assert "sk-test" not in str(err.value.body)


def test_openai_sdk_models(gw_openai):
    assert gw_openai.model in [m.id for m in oai_client(gw_openai).models.list()]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_organization_and_project_reach_an_openai_provider_only(shared_gateway, provider):
    gw = shared_gateway(provider)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, organization="org-team", project="proj_a",
                           max_retries=0, timeout=15)
    prompts = [uniq("org chat"), long_uniq("org stream"), uniq("org responses")]
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompts[0]}])
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompts[1]}],
                                            stream=True):
        pass
    client.responses.create(model="gpt-4o-mini", input=prompts[2])
    for prompt in prompts:
        [call] = gw.fake.calls_for(prompt)
        headers = call["headers"]
        if provider == "openai":
            assert (headers.get("openai-organization"), headers.get("openai-project")) == ("org-team", "proj_a")
            assert GATEWAY_KEY not in headers.get("authorization", "")
        else:
            assert "openai-organization" not in headers and "openai-project" not in headers
    if provider == "openai":
        text = uniq("org embeddings")
        client.embeddings.create(model="text-embedding-3-small", input=text)
        [call] = [c for c in gw.fake.calls if c["path"].endswith("/embeddings") and text in json.dumps(c["body"])]
        assert call["headers"].get("openai-organization") == "org-team"


def test_anthropic_headers_do_not_reach_an_openai_provider(gw_openai):
    client = anthropic.Anthropic(base_url=gw_openai.url, api_key=GATEWAY_KEY, max_retries=0, timeout=15,
                                 default_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    prompt = uniq("beta across")
    client.messages.create(model="gpt-4o-mini", max_tokens=64, messages=[{"role": "user", "content": prompt}])
    [call] = gw_openai.fake.calls_for(prompt)
    assert not [h for h in call["headers"] if h.startswith("anthropic-")]
