"""Per-request cache control (#12): Cache-Control no-cache / no-store / max-age, x-isartor-cache: off,
namespaces and session-scoped caches, and the X-Isartor-Cache answer header, on every route and
for streamed requests. (The semantic cache's side is in test_semantic.py.)"""
from __future__ import annotations

import time

import pytest

from conftest import an_body, assert_layer, native_body, oa_body, uniq

ROUTES = {"/v1/chat/completions": oa_body, "/v1/messages": an_body, "/api/chat": native_body}


def ask(gw, prompt: str, path: str = "/v1/chat/completions", stream: bool = False, **headers: str):
    make = ROUTES[path]
    if stream:
        result = gw.stream(path, make(prompt, stream=True), headers=headers)
        assert result.status == 200, result.raw[:300]
        return result.headers["x-isartor-layer"], result.headers["x-isartor-cache"]
    r = gw.post(path, make(prompt), headers=headers)
    assert r.status_code == 200, r.text
    return r.headers["X-Isartor-Layer"], r.headers["X-Isartor-Cache"]


@pytest.mark.parametrize("path", list(ROUTES))
def test_cache_header_says_miss_then_hit(gw_openai, path):
    prompt = uniq("cache header")
    assert ask(gw_openai, prompt, path) == ("l3", "miss")
    assert ask(gw_openai, prompt, path) == ("l1a", "hit")


def test_no_cache_asks_upstream_and_stores_the_fresh_answer(gw_openai):
    prompt = uniq("no-cache")
    ask(gw_openai, prompt)
    assert ask(gw_openai, prompt, **{"Cache-Control": "no-cache"}) == ("l3", "bypass")
    assert gw_openai.fake.count(prompt) == 2
    assert ask(gw_openai, prompt) == ("l1a", "hit")


def test_no_store_answers_from_the_cache_but_keeps_nothing(gw_openai):
    prompt = uniq("no-store")
    assert ask(gw_openai, prompt, **{"Cache-Control": "no-store"}) == ("l3", "miss")
    assert ask(gw_openai, prompt) == ("l3", "miss")  # nothing was kept
    assert ask(gw_openai, prompt, **{"Cache-Control": "no-store"}) == ("l1a", "hit")


@pytest.mark.parametrize("stream", [False, True])
def test_isartor_cache_off_bypasses_lookup_and_store(gw_openai, stream):
    prompt = uniq("off")
    ask(gw_openai, prompt, stream=stream)
    assert ask(gw_openai, prompt, stream=stream, **{"x-isartor-cache": "off"}) == ("l3", "bypass")
    other = uniq("off-only")
    ask(gw_openai, other, stream=stream, **{"x-isartor-cache": "off"})
    assert ask(gw_openai, other, stream=stream) == ("l3", "miss")


def test_max_age_sets_the_entry_lifetime(gw_openai):
    prompt = uniq("max-age")
    ask(gw_openai, prompt, **{"Cache-Control": "max-age=1"})
    assert ask(gw_openai, prompt) == ("l1a", "hit")
    time.sleep(1.2)
    assert ask(gw_openai, prompt) == ("l3", "miss")  # its own second, not the configured 300 s
    zero = uniq("max-age-0")
    ask(gw_openai, zero, **{"Cache-Control": "max-age=0"})
    assert ask(gw_openai, zero) == ("l3", "miss")


def test_namespaces_partition_the_cache(gw_openai):
    prompt = uniq("namespace")
    ask(gw_openai, prompt, **{"x-isartor-cache-namespace": "team-a"})
    assert ask(gw_openai, prompt, **{"x-isartor-cache-namespace": "team-a"}) == ("l1a", "hit")
    assert ask(gw_openai, prompt, **{"x-isartor-cache-namespace": "team-b"}) == ("l3", "miss")
    assert ask(gw_openai, prompt) == ("l3", "miss")


def test_session_scope_partitions_by_session_header(shared_gateway):
    gw = shared_gateway("openai", ISARTOR__CACHE_SCOPE="session")
    prompt = uniq("session")
    ask(gw, prompt, **{"x-session-id": "s1"})
    assert ask(gw, prompt, **{"x-isartor-session-id": "s1"}) == ("l1a", "hit")
    assert ask(gw, prompt, **{"x-session-id": "s2"}) == ("l3", "miss")
    assert ask(gw, prompt) == ("l3", "miss")
    # Without the session scope the same headers share one cache.
    shared = uniq("session-unscoped")
    ask(shared_gateway("openai"), shared, **{"x-session-id": "s1"})
    assert ask(shared_gateway("openai"), shared, **{"x-session-id": "s2"}) == ("l1a", "hit")
