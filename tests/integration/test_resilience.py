"""Upstream resilience (#14): a fallback chain of providers, retries within a deadline that honour
Retry-After, key pools with cooldown, and a circuit breaker per provider. Two local fake providers
play the primary and the fallback; outages are forced on the primary whatever the prompt."""
from __future__ import annotations

import json
import socket
import time

import anthropic
import openai
import pytest

from conftest import (GATEWAY_KEY, PROVIDER_KEY, assert_completion, assert_openai_error, clean_env, config_rejection,
                      oa_body, run_isartor, sse_request, uniq)
from fake_provider import FakeProvider

OPENAI, ANTHROPIC = "/v1/chat/completions", "/v1/messages"
BACKUP_KEY = "sk-backup-0123456789abcdef"
SECOND_KEY = "sk-second-0123456789abcdef"


@pytest.fixture(scope="module")
def backup() -> FakeProvider:
    provider = FakeProvider(api_keys=(BACKUP_KEY,), chunk_delay=0.01).start()
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def _fresh_backup(backup: FakeProvider) -> None:
    backup.reset()


def fallback(url: str, provider: str = "anthropic", **extra) -> str:
    entry = {"provider": provider, "url": url, "api_key": BACKUP_KEY, "name": "backup", **extra}
    return json.dumps([entry])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chain(gateway_factory, backup):
    """A gateway whose primary is the openai fake and whose fallback is `backup` speaking Anthropic."""
    def make(**env: str):
        env.setdefault("ISARTOR__FALLBACK_PROVIDERS", fallback(backup.url))
        env.setdefault("ISARTOR__GATEWAY_API_KEY", GATEWAY_KEY)
        return gateway_factory("openai", **env)
    return make


def provider_of(resp) -> str:
    return resp.headers.get("x-isartor-provider", "")


@pytest.mark.parametrize("status", [500, 502, 503, 529, 429])
def test_primary_failure_goes_to_the_fallback(chain, fake, backup, status):
    gw = chain()
    fake.force(status=status)
    prompt = uniq("failover")
    r = gw.post(OPENAI, oa_body(prompt))
    assert_completion(r, "Echo: " + prompt)
    assert provider_of(r) == "backup"
    assert fake.count(prompt) == 1 and backup.count(prompt) == 1
    # Translated for the fallback's dialect: it got an Anthropic Messages request with its own key.
    call = backup.calls_for(prompt)[0]
    assert call["path"] == "/v1/messages" and call["headers"].get("x-api-key") == BACKUP_KEY


def test_a_healthy_primary_answers_and_says_so(chain, fake, backup):
    gw = chain()
    prompt = uniq("healthy")
    r = gw.post(OPENAI, oa_body(prompt))
    assert_completion(r, "Echo: " + prompt)
    assert provider_of(r) == "openai"
    assert backup.count(prompt) == 0


def test_connect_refused_goes_to_the_fallback(gateway_factory, backup):
    gw = gateway_factory("openai", ISARTOR__EXTERNAL_LLM_URL=f"http://127.0.0.1:{closed_port()}/v1",
                         ISARTOR__FALLBACK_PROVIDERS=fallback(backup.url), ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
    prompt = uniq("refused")
    r = gw.post(OPENAI, oa_body(prompt))
    assert_completion(r, "Echo: " + prompt)
    assert provider_of(r) == "backup"


def test_a_primary_timeout_goes_to_the_fallback(chain, fake, backup):
    gw = chain(ISARTOR__L3_TIMEOUT_SECS="1")
    fake.force(hang=True, status=None)
    prompt = uniq("hang")
    t = time.monotonic()
    r = gw.post(OPENAI, oa_body(prompt))
    assert_completion(r, "Echo: " + prompt)
    assert provider_of(r) == "backup"
    assert 0.9 < time.monotonic() - t < 5


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_a_client_error_is_never_retried_nor_failed_over(chain, fake, backup, status):
    gw = chain(ISARTOR__RETRY__MAX_ATTEMPTS="3")
    fake.force(status=status)
    prompt = uniq("client-error")
    r = gw.post(OPENAI, oa_body(prompt))
    assert_openai_error(r, status)
    assert fake.count(prompt) == 1 and backup.count(prompt) == 0


def test_the_anthropic_route_fails_over_in_its_own_format(chain, fake, backup):
    gw = chain()
    fake.force(status=503)
    prompt = uniq("an-failover")
    client = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=64,
                                                   messages=[{"role": "user", "content": prompt}])
    assert raw.headers["x-isartor-provider"] == "backup"
    assert raw.parse().content[0].text == "Echo: " + prompt


def test_a_stream_fails_over_before_its_first_byte(chain, fake, backup):
    gw = chain()
    fake.force(status=503)
    prompt = uniq("stream-failover")
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    stream = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": prompt}])
    assert stream.headers["x-isartor-provider"] == "backup"
    text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
    assert text == "Echo: " + prompt


def test_a_stream_that_broke_after_its_first_byte_ends_with_an_error_and_is_not_retried(chain, fake, backup):
    gw = chain(ISARTOR__RETRY__MAX_ATTEMPTS="3")
    prompt = uniq("[[stream-error]] broken")
    result = sse_request(gw.url, OPENAI, oa_body(prompt, stream=True), gw.auth())
    assert result.status == 200
    events = [e.json() for e in result.data_events() if e.data != "[DONE]"]
    assert "error" in events[-1], events
    assert fake.count(prompt) == 1 and backup.count(prompt) == 0


def test_retry_after_is_honoured_within_the_deadline(gateway_factory, fake):
    gw = gateway_factory("openai", ISARTOR__RETRY__MAX_ATTEMPTS="2", ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
    fake.force(status=429, times=1, retry_after="1")
    prompt = uniq("retry-after")
    t = time.monotonic()
    r = gw.post(OPENAI, oa_body(prompt))
    took = time.monotonic() - t
    assert_completion(r, "Echo: " + prompt)
    assert fake.count(prompt) == 2
    assert took >= 0.95, took


def test_a_retry_after_past_the_deadline_is_the_clients(gateway_factory, fake):
    gw = gateway_factory("openai", ISARTOR__RETRY__MAX_ATTEMPTS="3", ISARTOR__RETRY__DEADLINE_SECS="2",
                         ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
    fake.force(status=429, retry_after="30")
    prompt = uniq("too-late")
    t = time.monotonic()
    r = gw.post(OPENAI, oa_body(prompt))
    assert time.monotonic() - t < 1.5
    assert_openai_error(r, 429)
    assert r.headers["retry-after"] == "30"
    assert fake.count(prompt) == 1


def test_5xx_retries_back_off_on_the_same_provider(gateway_factory, fake):
    gw = gateway_factory("openai", ISARTOR__RETRY__MAX_ATTEMPTS="3", ISARTOR__RETRY__INITIAL_BACKOFF_MS="50",
                         ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
    fake.force(status=503, times=2)
    prompt = uniq("backoff")
    r = gw.post(OPENAI, oa_body(prompt))
    assert_completion(r, "Echo: " + prompt)
    assert fake.count(prompt) == 3
    assert provider_of(r) == "openai"


def test_a_rate_limited_key_rests_and_the_next_key_answers(gateway_factory, fake):
    fake.api_keys.add(SECOND_KEY)
    try:
        gw = gateway_factory("openai", ISARTOR__EXTERNAL_LLM_API_KEYS=SECOND_KEY, ISARTOR__KEY_COOLDOWN_SECS="60",
                             ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
        fake.force(status=429, key=PROVIDER_KEY)
        prompts = [uniq("pool") for _ in range(4)]
        for p in prompts:
            assert_completion(gw.post(OPENAI, oa_body(p)), "Echo: " + p)
        keys = [c["headers"]["authorization"].split()[-1] for c in fake.calls if c["path"].endswith("/completions")]
        # The first key got one 429; from then on only the second key is used while the first rests.
        assert keys.count(PROVIDER_KEY) == 1, keys
        assert keys[-3:] == [SECOND_KEY] * 3, keys
        assert PROVIDER_KEY not in gw.log() and SECOND_KEY not in gw.log()
        health = gw.get("/health").json()["layers"]["l3"]["providers"][0]
        assert (health["keys"], health["keys_available"]) == (2, 1), health
    finally:
        fake.api_keys.discard(SECOND_KEY)


def test_round_robin_spreads_calls_over_the_pool(gateway_factory, fake):
    fake.api_keys.add(SECOND_KEY)
    try:
        gw = gateway_factory("openai", ISARTOR__EXTERNAL_LLM_API_KEYS=SECOND_KEY, ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
        for _ in range(4):
            p = uniq("rr")
            assert_completion(gw.post(OPENAI, oa_body(p)), "Echo: " + p)
        keys = [c["headers"]["authorization"].split()[-1] for c in fake.calls if c["path"].endswith("/completions")]
        assert keys.count(PROVIDER_KEY) == 2 and keys.count(SECOND_KEY) == 2, keys
    finally:
        fake.api_keys.discard(SECOND_KEY)


def test_the_breaker_opens_skips_probes_and_closes(chain, fake, backup):
    gw = chain(ISARTOR__CIRCUIT_BREAKER__FAILURES="2", ISARTOR__CIRCUIT_BREAKER__OPEN_SECS="2")

    def state() -> str:
        return gw.get("/health").json()["layers"]["l3"]["providers"][0]["circuit"]

    fake.force(status=503)
    for _ in range(2):
        r = gw.post(OPENAI, oa_body(uniq("trip")))
        assert provider_of(r) == "backup"
    assert state() == "open"
    skipped = uniq("skipped")
    r = gw.post(OPENAI, oa_body(skipped))
    assert provider_of(r) == "backup" and fake.count(skipped) == 0
    metrics = gw.get("/metrics").text
    assert 'isartor_upstream_circuit_state{provider="openai",state="open"} 1' in metrics
    time.sleep(2.2)
    assert state() == "half_open"
    fake.reset()  # the primary is back
    probe = uniq("probe")
    r = gw.post(OPENAI, oa_body(probe))
    assert provider_of(r) == "openai" and fake.count(probe) == 1
    assert state() == "closed"


def test_a_failed_probe_opens_the_breaker_again(chain, fake, backup):
    gw = chain(ISARTOR__CIRCUIT_BREAKER__FAILURES="1", ISARTOR__CIRCUIT_BREAKER__OPEN_SECS="1")
    fake.force(status=503)
    assert provider_of(gw.post(OPENAI, oa_body(uniq("trip")))) == "backup"
    time.sleep(1.2)
    probe = uniq("probe")
    assert provider_of(gw.post(OPENAI, oa_body(probe))) == "backup"
    assert fake.count(probe) == 1  # the probe went to the primary, failed, and the backup answered
    assert gw.get("/health").json()["layers"]["l3"]["providers"][0]["circuit"] == "open"


def test_every_breaker_open_answers_503_with_retry_after(gateway_factory, fake, backup):
    backup_fallback = fallback(backup.url + "/v1", provider="openai")
    gw = gateway_factory("openai", ISARTOR__FALLBACK_PROVIDERS=backup_fallback, ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY,
                         ISARTOR__CIRCUIT_BREAKER__FAILURES="1", ISARTOR__CIRCUIT_BREAKER__OPEN_SECS="30")
    fake.force(status=503)
    backup.force(status=503)
    r = gw.post(OPENAI, oa_body(uniq("both-down")))
    assert_openai_error(r, 502)
    r = gw.post(OPENAI, oa_body(uniq("all-open")))
    err = assert_openai_error(r, 503)
    assert "circuit open" in err["message"], err
    assert 1 <= int(r.headers["retry-after"]) <= 30


def test_the_fallback_gets_its_own_model(chain, fake, backup):
    gw = chain(ISARTOR__FALLBACK_PROVIDERS=fallback(backup.url, model="claude-backup-model"))
    fake.force(status=503)
    prompt = uniq("model")
    r = gw.post(OPENAI, oa_body(prompt))
    assert r.json()["model"] == "claude-backup-model"
    assert backup.calls_for(prompt)[0]["body"]["model"] == "claude-backup-model"
    assert fake.calls_for(prompt)[0]["body"]["model"] == "gpt-4o-mini"


def test_an_answer_from_the_fallback_is_cached_like_any_other(chain, fake, backup):
    gw = chain()
    fake.force(status=503)
    prompt = uniq("cached")
    assert provider_of(gw.post(OPENAI, oa_body(prompt))) == "backup"
    again = gw.post(OPENAI, oa_body(prompt))
    assert again.headers["x-isartor-layer"] == "l1a" and "x-isartor-provider" not in again.headers
    assert backup.count(prompt) == 1


def test_metrics_count_each_attempt_per_provider(chain, fake, backup):
    gw = chain()
    fake.force(status=503, times=1)
    gw.post(OPENAI, oa_body(uniq("m")))
    text = gw.get("/metrics").text
    assert 'isartor_upstream_attempts_total{provider="openai",outcome="failed"} 1' in text
    assert 'isartor_upstream_attempts_total{provider="backup",outcome="ok"} 1' in text
    assert 'isartor_upstream_responses_total{provider="openai",status="503"} 1' in text


@pytest.mark.parametrize("value, expected", [
    ("not json", "not a JSON list"),
    ('[{"url": "http://x"}]', "has no \"provider\""),
    ('[{"provider": "nope"}]', "one of openai, azure, anthropic, xai"),
    ('[{"provider": "openai", "api_kye": "sk-hidden-123456"}]', "unknown field \"api_kye\""),
    ('[{"provider": "azure", "url": "https://x"}]', "azure_deployment_id"),
])
def test_a_bad_fallback_list_stops_start_up_with_a_clear_line(gateway_factory, value, expected):
    text = config_rejection(gateway_factory("openai", start=False, ISARTOR__FALLBACK_PROVIDERS=value))
    assert "ISARTOR__FALLBACK_PROVIDERS" in text and expected in text, text
    assert "sk-hidden-123456" not in text


def test_config_shows_the_chain_with_masked_keys(gateway_factory, backup):
    gw = gateway_factory("openai", start=False, ISARTOR__FALLBACK_PROVIDERS=fallback(backup.url))
    out = run_isartor(["config"], clean_env(gw.env), gw.workdir)
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("ISARTOR__FALLBACK_PROVIDERS="))
    assert '"name":"backup"' in line and BACKUP_KEY not in line, line


def test_a_provider_past_its_quota_is_skipped_or_blocks(chain, fake, backup):
    gw = chain(ISARTOR__EXTERNAL_LLM_TOKENS_PER_DAY="3")
    first, second = uniq("quota-1"), uniq("quota-2")
    assert provider_of(gw.post(OPENAI, oa_body(first))) == "openai"  # its usage uses up 3 tokens
    assert provider_of(gw.post(OPENAI, oa_body(second))) == "backup"
    assert fake.count(second) == 0
    stream = sse_request(gw.url, OPENAI, oa_body(uniq("quota-s"), stream=True), gw.auth())
    assert stream.headers.get("x-isartor-provider") == "backup"

    blocking = chain(ISARTOR__EXTERNAL_LLM_TOKENS_PER_DAY="3", ISARTOR__PROVIDER_QUOTA_ACTION="block")
    assert provider_of(blocking.post(OPENAI, oa_body(uniq("q")))) == "openai"
    r = blocking.post(OPENAI, oa_body(uniq("q")))
    assert assert_openai_error(r, 429)["code"] == "insufficient_quota"
