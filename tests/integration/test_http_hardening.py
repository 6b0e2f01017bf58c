"""HTTP/1.1 edges a hostile or broken client reaches (#11 item 7): slowloris gets 408 at the header
timeout, an idle keep-alive connection closes quietly at the idle timeout, ambiguous framing
(Transfer-Encoding with Content-Length, codings other than chunked) is refused and the connection
closed, HTTP/1.1 without Host is 400, a client that never reads is dropped at the write timeout, a
client that half-closes after its request is closed at once, and the Bearer scheme is
case-insensitive. Raw sockets, since client libraries will not send these."""
from __future__ import annotations

import json
import socket
import time

import pytest

from conftest import assert_completion, oa_body, raw_exchange, uniq

OPENAI = "/v1/chat/completions"


def status_of(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split(b" ", 2)[1])


def body_of(reply: bytes) -> dict:
    return json.loads(reply.split(b"\r\n\r\n", 1)[1])


def request_head(gw, extra: str, version: str = "1.1", host: bool = True) -> bytes:
    auth = "".join(f"{k}: {v}\r\n" for k, v in gw.auth().items())
    return (f"POST {OPENAI} HTTP/{version}\r\n{'Host: x' + chr(13) + chr(10) if host else ''}"
            f"Content-Type: application/json\r\n{auth}{extra}\r\n").encode()


@pytest.fixture
def short_timeouts_gw(gateway_factory):
    return gateway_factory("openai", ISARTOR__HEADER_TIMEOUT_SECS="2", ISARTOR__IDLE_TIMEOUT_SECS="3",
                           ISARTOR__WRITE_TIMEOUT_SECS="1", ISARTOR__MAX_BODY_BYTES=str(32 << 20),
                           ISARTOR_LOG="debug")


def test_slowloris_gets_408_at_the_header_timeout(short_timeouts_gw):
    gw = short_timeouts_gw
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        started = time.monotonic()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        reply = b""
        try:
            for _ in range(20):  # a header byte every 0.4 s: never done
                s.sendall(b"X")
                time.sleep(0.4)
        except OSError:
            pass
        s.settimeout(5)
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        took = time.monotonic() - started
    assert status_of(reply) == 408
    assert body_of(reply)["error"]["code"] == "request_timeout"  # in the route's (OpenAI) format
    assert b"Connection: close" in reply
    assert 1.8 < took < 4.5, took


def test_slow_body_gets_408_too(short_timeouts_gw):
    gw = short_timeouts_gw
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(request_head(gw, "Content-Length: 100\r\n") + b'{"messages":')
        s.settimeout(5)
        reply = s.recv(65536)
    assert status_of(reply) == 408


def test_idle_connection_closes_quietly_at_the_idle_timeout(short_timeouts_gw):
    gw = short_timeouts_gw
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert s.recv(65536) == b""  # closed, no 408 for a client between requests
        assert 2.5 < time.monotonic() - started < 5


def test_a_client_that_half_closes_after_its_request_is_answered_and_closed_at_once(short_timeouts_gw):
    """A request and the client's FIN read together: the answer, then the close at once, not after the
    idle timeout (the FIN raised no new readiness edge, so the keep-alive read used to wait for one:
    CLOSE_WAIT for ISARTOR__IDLE_TIMEOUT_SECS, about 3 connections in 4)."""
    gw = short_timeouts_gw
    for i in range(20):
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            started = time.monotonic()
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
            assert time.monotonic() - started < 1.5, f"connection {i} closed only at the idle timeout"
        assert status_of(reply) == 200


@pytest.mark.parametrize("framing,status", [
    ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),
    ("Transfer-Encoding: gzip\r\nContent-Length: 5\r\n", 400),
    ("Transfer-Encoding: xchunked\r\n", 501),
    ("Transfer-Encoding: gzip\r\n", 501),
    ("Transfer-Encoding: chunked, identity\r\n", 501),
    ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400),  # beast: "bad Transfer-Encoding"
], ids=["chunked+length", "gzip+length", "xchunked", "gzip", "chunked-identity", "twice"])
def test_ambiguous_framing_is_refused_and_the_connection_closed(gw_openai, framing, status):
    # What follows would be a second, smuggled request if the framing were read the other way.
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = raw_exchange(gw_openai, request_head(gw_openai, framing) + b"0\r\n\r\n" + smuggled, timeout=5)
    assert status_of(reply) == status
    assert reply.count(b"HTTP/1.1 ") == 1, reply  # nothing answered after it: closed
    assert "error" in body_of(reply)
    assert gw_openai.get("/healthz").status_code == 200


def test_chunked_alone_is_served(gw_openai):
    prompt = uniq("chunked")
    payload = json.dumps(oa_body(prompt)).encode()
    chunked = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
    reply = raw_exchange(gw_openai, request_head(gw_openai, "Transfer-Encoding: chunked\r\nConnection: close\r\n") + chunked)
    assert status_of(reply) == 200, reply[:300]


def test_http11_without_host_is_400_and_http10_without_host_is_served(gw_openai):
    prompt = uniq("hostless")
    payload = json.dumps(oa_body(prompt)).encode()
    length = f"Content-Length: {len(payload)}\r\n"
    reply = raw_exchange(gw_openai, request_head(gw_openai, length, host=False) + payload, timeout=5)
    assert status_of(reply) == 400
    assert "Host" in body_of(reply)["error"]["message"]
    reply = raw_exchange(gw_openai, request_head(gw_openai, length, version="1.0", host=False) + payload, timeout=5)
    assert reply.startswith(b"HTTP/1.0 200"), reply[:300]


def test_client_that_never_reads_is_dropped_at_the_write_timeout(short_timeouts_gw):
    gw = short_timeouts_gw
    # Larger than any socket send buffer (tcp_wmem allows 4 MB at most).
    prompt = uniq("unread") + " " + "x" * 10_000_000
    assert_completion(gw.post(OPENAI, oa_body(prompt), timeout=30), f"Echo: {prompt}")  # now cached
    payload = json.dumps(oa_body(prompt)).encode()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", gw.port))
    s.settimeout(10)
    try:
        s.sendall(request_head(gw, f"Content-Length: {len(payload)}\r\n") + payload)
        time.sleep(3)  # reads nothing: the 10 MB answer cannot be written
        received = b""
        try:
            while chunk := s.recv(1 << 20):
                received += chunk
        except ConnectionResetError:
            pass
    finally:
        s.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) < 10_000_000, "the whole answer arrived: the write did not time out"
    assert gw.get("/healthz").status_code == 200


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(gw_openai, scheme):
    prompt = uniq("scheme")
    resp = gw_openai.post(OPENAI, oa_body(prompt), key=None, headers={"Authorization": f"{scheme} {gw_openai.key}"})
    assert_completion(resp, f"Echo: {prompt}")
