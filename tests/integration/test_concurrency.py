"""Many clients at once, and shutting down while clients are connected."""
from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import (an_body, answer_for, assert_anthropic_stream, assert_completion, assert_openai_stream, oa_body,
                      long_uniq, raw_post, sse_request, uniq)


def test_32_concurrent_streams(gw_openai):
    prompts = [long_uniq(f"concurrent {i}") for i in range(32)]
    barrier = threading.Barrier(len(prompts))

    def one(i: int):
        barrier.wait(timeout=10)
        if i % 2:
            return sse_request(gw_openai.url, "/v1/messages", an_body(prompts[i], stream=True), gw_openai.auth(), 30)
        return sse_request(gw_openai.url, "/v1/chat/completions", oa_body(prompts[i], stream=True),
                           gw_openai.auth(), 30)

    t0 = time.monotonic()
    with ThreadPoolExecutor(len(prompts)) as pool:
        results = list(pool.map(one, range(len(prompts))))
    elapsed = time.monotonic() - t0
    for i, result in enumerate(results):
        (assert_anthropic_stream if i % 2 else assert_openai_stream)(result, answer_for(prompts[i]))
    for prompt in prompts:
        assert gw_openai.fake.count(prompt) == 1
    # Each stream takes ~0.25 s upstream; served one after another they would take ~8 s.
    assert elapsed < 4.0, f"32 concurrent streams took {elapsed:.2f}s: the gateway serialises them"


def test_concurrent_identical_requests(gw_anthropic):
    """The same prompt from many clients at once: everyone gets the right answer."""
    prompt = uniq("stampede")
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: requests.post(gw_anthropic.url + "/v1/chat/completions", json=oa_body(prompt),
                                                        headers=gw_anthropic.auth(), timeout=10), range(16)))
    for r in results:
        assert_completion(r, answer_for(prompt))
    assert 1 <= gw_anthropic.fake.count(prompt) <= 16
    r = gw_anthropic.post("/v1/chat/completions", oa_body(prompt))
    assert r.headers["x-isartor-layer"] == "l1a"


def test_graceful_shutdown_finishes_in_flight_request(gateway_factory):
    gw = gateway_factory("openai")
    prompt = uniq("[[slow:1.5]] in flight")
    outcome: dict = {}

    def call():
        try:
            outcome["response"] = requests.post(gw.url + "/v1/chat/completions", json=oa_body(prompt), timeout=15)
        except requests.RequestException as e:
            outcome["error"] = e

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 5
    while gw.fake.count(prompt) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gw.fake.count(prompt) == 1, "the request never reached the provider"
    gw.terminate()
    worker.join(timeout=15)
    assert "error" not in outcome, outcome.get("error")
    assert_completion(outcome["response"], answer_for(prompt))
    assert gw.wait_exit(10) == 0, gw.log_tail()


@pytest.mark.parametrize("provider,path", [("openai", "/v1/chat/completions"), ("anthropic", "/v1/messages")])
def test_requests_outliving_the_shutdown_grace_end_with_an_error_in_their_format(gateway_factory, provider, path):
    """When the grace ends, a stream still running gets a terminal error event in its route's
    format (not a silent cut), and a request not yet answered a 503; then the process exits 0."""
    gw = gateway_factory(provider, ISARTOR__SHUTDOWN_GRACE_SECS="1", ISARTOR_LOG="debug")
    make = oa_body if path.startswith("/v1/chat") else an_body
    stalled = uniq("cut stream") + " [[stall:8]]"
    waiting = uniq("cut waiting") + " [[slow:8]]"
    outcome: dict = {}
    streamer = threading.Thread(target=lambda: outcome.setdefault(
        "stream", sse_request(gw.url, path, make(stalled, stream=True), gw.auth(), 15)))
    poster = threading.Thread(target=lambda: outcome.setdefault(
        "post", requests.post(gw.url + path, json=make(waiting), headers=gw.auth(), timeout=15)))
    streamer.start()
    poster.start()
    deadline = time.monotonic() + 5
    while (gw.fake.count(stalled) == 0 or gw.fake.count(waiting) == 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the stream's first events are out
    started = time.monotonic()
    gw.terminate()
    streamer.join(timeout=15)
    poster.join(timeout=15)
    assert time.monotonic() - started < 4
    raw = outcome["stream"].raw.decode(errors="replace")
    assert "shutting down" in raw, raw[-600:]
    if provider == "anthropic":
        assert "event: error" in raw, raw[-600:]
    assert outcome["post"].status_code == 503, outcome["post"].text
    assert "shutting down" in outcome["post"].text
    assert gw.wait_exit(10) == 0, gw.log_tail()


def test_graceful_shutdown_finishes_in_flight_stream(gateway_factory):
    gw = gateway_factory("anthropic")
    prompt = uniq("[[slow:0.5]] streaming in flight")
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.setdefault(
        "result", sse_request(gw.url, "/v1/chat/completions", oa_body(prompt, stream=True), {}, 15)))
    worker.start()
    deadline = time.monotonic() + 5
    while gw.fake.count(prompt) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    gw.terminate()
    worker.join(timeout=15)
    assert_openai_stream(outcome["result"], answer_for(prompt))
    assert gw.wait_exit(10) == 0, gw.log_tail()


def test_shutdown_with_idle_keep_alive_connection(gateway_factory):
    """An idle keep-alive client must not hold the process up."""
    gw = gateway_factory("openai")
    idle = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    half_open = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    half_open.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Len")
    gw.terminate()
    assert gw.wait_exit(10) == 0, gw.log_tail()
    idle.close()
    half_open.close()


def test_client_hanging_up_cancels_the_upstream_call(gateway_factory):
    """A client that closes its connection while the provider is still working cancels the call:
    the gateway notices at once (not when the provider answers) and caches nothing."""
    gw = gateway_factory("openai", ISARTOR_LOG="debug")
    prompt = uniq("[[slow:3]] hang up")
    since = gw.log_size()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(raw_post(gw, oa_body(prompt)))
        deadline = time.monotonic() + 5
        while gw.fake.count(prompt) == 0:
            assert time.monotonic() < deadline, "the request never reached the provider"
            time.sleep(0.02)
    closed = time.monotonic()
    while "request cancelled" not in gw.log()[since:]:
        assert time.monotonic() - closed < 1.5, gw.log_tail(since)
        time.sleep(0.02)
    # The provider's late answer was dropped, not cached: asking again reaches the provider again.
    assert_completion(gw.post("/v1/chat/completions", oa_body(prompt), timeout=15), answer_for(prompt))
    assert gw.fake.count(prompt) == 2
    # The gateway still serves keep-alive clients normally afterwards.
    other = uniq("after hang up")
    assert_completion(gw.post("/v1/chat/completions", oa_body(other)), answer_for(other))


def open_sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except FileNotFoundError:  # closed while we were listing
            pass
    return count


def test_clients_closing_idle_keep_alive_connections_release_them(gateway_factory):
    """A client that closes a keep-alive connection after its answer (what connection pools do)
    must free the gateway's socket at once, not after the idle timeout."""
    gw = gateway_factory("openai", ISARTOR__IDLE_TIMEOUT_SECS="60")
    prompt = uniq("idle close")
    assert_completion(gw.post("/v1/chat/completions", oa_body(prompt)), answer_for(prompt))
    request = raw_post(gw, oa_body(prompt))
    time.sleep(0.3)
    baseline = open_sockets(gw.proc.pid)
    clients = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        s.sendall(request)
        assert s.recv(65536).startswith(b"HTTP/1.1 200"), "a cache hit was expected"
        clients.append(s)
    assert open_sockets(gw.proc.pid) >= baseline + 20
    for s in clients:
        s.close()
    deadline = time.monotonic() + 2
    while open_sockets(gw.proc.pid) > baseline:
        assert time.monotonic() < deadline, f"{open_sockets(gw.proc.pid) - baseline} closed connections still held"
        time.sleep(0.05)
