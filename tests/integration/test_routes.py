"""The routes besides chat that clients call (#12): /v1/embeddings passed to an OpenAI-compatible
provider (the local model is in test_semantic.py), /v1/messages/count_tokens passed to Anthropic or
estimated, and /v1/models (the provider's list, kept) and /v1/models/{id}, through the official SDKs and
in each route's own error format."""
from __future__ import annotations

import base64
import struct

import anthropic
import openai
import pytest

from conftest import DEFAULT_MODELS, GATEWAY_KEY, assert_anthropic_error, assert_openai_error, uniq
from fake_provider import MODELS


def oa_client(gw, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=retries, timeout=15)


def an_client(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=15)


def embedding_calls(fake, text: str) -> list[dict]:
    return [c for c in fake.calls if c["path"] == "/v1/embeddings" and text in str(c["body"].get("input"))]


def floats(embedding) -> list[float]:
    if isinstance(embedding, str):  # asked for base64 explicitly: the SDK leaves it to the caller
        raw = base64.b64decode(embedding)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return embedding


# None: the SDK's default, which asks for base64 and decodes it itself.
@pytest.mark.parametrize("encoding", ["float", "base64", None])
def test_embeddings_pass_to_the_provider_unchanged_and_are_cached(gw_openai, encoding):
    text = uniq("embed me")
    extra = {"encoding_format": encoding} if encoding else {}
    create = lambda: oa_client(gw_openai).embeddings.with_raw_response.create(  # noqa: E731
        model="text-embedding-3-small", input=[text, text + " too"], **extra)
    first = create()
    assert first.headers["x-isartor-cache"] == "miss" and first.headers["x-isartor-deflected"] == "false"
    vectors = first.parse()
    assert [d.index for d in vectors.data] == [0, 1] and len(floats(vectors.data[0].embedding)) == 8
    assert vectors.model == "text-embedding-3-small" and vectors.usage.prompt_tokens > 0
    calls = embedding_calls(gw_openai.fake, text)
    assert len(calls) == 1
    assert calls[0]["body"] == {"model": "text-embedding-3-small", "input": [text, text + " too"],
                                "encoding_format": encoding or "base64"}
    second = create()
    assert second.headers["x-isartor-cache"] == "hit" and second.headers["x-isartor-deflected"] == "true"
    assert floats(second.parse().data[1].embedding) == floats(vectors.data[1].embedding)
    assert len(embedding_calls(gw_openai.fake, text)) == 1


def test_embeddings_honour_cache_control(gw_openai):
    text = uniq("embed no-store")
    body = {"model": "text-embedding-3-small", "input": text}
    for _ in range(2):
        r = gw_openai.post("/v1/embeddings", body, headers={"Cache-Control": "no-store"})
        assert r.status_code == 200, r.text
    r = gw_openai.post("/v1/embeddings", body, headers={"x-isartor-cache": "off"})
    assert r.headers["X-Isartor-Cache"] == "bypass"
    assert len(embedding_calls(gw_openai.fake, text)) == 3


def test_embedding_errors_keep_their_meaning(gw_openai):
    with pytest.raises(openai.RateLimitError):
        oa_client(gw_openai).embeddings.create(model="text-embedding-3-small", input=uniq("[[fail:429]]"))
    bad = gw_openai.post("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["ok", 3]})
    assert assert_openai_error(bad, 400)["param"] == "input"
    assert assert_openai_error(gw_openai.post("/v1/embeddings", {"input": "x"}), 400)["param"] == "model"
    fmt = gw_openai.post("/v1/embeddings", {"model": "m", "input": "x", "encoding_format": "int8"})
    assert assert_openai_error(fmt, 400)["param"] == "encoding_format"
    # The local model is named, but this gateway runs without the semantic cache's model.
    local = gw_openai.post("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": "x"})
    assert "not loaded" in assert_openai_error(local, 503)["message"]


@pytest.mark.parametrize("provider", ["anthropic", "azure"])
def test_providers_without_an_embeddings_endpoint_say_so(shared_gateway, provider):
    r = shared_gateway(provider).post("/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"})
    assert f"the {provider} provider has no embeddings endpoint" in assert_openai_error(r, 404)["message"]


def test_count_tokens_is_the_providers_own_count_on_anthropic(gw_anthropic):
    client = an_client(gw_anthropic)
    prompt = uniq("count these four words")
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5", system="be brief", messages=[{"role": "user", "content": prompt}],
        extra_headers={"anthropic-beta": "token-counting-2024-11-01"})
    assert raw.headers["x-isartor-token-count"] == "provider"
    assert raw.parse().input_tokens == 2 + len(prompt.split()) + 10  # the fake's count
    call = [c for c in gw_anthropic.fake.calls if c["path"] == "/v1/messages/count_tokens"][-1]
    assert call["body"]["messages"] == [{"role": "user", "content": prompt}]
    assert call["headers"]["anthropic-beta"] == "token-counting-2024-11-01"
    assert call["headers"]["x-api-key"] != GATEWAY_KEY


def test_count_tokens_defaults_the_model(gw_anthropic):
    r = gw_anthropic.post("/v1/messages/count_tokens", {"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    call = [c for c in gw_anthropic.fake.calls if c["path"] == "/v1/messages/count_tokens"][-1]
    assert call["body"]["model"] == DEFAULT_MODELS["anthropic"]


@pytest.mark.parametrize("provider", ["openai", "azure", "xai"])
def test_count_tokens_is_an_estimate_elsewhere(shared_gateway, provider):
    gw = shared_gateway(provider)
    short = an_client(gw).messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "hello there"}])
    assert short.headers["x-isartor-token-count"] == "estimate"
    assert short.headers["x-isartor-tokenizer"]  # says what it counted with
    longer = an_client(gw).messages.count_tokens(
        model="claude-haiku-4-5", system="You are a careful assistant. " * 20,
        messages=[{"role": "user", "content": "hello there"}],
        tools=[{"name": "get_weather", "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
    assert 0 < short.parse().input_tokens < longer.input_tokens
    assert not [c for c in gw.fake.calls if "count_tokens" in c["path"]]


def test_count_tokens_errors_are_anthropic_errors(any_gw):
    r = any_gw.post("/v1/messages/count_tokens", {"model": "claude-haiku-4-5"})
    assert "messages" in assert_anthropic_error(r, 400)["message"]
    with pytest.raises(anthropic.BadRequestError):
        an_client(any_gw).messages.count_tokens(model="claude-haiku-4-5", messages=[])
    assert_anthropic_error(any_gw.post("/v1/messages/count_tokens", "{not json"), 400)
    assert_anthropic_error(any_gw.post("/v1/messages/nothing-here", {}), 404)


def test_models_retrieve_through_both_sdks(any_gw):
    configured = DEFAULT_MODELS[any_gw.provider]
    model = oa_client(any_gw).models.retrieve(configured)
    # The provider's entry where it lists the model (the fake's OpenAI list says "fake").
    owner = "fake" if any_gw.provider in ("openai", "xai") else any_gw.provider
    assert model.id == configured and model.owned_by == owner
    with pytest.raises(openai.NotFoundError):
        oa_client(any_gw).models.retrieve("no-such-model")
    info = an_client(any_gw).models.retrieve(configured)
    assert info.id == configured and info.type == "model"
    listed = an_client(any_gw).models.list()
    # Azure's resource lists deployments, not models: the configured one alone.
    others = [] if any_gw.provider == "azure" else [m for m in MODELS if m != configured]
    assert [m.id for m in listed.data] == [configured] + others
    with pytest.raises(anthropic.NotFoundError):
        an_client(any_gw).models.retrieve("no-such-model")
    assert any_gw.post(f"/v1/models/{configured}", {}).status_code == 405


def model_list_calls(fake) -> list[dict]:
    return [c for c in fake.calls if c["path"] == "/v1/models"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_model_list_is_the_providers_and_is_kept(gateway_factory, provider):
    gw = gateway_factory(provider)
    configured = DEFAULT_MODELS[provider]
    listed = oa_client(gw).models.list().data
    assert [m.id for m in listed] == [configured] + [m for m in MODELS if m != configured]
    gpt4o = next(m for m in listed if m.id == "gpt-4o")
    # Either shape's details reach the other's clients: OpenAI's created/owned_by, Anthropic's
    # display_name/created_at.
    if provider == "openai":
        assert (gpt4o.created, gpt4o.owned_by) == (1700000000, "fake")
    else:
        assert (gpt4o.created, gpt4o.owned_by) == (1759276800, "anthropic")
    info = an_client(gw).models.retrieve("gpt-4o")
    assert info.display_name == ("gpt-4o" if provider == "openai" else "Gpt 4O")
    assert info.created_at.timestamp() == gpt4o.created
    assert oa_client(gw).models.retrieve("grok-2-latest").id == "grok-2-latest"
    calls = model_list_calls(gw.fake)
    assert len(calls) == 1, "a kept list is not fetched again"
    assert calls[0]["method"] == "GET"
    if provider == "anthropic":
        assert calls[0]["headers"]["x-api-key"] and calls[0]["headers"]["anthropic-version"]
        assert calls[0]["query"]["limit"] == "1000"
    else:
        assert calls[0]["headers"]["authorization"].startswith("Bearer ")


def test_without_the_providers_list_the_configured_models_are_listed(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__EXTERNAL_LLM_API_KEY="not-a-key-the-fake-takes")
    assert [m.id for m in oa_client(gw).models.list().data] == [DEFAULT_MODELS["openai"]]
    assert oa_client(gw).models.retrieve(DEFAULT_MODELS["openai"]).owned_by == "openai"
    with pytest.raises(openai.NotFoundError):
        oa_client(gw).models.retrieve("gpt-4o")
    # A failed fetch is not repeated on every listing (it is retried after 30 s).
    assert len(model_list_calls(gw.fake)) == 1
    assert "model list is unavailable" in gw.log_tail()


def test_legacy_completions_through_the_sdk(any_gw):
    prompt = uniq("complete me")
    raw = oa_client(any_gw).completions.with_raw_response.create(
        model=DEFAULT_MODELS[any_gw.provider], prompt=prompt)
    assert raw.headers["x-isartor-cache"] == "miss"
    done = raw.parse()
    assert done.object == "text_completion" and not done.id.startswith("chatcmpl-")
    assert done.choices[0].text == "Echo: " + prompt and done.choices[0].index == 0
    chat_calls = [c for c in any_gw.fake.calls if prompt in str(c["body"])]
    assert len(chat_calls) == 1
    # OpenAI's legacy default of 16 tokens reaches the provider, in its own field name.
    assert 16 in (chat_calls[0]["body"].get("max_tokens"), chat_calls[0]["body"].get("max_completion_tokens"))
    again = oa_client(any_gw).completions.with_raw_response.create(
        model=DEFAULT_MODELS[any_gw.provider], prompt=prompt)
    assert again.headers["x-isartor-cache"] == "hit" and again.parse().choices[0].text == "Echo: " + prompt

    streamed = "".join(c.choices[0].text for c in oa_client(any_gw).completions.create(
        model=DEFAULT_MODELS[any_gw.provider], prompt=uniq("stream me"), stream=True) if c.choices)
    assert streamed.startswith("Echo: stream me")


def test_legacy_completions_refuse_what_a_chat_model_cannot_do(gw_openai):
    for extra, param in [({"echo": True}, "echo"), ({"suffix": "x"}, "suffix"), ({"n": 2}, "n"),
                         ({"best_of": 2}, "best_of"), ({"logprobs": 1}, "logprobs")]:
        with pytest.raises(openai.BadRequestError) as raised:
            oa_client(gw_openai).completions.create(model="gpt-4o-mini", prompt="x", **extra)
        assert raised.value.body["param"] == param, extra
    r = gw_openai.post("/v1/completions", {"model": "gpt-4o-mini", "prompt": ["a", "b"]})
    assert assert_openai_error(r, 400)["param"] == "prompt"
