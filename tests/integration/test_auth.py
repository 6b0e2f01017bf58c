"""The gateway key (ISARTOR__GATEWAY_API_KEY=gw-secret on the shared gateways)."""
from __future__ import annotations

import pytest

from conftest import (GATEWAY_KEY, an_body, answer_for, assert_anthropic_error, assert_completion, assert_message,
                      assert_openai_error, native_body, oa_body, uniq)

ROUTES = {
    "openai": ("/v1/chat/completions", oa_body),
    "anthropic": ("/v1/messages", an_body),
    "native": ("/api/chat", native_body),
}


def assert_401(resp, route: str) -> None:
    if route == "anthropic":
        err = assert_anthropic_error(resp, 401)
        assert err["type"] == "authentication_error", err
    else:
        err = assert_openai_error(resp, 401)
        assert "code" in err, err
    assert GATEWAY_KEY not in resp.text


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": GATEWAY_KEY}, {"Authorization": "Basic Z3ctc2VjcmV0"},
                                     {"X-API-Key": GATEWAY_KEY + "x"}, {"X-API-Key": ""}],
                         ids=["none", "wrong-x-api-key", "wrong-bearer", "no-bearer-prefix", "basic",
                              "key-prefix", "empty"])
def test_rejected(gw_openai, route, headers):
    path, make = ROUTES[route]
    prompt = uniq("unauthorized")
    r = gw_openai.request("POST", path, json_body=make(prompt), headers=headers, key=None)
    assert_401(r, route)
    assert gw_openai.fake.count(prompt) == 0


@pytest.mark.parametrize("headers", [{"X-API-Key": GATEWAY_KEY}, {"x-api-key": GATEWAY_KEY},
                                     {"Authorization": f"Bearer {GATEWAY_KEY}"}],
                         ids=["X-API-Key", "x-api-key", "bearer"])
@pytest.mark.parametrize("route", ROUTES)
def test_accepted(gw_anthropic, route, headers):
    path, make = ROUTES[route]
    prompt = uniq("authorized")
    r = gw_anthropic.request("POST", path, json_body=make(prompt), headers=headers, key=None)
    if route == "openai":
        assert_completion(r, answer_for(prompt))
    elif route == "anthropic":
        assert_message(r, answer_for(prompt))
    else:
        assert r.status_code == 200 and r.json()["message"] == answer_for(prompt), r.text


def test_models_requires_key(gw_openai):
    assert_openai_error(gw_openai.get("/v1/models", key=None), 401)
    assert gw_openai.get("/v1/models").status_code == 200


def test_health_needs_no_key(gw_openai):
    for path in ("/health", "/healthz"):
        assert gw_openai.get(path, key=None).status_code == 200
        assert gw_openai.get(path, key="wrong").status_code == 200


def test_stream_rejected_before_streaming(gw_openai):
    prompt = uniq("stream unauthorized")
    result = gw_openai.stream("/v1/chat/completions", oa_body(prompt, stream=True), key="wrong")
    assert_openai_error(result, 401)
    assert gw_openai.fake.count(prompt) == 0


def test_gateway_key_never_forwarded(gw_anthropic, gw_openai):
    for gw in (gw_anthropic, gw_openai):
        prompt = uniq("forward")
        gw.post("/v1/messages", an_body(prompt), headers={"X-API-Key": GATEWAY_KEY})
        gw.post("/v1/chat/completions", oa_body(prompt))
        calls = gw.fake.calls_for(prompt)
        assert len(calls) == 2
        for call in calls:
            assert all(GATEWAY_KEY not in v for v in call["headers"].values()), call["headers"]


def test_auth_off_accepts_anything(gateway_factory):
    gw = gateway_factory("openai")
    assert gw.key is None
    prompt = uniq("open")
    assert_completion(gw.post("/v1/chat/completions", oa_body(prompt), headers={"Authorization": "Bearer whatever"}),
                      answer_for(prompt))
