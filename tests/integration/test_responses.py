"""POST /v1/responses (the OpenAI Responses API) through the official SDK, for an OpenAI and an
Anthropic provider: translated to chat for the upstream, answered (and cached) like chat, rendered
back as a response object or the Responses event sequence."""
from __future__ import annotations

import json

import openai
import pytest

from conftest import GATEWAY_KEY, answer_for, long_uniq, sse_request, uniq

PROVIDERS = ["openai", "anthropic"]
TOOLS = [{"type": "function", "name": "get_weather", "description": "Current weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def client_for(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=15)


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {GATEWAY_KEY}"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sdk_non_stream_then_hit(shared_gateway, provider):
    gw = shared_gateway(provider)
    client = client_for(gw)
    prompt = uniq("responses")
    layers, ids = [], []
    for _ in range(2):
        raw = client.responses.with_raw_response.create(model="gpt-4o-mini", input=prompt, instructions="Be brief.",
                                                        temperature=0.5, max_output_tokens=200)
        layers.append(raw.headers.get("x-isartor-layer"))
        out = raw.parse()
        assert out.object == "response" and out.status == "completed"
        assert out.output_text == answer_for(prompt)
        assert out.instructions == "Be brief." and out.temperature == 0.5 and out.max_output_tokens == 200
        assert out.usage.input_tokens > 0 and out.usage.output_tokens > 0
        assert out.usage.total_tokens == out.usage.input_tokens + out.usage.output_tokens
        [item] = out.output
        assert item.type == "message" and item.role == "assistant" and item.status == "completed"
        ids.append(out.id)
    assert layers == ["l3", "l1a"]
    assert ids[0].startswith("resp_") and ids[0] == ids[1]  # a cached answer keeps its id
    [call] = gw.fake.calls_for(prompt)
    sent = call["body"]
    if provider == "openai":
        assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]
        assert sent["max_completion_tokens"] == 200 and sent["temperature"] == 0.5
    else:
        assert sent["system"] == "Be brief." and sent["max_tokens"] == 200
        assert sent["messages"] == [{"role": "user", "content": prompt}]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sdk_stream_event_sequence_then_replayed_hit(shared_gateway, provider):
    gw = shared_gateway(provider)
    client = client_for(gw)
    prompt = long_uniq("responses stream")
    layers = []
    for _ in range(2):
        raw = client.responses.with_raw_response.create(model="gpt-4o-mini", input=prompt, stream=True)
        layers.append(raw.headers.get("x-isartor-layer"))
        types, text, completed, sequence = [], "", None, []
        for event in raw.parse():
            types.append(event.type)
            sequence.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.completed":
                completed = event.response
        assert text == answer_for(prompt)
        assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                             "response.content_part.added"]
        assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                              "response.completed"]
        assert types.count("response.output_text.delta") >= 2
        assert sequence == list(range(len(sequence)))
        assert completed.output_text == text and completed.status == "completed"
        assert completed.usage.output_tokens > 0
    assert layers == ["l3", "l1a"]
    assert gw.fake.count(prompt) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_function_calls_and_their_outputs(shared_gateway, provider):
    gw = shared_gateway(provider)
    client = client_for(gw)
    prompt = uniq("weather [[tool]]")
    out = client.responses.create(model="gpt-4o-mini", input=prompt, tools=TOOLS)
    [call] = out.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"} and call.call_id

    # The next turn sends the call and its output back, as agents do (no stored state).
    follow = uniq("thanks")
    history = [{"role": "user", "content": prompt},
               {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"},
               {"role": "user", "content": follow}]
    second = client.responses.create(model="gpt-4o-mini", input=history, tools=TOOLS)
    assert second.output_text == answer_for(follow)
    [sent] = gw.fake.calls_for(follow)
    messages = sent["body"]["messages"]
    if provider == "openai":
        assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.call_id, "type": "function", "function": {"name": "get_weather", "arguments": call.arguments}}]}
        assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21 C"}
        assert sent["body"]["tools"][0]["function"]["name"] == "get_weather"
    else:
        assert messages[1]["content"][0]["type"] == "tool_use" and messages[1]["content"][0]["id"] == call.call_id
        assert messages[2]["content"][0] == {"type": "tool_result", "tool_use_id": call.call_id,
                                             "content": "sunny, 21 C"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_function_call(shared_gateway, provider):
    gw = shared_gateway(provider)
    prompt = uniq("weather [[tool]]")
    with client_for(gw).responses.stream(model="gpt-4o-mini", input=prompt, tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types and "response.function_call_arguments.done" in types
    [call] = final.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"}


def test_json_schema_format_reaches_openai_as_response_format(gw_openai):
    prompt = uniq("json")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    client_for(gw_openai).responses.create(
        model="gpt-4o-mini", input=prompt,
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}})
    [call] = gw_openai.fake.calls_for(prompt)
    assert call["body"]["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "reply", "schema": schema, "strict": True}}


@pytest.mark.parametrize("field,value,status,param", [
    ("previous_response_id", "resp_abc", 400, "previous_response_id"),
    ("conversation", "conv_abc", 400, "conversation"),
    ("background", True, 422, "background"),
    ("tools", [{"type": "web_search"}], 422, "tools[0].type"),
    ("truncation", "auto", 422, "truncation"),
    ("frobnicate", 1, 400, "frobnicate"),
])
def test_what_cannot_go_through_chat_is_refused_naming_the_field(gw_openai, field, value, status, param):
    prompt = uniq("refused")
    r = gw_openai.post("/v1/responses", {"model": "gpt-4o-mini", "input": prompt, field: value})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", error
    assert gw_openai.fake.count(prompt) == 0


def test_sdk_raises_the_right_class_for_a_refusal(gw_openai):
    with pytest.raises(openai.BadRequestError) as raised:
        client_for(gw_openai).responses.create(model="gpt-4o-mini", input="hi", previous_response_id="resp_x")
    assert "conversation state" in str(raised.value)


def test_upstream_rate_limit_keeps_its_meaning(gw_openai):
    with pytest.raises(openai.RateLimitError):
        client_for(gw_openai).responses.create(model="gpt-4o-mini", input=uniq("busy [[fail:429]]"))


def test_stream_failing_midway_ends_with_error_and_failed_events(gw_openai):
    prompt = long_uniq("responses [[stream-error]]")
    result = sse_request(gw_openai.url, "/v1/responses", {"model": "gpt-4o-mini", "input": prompt, "stream": True},
                         auth())
    names = [e.event for e in result.events]
    assert names[0] == "response.created" and names[-2:] == ["error", "response.failed"], names
    error = json.loads(result.events[-2].data)
    assert error["type"] == "error" and "sk-" not in error["message"]
    data = [json.loads(e.data) for e in result.events]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert json.loads(result.events[-1].data)["response"]["status"] == "failed"


def test_input_items_with_images_and_developer_role(gw_openai):
    prompt = uniq("look")
    image = "data:image/png;base64,iVBORw0KGgo="
    client_for(gw_openai).responses.create(model="gpt-4o-mini", input=[
        {"role": "developer", "content": "Answer in French."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": prompt}, {"type": "input_image", "image_url": image, "detail": "low"}]}])
    [call] = gw_openai.fake.calls_for(prompt)
    assert call["body"]["messages"] == [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "text", "text": prompt},
                                     {"type": "image_url", "image_url": {"url": image, "detail": "low"}}]}]



def test_json_schema_format_on_anthropic_is_emulated(gw_anthropic):
    prompt = uniq("json")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    out = client_for(gw_anthropic).responses.create(
        model="claude-haiku-4-5", input=prompt, text={"format": {"type": "json_schema", "name": "reply", "schema": schema}})
    assert json.loads(out.output_text) == {"answer": answer_for(prompt)}
    assert [item.type for item in out.output] == ["message"]
