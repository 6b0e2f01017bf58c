"""Tool calling through the gateway: request fields pass through untouched, tool calls come back."""
from __future__ import annotations

import json

import pytest

from conftest import an_body, assert_anthropic_sequence, assert_layer, oa_body, uniq

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Current weather of a city",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                     "required": ["city"]}}]


def test_tools_and_unknown_fields_reach_openai_untouched(gw_openai):
    prompt = uniq("passthrough")
    body = oa_body(prompt, tools=TOOLS, tool_choice="auto", x_custom=1, seed=42,
                   response_format={"type": "text"})
    r = gw_openai.post("/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    [call] = gw_openai.fake.calls_for(prompt)
    sent = call["body"]
    assert sent["tools"] == TOOLS
    assert sent["x_custom"] == 1
    assert (sent["tool_choice"], sent["seed"], sent["response_format"]) == ("auto", 42, {"type": "text"})
    assert sent["messages"] == body["messages"]


@pytest.mark.parametrize("provider", ["openai", "azure", "xai", "anthropic"])
def test_tool_call_non_stream(shared_gateway, provider):
    gw = shared_gateway(provider)
    prompt = uniq("weather [[tool]]")
    r = gw.post("/v1/chat/completions", oa_body(prompt, tools=TOOLS))
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and isinstance(call["id"], str) and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    if provider == "anthropic":  # the OpenAI tool definition was translated for Anthropic
        [call_seen] = gw.fake.calls_for(prompt)
        [tool] = call_seen["body"]["tools"]
        assert tool["name"] == "get_weather" and tool["input_schema"]["properties"] == {"city": {"type": "string"}}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_tool_call_stream(shared_gateway, provider):
    gw = shared_gateway(provider)
    prompt = uniq("weather stream [[tool]]")
    result = gw.stream("/v1/chat/completions", oa_body(prompt, stream=True, tools=TOOLS))
    assert result.status == 200 and result.error is None, result.raw[:2000]
    assert result.done()
    name, args, ids = "", "", set()
    for chunk in result.openai_chunks():
        for choice in chunk["choices"]:
            for tc in (choice.get("delta") or {}).get("tool_calls") or []:
                assert tc["index"] == 0, tc
                if tc.get("id"):
                    ids.add(tc["id"])
                name += (tc.get("function") or {}).get("name") or ""
                args += (tc.get("function") or {}).get("arguments") or ""
    assert name == "get_weather" and json.loads(args) == {"city": "Paris"} and len(ids) == 1, result.raw[:3000]
    assert result.finish_reasons() == ["tool_calls"]


def test_tool_call_is_cached_and_replayed(gw_openai):
    prompt = uniq("cached tool [[tool]]")
    gw_openai.post("/v1/chat/completions", oa_body(prompt, tools=TOOLS))
    result = gw_openai.stream("/v1/chat/completions", oa_body(prompt, stream=True, tools=TOOLS))
    assert_layer(result, "l1a")
    args = "".join(tc["function"].get("arguments") or "" for c in result.openai_chunks() for ch in c["choices"]
                   for tc in (ch.get("delta") or {}).get("tool_calls") or [] if tc.get("function"))
    assert json.loads(args) == {"city": "Paris"}
    assert result.finish_reasons() == ["tool_calls"]
    assert gw_openai.fake.count(prompt) == 1


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_messages_route_tool_use(shared_gateway, provider):
    gw = shared_gateway(provider)
    prompt = uniq("anthropic weather [[tool]]")
    r = gw.post("/v1/messages", an_body(prompt, tools=ANTHROPIC_TOOLS))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stop_reason"] == "tool_use", body
    [block] = [b for b in body["content"] if b["type"] == "tool_use"]
    assert block["name"] == "get_weather" and block["input"] == {"city": "Paris"}
    [seen] = gw.fake.calls_for(prompt)
    if provider == "anthropic":
        assert seen["body"]["tools"] == ANTHROPIC_TOOLS
    else:
        assert seen["body"]["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_messages_route_tool_use_stream(shared_gateway, provider):
    gw = shared_gateway(provider)
    prompt = uniq("anthropic weather stream [[tool]]")
    result = gw.stream("/v1/messages", an_body(prompt, stream=True, tools=ANTHROPIC_TOOLS))
    assert result.status == 200 and result.error is None, result.raw[:2000]
    events = result.anthropic_events()
    assert_anthropic_sequence(events)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert any(b["type"] == "tool_use" and b["name"] == "get_weather" for b in starts), starts
    partial = "".join(d["delta"]["partial_json"] for n, d in events
                      if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta")
    assert json.loads(partial) == {"city": "Paris"}
    stop = [d["delta"]["stop_reason"] for n, d in events if n == "message_delta"]
    assert stop == ["tool_use"], stop


def test_tool_result_round_trip_to_anthropic(gw_anthropic):
    """An OpenAI conversation with an assistant tool call and a tool result becomes Anthropic
    tool_use / tool_result blocks upstream."""
    prompt = uniq("after tool")
    body = {"tools": TOOLS, "messages": [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
        {"role": "user", "content": prompt}]}
    r = gw_anthropic.post("/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    [seen] = gw_anthropic.fake.calls_for(prompt)
    blocks = [b for m in seen["body"]["messages"] if isinstance(m["content"], list) for b in m["content"]]
    tool_use = [b for b in blocks if b.get("type") == "tool_use"]
    tool_result = [b for b in blocks if b.get("type") == "tool_result"]
    assert tool_use and tool_use[0]["id"] == "call_1" and tool_use[0]["input"] == {"city": "Paris"}, seen["body"]
    assert tool_result and tool_result[0]["tool_use_id"] == "call_1", seen["body"]
    assert all(m["role"] in ("user", "assistant") for m in seen["body"]["messages"]), seen["body"]
