"""Gateway keys and their rate limits (#14): several teams told apart by key, requests and tokens
per minute answered with 429 + Retry-After + x-ratelimit-* in each route's own format, and cache
hits free when so configured."""
from __future__ import annotations

import hashlib
import json
import re
import time

import anthropic
import openai
import pytest

from conftest import (an_body, assert_anthropic_error, assert_completion, assert_openai_error, config_rejection, oa_body,
                      uniq)

OPENAI, ANTHROPIC = "/v1/chat/completions", "/v1/messages"
KEY_A, KEY_B = "team-a-key-0123456789", "team-b-key-0123456789"


def teams(a: dict | None = None, b: dict | None = None) -> str:
    return json.dumps([{"name": "team-a", "key": KEY_A, **(a or {})},
                       {"name": "team-b", "key_sha256": hashlib.sha256(KEY_B.encode()).hexdigest(), **(b or {})}])


def post(gw, key: str, path: str, body: dict):
    return gw.http.post(gw.url + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_each_team_has_its_own_request_limit_in_each_routes_format(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEYS=teams({"requests_per_minute": 2}))
    for _ in range(2):
        p = uniq("a")
        assert_completion(post(gw, KEY_A, OPENAI, oa_body(p)), "Echo: " + p)
    r = post(gw, KEY_A, OPENAI, oa_body(uniq("a")))
    err = assert_openai_error(r, 429)
    assert "team-a" in err["message"] and "2 requests per minute" in err["message"], err
    assert 1 <= int(r.headers["retry-after"]) <= 30
    assert r.headers["x-ratelimit-limit-requests"] == "2"
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-isartor-upstream-status" not in r.headers  # the gateway's limit, not the provider's
    r = post(gw, KEY_A, ANTHROPIC, an_body(uniq("a")))
    assert assert_anthropic_error(r, 429)["type"] == "rate_limit_error"
    # Another team is not affected (no limit of its own, no default).
    p = uniq("b")
    assert_completion(post(gw, KEY_B, OPENAI, oa_body(p)), "Echo: " + p)
    # The SDKs see their own rate-limit error class.
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY_A, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": uniq("sdk")}])
    an = anthropic.Anthropic(base_url=gw.url, api_key=KEY_A, max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        an.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": uniq("sdk")}])
    metrics = gw.http.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {KEY_B}"}).text
    assert 'isartor_rate_limited_total{client="team-a",limit="requests"} 4' in metrics
    assert 'isartor_client_requests_total{client="team-b"} 1' in metrics
    log = gw.log()
    assert "key=team-a" in log and "key=team-b" in log
    assert KEY_A not in log and KEY_B not in log


def test_unknown_keys_are_refused_and_the_single_key_still_works(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEY="legacy-key-0123", ISARTOR__GATEWAY_API_KEYS=teams())
    assert_openai_error(post(gw, "wrong", OPENAI, oa_body(uniq("x"))), 401)
    p = uniq("legacy")
    assert_completion(post(gw, "legacy-key-0123", OPENAI, oa_body(p)), "Echo: " + p)
    assert "key=default" in gw.log()


def test_cache_hits_can_be_free(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEYS=teams({"requests_per_minute": 1}),
                         ISARTOR__RATE_LIMIT__COUNT_CACHE_HITS="false")
    p = uniq("cached")
    assert_completion(post(gw, KEY_A, OPENAI, oa_body(p)), "Echo: " + p)
    for _ in range(3):  # deflected traffic costs nothing
        r = post(gw, KEY_A, OPENAI, oa_body(p))
        assert r.status_code == 200 and r.headers["x-isartor-layer"] == "l1a"
    assert_openai_error(post(gw, KEY_A, OPENAI, oa_body(uniq("new"))), 429)


def test_cache_hits_count_by_default(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEYS=teams(), ISARTOR__RATE_LIMIT__REQUESTS_PER_MINUTE="1")
    p = uniq("counted")
    assert_completion(post(gw, KEY_B, OPENAI, oa_body(p)), "Echo: " + p)
    assert_openai_error(post(gw, KEY_B, OPENAI, oa_body(p)), 429)


def test_a_token_budget_refuses_once_answers_spent_it(gateway_factory, fake):
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEYS=teams({"tokens_per_minute": 5}))
    p = uniq("tokens")
    assert_completion(post(gw, KEY_A, OPENAI, oa_body(p)), "Echo: " + p)  # its usage overdraws 5
    r = post(gw, KEY_A, OPENAI, oa_body(uniq("more")))
    err = assert_openai_error(r, 429)
    assert "5 tokens per minute" in err["message"], err
    assert r.headers["x-ratelimit-limit-tokens"] == "5"
    assert fake.count(p) == 1


def client_tokens(gw, key: str, name: str) -> int:
    r = gw.http.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    found = re.search(rf'^isartor_client_tokens_total{{client="{name}"}} (\d+)$', r.text, re.M)
    return int(found.group(1)) if found else 0


def test_a_stream_the_client_left_is_charged_an_estimate(gateway_factory):
    """The provider bills a cancelled generation for what it produced; its usage would have come
    last, so the stream is charged UTF-8 bytes / 4 of the messages and of what was streamed."""
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEYS=teams({"tokens_per_minute": 100000}))
    body = oa_body(uniq("left early") + " [[endless]]", stream=True)
    with gw.http.post(gw.url + OPENAI, json=body, headers={"Authorization": f"Bearer {KEY_A}"}, stream=True,
                      timeout=10) as r:
        assert r.status_code == 200
        events = 0
        for line in r.iter_lines():
            events += line.startswith(b"data:")
            if events >= 10:
                break
    deadline = time.monotonic() + 5
    while client_tokens(gw, KEY_A, "team-a") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    prompt_estimate = len(json.dumps(body["messages"], separators=(",", ":"))) // 4
    assert client_tokens(gw, KEY_A, "team-a") > prompt_estimate  # the prompt and what was streamed


@pytest.mark.parametrize("value, expected", [
    ('[{"key": "k1234567"}]', 'has no "name"'),
    ('[{"name": "a", "key": "k1234567", "key_sha256": "00"}]', 'exactly one of "key" and "key_sha256"'),
    ('[{"name": "a", "key_sha256": "XYZ"}]', "64 lower-case hex"),
    ('[{"name": "a", "key": "k1234567"}, {"name": "a", "key": "k7654321"}]', "used twice"),
    ('[{"name": "a", "key": "k1234567", "requests_per_minute": -1}]', "whole number"),
    ('[{"name": "a", "key": "k1234567", "admin": "yes"}]', '"admin" that is not true or false'),
])
def test_a_bad_key_list_is_one_line_without_the_keys(gateway_factory, value, expected):
    text = config_rejection(gateway_factory("openai", start=False, ISARTOR__GATEWAY_API_KEYS=value))
    assert "ISARTOR__GATEWAY_API_KEYS" in text and expected in text, text
    assert "k1234567" not in text and "k7654321" not in text


def test_a_daily_token_quota_blocks_until_midnight_utc(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEYS=teams({"tokens_per_day": 3}))
    p = uniq("quota")
    assert_completion(post(gw, KEY_A, OPENAI, oa_body(p)), "Echo: " + p)  # its usage uses up 3 tokens
    r = post(gw, KEY_A, OPENAI, oa_body(uniq("over")))
    err = assert_openai_error(r, 429)
    assert err["code"] == "insufficient_quota" and "daily quota of 3 tokens" in err["message"], err
    assert 1 <= int(r.headers["retry-after"]) <= 86400
    # With action warn it is only logged.
    gw2 = gateway_factory("openai", ISARTOR__GATEWAY_API_KEYS=teams({"tokens_per_day": 3}), ISARTOR__QUOTA__ACTION="warn")
    for _ in range(2):
        p = uniq("warned")
        assert_completion(post(gw2, KEY_A, OPENAI, oa_body(p)), "Echo: " + p)
    assert "used up its daily quota of 3 tokens" in gw2.log()
