"""The fault matrix (#11): every way a provider can fail, on the OpenAI and the Anthropic route, for
plain and streamed requests. Each case asserts what the client receives (an error in the route's own
format, or for a stream that already started a terminal error event), that the gateway stays
healthy, and that nothing half-finished was cached (the same request reaches the provider again).
The faults come from the fake provider's magic strings (tests/fakes/fake_provider.py)."""
from __future__ import annotations

import json
import socket
import time

import pytest

from conftest import CHUNK_DELAY, FakeProvider, Gateway, an_body, oa_body, uniq

ROUTES = {"openai": ("/v1/chat/completions", oa_body), "anthropic": ("/v1/messages", an_body)}

# (id, magic string, expected status of a plain request)
PLAIN_FAULTS = [
    ("slow-first-byte", "[[slow:4]]", 504),
    ("reset-before-headers", "[[reset]]", 502),
    ("reset-mid-body", "[[cut]]", 502),
    ("429", "[[fail:429]]", 429),
    ("429-retry-after", "[[fail:429]] [[retry-after:7]]", 429),
    ("500", "[[fail:500]]", 502),
    ("502", "[[fail:502]]", 502),
    ("503", "[[fail:503]]", 502),
    ("503-retry-after", "[[fail:503]] [[retry-after:3]]", 502),
    ("malformed-json", "[[garbage]]", 502),
    ("never-answers", "[[hang]]", 504),
    ("gzip-bomb", "[[gzip-bomb]]", 502),
]

# (id, magic string): streams that start and then fail
STREAM_FAULTS = [
    ("reset-mid-stream", "[[cut]]"),
    ("no-terminal-event", "[[no-terminal]]"),
    ("silence-mid-stream", "[[stall:8]]"),
]


@pytest.fixture(scope="module")
def gateways(request):
    """One gateway per route's provider, with a 2 s upstream timeout and a 1 MiB answer cap."""
    fake = FakeProvider(chunk_delay=CHUNK_DELAY).start()
    made = {}
    try:
        for provider in ROUTES:
            made[provider] = Gateway(provider, fake, {"ISARTOR__L3_TIMEOUT_SECS": "2",
                                                      "ISARTOR__MAX_RESPONSE_BYTES": str(1 << 20),
                                                      "ISARTOR__CACHE_MODE": "exact"}).start()
        yield made
    finally:
        for gw in made.values():
            gw.stop()
        fake.stop()


def assert_route_error(provider: str, status: int, body: dict) -> None:
    if provider == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] and body["error"]["message"], body
    else:
        assert body["error"]["message"] and body["error"]["type"], body


def assert_not_cached_and_healthy(gw, make, path, prompt: str, stream: bool = False) -> None:
    calls = gw.fake.count(prompt)
    if stream:
        gw.stream(path, make(prompt, stream=True), timeout=20)
    else:
        gw.post(path, make(prompt), timeout=20)
    assert gw.fake.count(prompt) == calls + 1, "a failed answer was served from the cache"
    assert gw.get("/healthz").status_code == 200
    assert gw.alive()


@pytest.mark.parametrize("provider", ROUTES)
@pytest.mark.parametrize("fault,magic,status", PLAIN_FAULTS, ids=[f[0] for f in PLAIN_FAULTS])
def test_plain_request(gateways, provider, fault, magic, status):
    gw = gateways[provider]
    path, make = ROUTES[provider]
    prompt = uniq(fault) + " " + magic
    started = time.monotonic()
    resp = gw.post(path, make(prompt), timeout=20)
    assert resp.status_code == status, resp.text[:300]
    assert_route_error(provider, status, resp.json())
    assert time.monotonic() - started < 6  # the 2 s timeout, not the fault's own length
    assert gw.env["ISARTOR__EXTERNAL_LLM_API_KEY"] not in resp.text  # the provider's echo, redacted
    assert_not_cached_and_healthy(gw, make, path, prompt)


@pytest.mark.parametrize("provider", ROUTES)
@pytest.mark.parametrize("fault,magic", STREAM_FAULTS, ids=[f[0] for f in STREAM_FAULTS])
def test_stream_that_fails_after_it_started(gateways, provider, fault, magic):
    gw = gateways[provider]
    path, make = ROUTES[provider]
    prompt = uniq(fault) + " " + magic
    result = gw.stream(path, make(prompt, stream=True), timeout=20)
    raw = result.raw.decode(errors="replace")
    assert result.status == 200  # the stream had started: the failure is an event in it
    if provider == "anthropic":
        assert "event: error" in raw, raw[-500:]
        assert "message_stop" not in raw
    else:
        assert '"error"' in raw, raw[-500:]
        assert "[DONE]" not in raw
    assert_not_cached_and_healthy(gw, make, path, prompt, stream=True)


@pytest.mark.parametrize("provider", ROUTES)
@pytest.mark.parametrize("fault,magic,status", [f for f in PLAIN_FAULTS if f[0] in ("429", "503", "reset-before-headers")],
                         ids=["429", "503", "reset-before-headers"])
def test_stream_that_fails_before_it_started(gateways, provider, fault, magic, status):
    gw = gateways[provider]
    path, make = ROUTES[provider]
    prompt = uniq(fault + "-stream") + " " + magic
    result = gw.stream(path, make(prompt, stream=True), timeout=20)
    assert result.status == status
    assert_route_error(provider, status, json.loads(result.raw))
    assert_not_cached_and_healthy(gw, make, path, prompt, stream=True)


@pytest.mark.parametrize("provider", ROUTES)
def test_endless_stream_ends_upstream_when_the_client_leaves(gateways, provider):
    gw = gateways[provider]
    path, make = ROUTES[provider]
    prompt = uniq("endless") + " [[endless]]"
    body = json.dumps(make(prompt, stream=True)).encode()
    auth = "".join(f"{k}: {v}\r\n" for k, v in gw.auth().items())
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
            f"anthropic-version: 2023-06-01\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(head + body)
        received = b""
        deadline = time.monotonic() + 5
        while received.count(b"data:") < 20 and time.monotonic() < deadline:
            received += s.recv(65536)
        assert received.startswith(b"HTTP/1.1 200"), received[:300]
        assert received.count(b"data:") >= 20  # streamed as it comes, not held back
    left = time.monotonic()
    while prompt not in gw.fake.abandoned and time.monotonic() - left < 5:
        time.sleep(0.05)
    assert prompt in gw.fake.abandoned, "the upstream stream went on after the client left"
    assert time.monotonic() - left < 2
    assert gw.get("/healthz").status_code == 200 and gw.alive()
