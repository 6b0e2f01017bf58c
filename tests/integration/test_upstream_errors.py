"""Upstream errors keep their meaning (#12): the provider's 4xx reaches the client with the same
status, message, type and code in the route's format; 429 keeps Retry-After and the rate-limit
headers; 5xx and transport failures stay 502/504. With the official SDKs: the right exception class,
and no more upstream calls than the SDK's own retry policy makes."""
from __future__ import annotations

import anthropic
import openai
import pytest

from conftest import GATEWAY_KEY, PROVIDER_KEY, an_body, assert_anthropic_error, assert_openai_error, oa_body, uniq

OPENAI, ANTHROPIC = "/v1/chat/completions", "/v1/messages"
PROVIDERS = ["openai", "anthropic"]
ROUTES = {OPENAI: oa_body, ANTHROPIC: an_body}
ANTHROPIC_TYPES = {"invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                   "request_too_large", "rate_limit_error", "api_error", "overloaded_error"}
# The Anthropic type each status must have on the Anthropic route, whichever provider answered.
ANTHROPIC_TYPE_OF = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 409: "invalid_request_error", 422: "invalid_request_error",
                     429: "rate_limit_error"}


def route_error(resp, path: str, status: int) -> dict:
    return assert_anthropic_error(resp, status) if path == ANTHROPIC else assert_openai_error(resp, status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429])
@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
def test_provider_4xx_keeps_its_status(any_gw, path, status):
    prompt = uniq(f"[[fail:{status}]]")
    r = any_gw.post(path, ROUTES[path](prompt))
    err = route_error(r, path, status)
    assert "Simulated upstream failure" in err["message"], err
    if status in (401, 403):  # the gateway's own provider key, not the client's
        assert "refused the gateway's API key" in err["message"], err
    assert PROVIDER_KEY not in r.text and "sk-test" not in r.text, r.text
    assert r.headers["x-isartor-upstream-status"] == str(status)
    if path == ANTHROPIC:
        assert err["type"] == ANTHROPIC_TYPE_OF[status], err
    assert any_gw.fake.count(prompt) == 1


def test_openai_provider_error_type_code_and_param_pass_through(gw_openai):
    r = gw_openai.post(OPENAI, oa_body(uniq("[[fail:400]]")))
    err = assert_openai_error(r, 400)
    assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", "context_length_exceeded",
                                                        "messages"), err
    r = gw_openai.post(OPENAI, oa_body(uniq("[[fail:429]]")))
    err = assert_openai_error(r, 429)
    assert (err["type"], err["code"]) == ("requests", "rate_limit_exceeded"), err


def test_anthropic_provider_types_reach_openai_clients(gw_anthropic):
    err = assert_openai_error(gw_anthropic.post(OPENAI, oa_body(uniq("[[fail:429]]"))), 429)
    assert err["type"] == "rate_limit_error", err
    err = assert_openai_error(gw_anthropic.post(OPENAI, oa_body(uniq("[[fail:404]]"))), 404)
    assert err["type"] == "not_found_error", err


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_keeps_retry_after_and_rate_limit_headers(shared_gateway, provider, path):
    gw = shared_gateway(provider)
    r = gw.post(path, ROUTES[path](uniq("[[fail:429]] [[retry-after:7]]")))
    route_error(r, path, 429)
    assert r.headers["retry-after"] == "7"
    if provider == "openai":
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
        assert r.headers["x-ratelimit-reset-requests"] == "7s"
    else:
        assert r.headers["anthropic-ratelimit-requests-remaining"] == "0"


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
def test_streamed_request_refused_before_it_started_keeps_status(any_gw, path):
    result = any_gw.stream(path, ROUTES[path](uniq("[[fail:429]] [[retry-after:3]] streamed"), stream=True))
    assert result.status == 429
    assert result.headers.get("retry-after") == "3"


@pytest.mark.parametrize("status,expected", [(500, 502), (502, 502), (503, 502), (529, 502), (504, 504)])
def test_provider_5xx_is_the_gateway_upstream_error(any_gw, status, expected):
    r = any_gw.post(OPENAI, oa_body(uniq(f"[[fail:{status}]] [[retry-after:2]]")))
    assert_openai_error(r, expected)
    assert r.headers["retry-after"] == "2"  # the provider's pacing still reaches the client
    assert r.headers["x-isartor-upstream-status"] == str(status)


# -- The SDKs: exception classes and retries -----------------------------------------------------

OPENAI_EXCEPTIONS = {400: openai.BadRequestError, 401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
                     404: openai.NotFoundError, 409: openai.ConflictError, 422: openai.UnprocessableEntityError,
                     429: openai.RateLimitError, 500: openai.InternalServerError}
ANTHROPIC_EXCEPTIONS = {400: anthropic.BadRequestError, 401: anthropic.AuthenticationError,
                        403: anthropic.PermissionDeniedError, 404: anthropic.NotFoundError,
                        409: anthropic.ConflictError, 422: anthropic.UnprocessableEntityError,
                        429: anthropic.RateLimitError, 500: anthropic.InternalServerError}
# What each SDK retries on its own (both: 408, 409, 429 and 5xx); everything else is sent once.
SDK_RETRIES = {400: False, 401: False, 403: False, 404: False, 409: True, 422: False, 429: True, 500: True}
MAX_RETRIES = 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", sorted(OPENAI_EXCEPTIONS))
def test_openai_sdk_raises_the_right_class_and_retries_as_it_intends(shared_gateway, provider, status):
    gw = shared_gateway(provider)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=MAX_RETRIES, timeout=15)
    prompt = uniq(f"[[fail:{status}]] [[retry-after:0]]")
    with pytest.raises(OPENAI_EXCEPTIONS[status]) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    assert raised.value.status_code == (502 if status >= 500 else status)
    assert gw.fake.count(prompt) == (1 + MAX_RETRIES if SDK_RETRIES[status] else 1)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", sorted(ANTHROPIC_EXCEPTIONS))
def test_anthropic_sdk_raises_the_right_class_and_retries_as_it_intends(shared_gateway, provider, status):
    gw = shared_gateway(provider)
    client = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=MAX_RETRIES, timeout=15)
    prompt = uniq(f"[[fail:{status}]] [[retry-after:0]]")
    with pytest.raises(ANTHROPIC_EXCEPTIONS[status]) as raised:
        client.messages.create(model="claude-3-5-haiku-latest", max_tokens=16,
                               messages=[{"role": "user", "content": prompt}])
    assert raised.value.status_code == (502 if status >= 500 else status)
    assert gw.fake.count(prompt) == (1 + MAX_RETRIES if SDK_RETRIES[status] else 1)
