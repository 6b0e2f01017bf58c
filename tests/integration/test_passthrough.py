"""Same format in, same format out: an Anthropic request to the Anthropic provider goes upstream as
the client wrote it, and Anthropic's answer comes back as Anthropic gave it (prompt caching,
extended thinking, betas intact) — through the official SDK, streamed and not."""
from __future__ import annotations

import anthropic
import pytest

from conftest import GATEWAY_KEY, uniq

MODEL = "claude-haiku-4-5"


def client(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=15)


def rich_request(prompt: str) -> dict:
    """What Claude Code sends: system blocks with cache_control, thinking, and the rest."""
    return dict(
        model=MODEL, max_tokens=2048,
        system=[{"type": "text", "text": "You are a coding agent."},
                {"type": "text", "text": "Project rules: be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}]}],
        thinking={"type": "enabled", "budget_tokens": 1024},
        metadata={"user_id": "user-1"}, stop_sequences=["END"],
        extra_body={"top_k": 5},  # not an argument of every SDK version
    )


def upstream_calls(gw, prompt: str) -> list[dict]:
    return [c for c in gw.fake.calls if c["path"] == "/v1/messages" and prompt in str(c["body"])]


def assert_sent_unchanged(gw, prompt: str, sent: dict) -> dict:
    calls = upstream_calls(gw, prompt)
    assert len(calls) == 1
    body = {k: v for k, v in calls[0]["body"].items() if k != "stream"}
    expected = {k: v for k, v in sent.items() if k != "extra_body"} | sent.get("extra_body", {})
    assert body == expected  # cache_control, system blocks, thinking, top_k, metadata, stop_sequences
    return calls[0]


def test_a_request_goes_upstream_as_written_and_the_answer_comes_back_as_given(gw_anthropic):
    prompt = uniq("pass me through")
    sent = rich_request(prompt)
    raw = client(gw_anthropic).messages.with_raw_response.create(
        **sent, extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14", "anthropic-version": "2023-06-01"})
    assert raw.headers["x-isartor-layer"] == "l3"
    call = assert_sent_unchanged(gw_anthropic, prompt, sent)
    assert call["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert call["headers"]["anthropic-version"] == "2023-06-01"
    message = raw.parse()
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].signature.startswith("sig_fake") and message.content[1].text == "Echo: " + prompt
    assert message.usage.cache_creation_input_tokens > 0  # the provider's prompt-cache accounting reaches the client
    assert message.id.startswith("msg_fake")

    # Extended thinking: only Anthropic can answer (a replay would lack the thinking blocks the
    # next turn must send back), so the repeat goes upstream too and nothing was cached.
    again = client(gw_anthropic).messages.with_raw_response.create(**sent)
    assert again.headers["x-isartor-layer"] == "l3" and again.headers["x-isartor-cache"] == "bypass"
    assert [b.type for b in again.parse().content] == ["thinking", "text"]
    assert len(upstream_calls(gw_anthropic, prompt)) == 2


def test_without_thinking_a_passed_through_answer_is_cached(gw_anthropic):
    prompt = uniq("cache me through")
    sent = {k: v for k, v in rich_request(prompt).items() if k != "thinking"}
    first = client(gw_anthropic).messages.with_raw_response.create(**sent)
    assert first.headers["x-isartor-layer"] == "l3"
    assert_sent_unchanged(gw_anthropic, prompt, sent)  # cache_control and the system blocks intact
    assert first.parse().usage.cache_creation_input_tokens > 0
    again = client(gw_anthropic).messages.with_raw_response.create(**sent)
    assert again.headers["x-isartor-layer"] == "l1a"
    assert again.parse().content[-1].text == "Echo: " + prompt
    assert len(upstream_calls(gw_anthropic, prompt)) == 1


def test_server_tools_go_to_the_provider_uncached(gw_anthropic):
    prompt = uniq("search the web")
    sent = dict(model=MODEL, max_tokens=256, messages=[{"role": "user", "content": prompt}],
                tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}])
    for _ in range(2):
        raw = client(gw_anthropic).messages.with_raw_response.create(**sent)
        assert raw.headers["x-isartor-layer"] == "l3"
    calls = upstream_calls(gw_anthropic, prompt)
    assert len(calls) == 2 and calls[0]["body"]["tools"] == sent["tools"]


def test_a_stream_passes_through_event_by_event(gw_anthropic):
    prompt = uniq("stream me through")
    sent = rich_request(prompt)
    with client(gw_anthropic).messages.stream(**sent) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    call = assert_sent_unchanged(gw_anthropic, prompt, sent)
    assert call["body"]["stream"] is True
    assert kinds[0] == "message_start" and "thinking" in kinds
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].signature.startswith("sig_fake")
    assert final.content[0].thinking == "Considering: " + prompt
    assert final.content[1].text == "Echo: " + prompt
    assert final.usage.cache_creation_input_tokens > 0


def test_a_stream_without_thinking_is_cached_once_it_ended(gw_anthropic):
    prompt = uniq("stream and cache me")
    sent = {k: v for k, v in rich_request(prompt).items() if k != "thinking"}
    with client(gw_anthropic).messages.stream(**sent) as stream:
        assert stream.get_final_message().content[-1].text == "Echo: " + prompt
    again = client(gw_anthropic).messages.with_raw_response.create(**sent)
    assert again.headers["x-isartor-layer"] == "l1a"


def test_content_without_a_canonical_form_still_reaches_the_provider(gw_anthropic):
    prompt = uniq("summarise the attachment")
    sent = dict(model=MODEL, max_tokens=256, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Some text."},
         "citations": {"enabled": True}},
        {"type": "text", "text": prompt}]}])
    for _ in range(2):  # never cached: both go upstream
        raw = client(gw_anthropic).messages.with_raw_response.create(**sent)
        assert raw.headers["x-isartor-layer"] == "l3"
        assert raw.parse().content[-1].text == "Echo: " + prompt
    assert len(upstream_calls(gw_anthropic, prompt)) == 2


def test_upstream_errors_keep_their_meaning_on_pass_through(gw_anthropic):

    with pytest.raises(anthropic.RateLimitError):
        client(gw_anthropic).messages.create(**rich_request(uniq("[[fail:429]]")))
    with pytest.raises(anthropic.APIStatusError):
        with client(gw_anthropic).messages.stream(**rich_request(uniq("[[stream-error]]"))) as stream:
            for _ in stream:
                pass


def test_across_formats_nothing_is_dropped_silently(gw_anthropic):
    import openai
    oa = openai.OpenAI(base_url=gw_anthropic.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=15)
    for extra, param in [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"),
                         ({"response_format": {"type": "json_schema", "json_schema": {
                             "name": "x", "schema": {"type": "array"}}}}, "response_format.json_schema.schema")]:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": uniq("x")}], **extra)
        assert raised.value.body["param"] == param
    assert not [c for c in gw_anthropic.fake.calls if c["path"] == "/v1/messages" and "logprobs" in str(c["body"])]


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("response_format,tool", [
    ({"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True}}, "reply"),
    ({"type": "json_object"}, "json_answer"),
])
def test_json_mode_is_emulated_on_anthropic_with_a_forced_tool(gw_anthropic, response_format, tool, stream):
    import json

    import openai
    from conftest import answer_for
    oa = openai.OpenAI(base_url=gw_anthropic.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=15)
    prompt = uniq("json please")
    messages = [{"role": "user", "content": prompt}]
    if stream:
        text, finish = "", None
        for chunk in oa.chat.completions.create(model=MODEL, messages=messages, response_format=response_format,
                                                stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
                assert not choice.delta.tool_calls
                finish = choice.finish_reason or finish
    else:
        out = oa.chat.completions.create(model=MODEL, messages=messages, response_format=response_format)
        text, finish = out.choices[0].message.content, out.choices[0].finish_reason
        assert not out.choices[0].message.tool_calls
    assert json.loads(text) == {"answer": answer_for(prompt)} and finish == "stop"
    [call] = upstream_calls(gw_anthropic, prompt)
    schema = SCHEMA if response_format["type"] == "json_schema" else {"type": "object"}
    assert [(t["name"], t["input_schema"]) for t in call["body"]["tools"]] == [(tool, schema)]
    assert call["body"]["tool_choice"] == {"type": "tool", "name": tool}


def test_json_mode_with_tools_is_refused_on_anthropic(gw_anthropic):
    import openai
    oa = openai.OpenAI(base_url=gw_anthropic.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=15)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": uniq("x")}], tools=tools,
                                   response_format={"type": "json_object"})
    assert raised.value.body["param"] == "response_format"
