#!/usr/bin/env python3
"""A local fake of the cloud LLM APIs Isartor talks to, speaking their real wire protocols.

One HTTP/1.1 server (keep-alive, chunked SSE) serves every dialect:
  OpenAI / xAI    POST /v1/chat/completions                        Authorization: Bearer <key>
  Azure OpenAI    POST /openai/deployments/{dep}/chat/completions   api-key: <key>, ?api-version=
  Anthropic       POST /v1/messages        x-api-key (or Authorization: Bearer) + anthropic-version
  Model list      GET  /v1/models                                   Authorization: Bearer <key>
  Embeddings      POST /v1/embeddings    (OpenAI) 8-d vectors from the text's bytes, float or base64
  Token count     POST /v1/messages/count_tokens  (Anthropic) {"input_tokens": words + 10}
  Call log        GET  /_fake/calls, POST /_fake/reset              (no auth; not recorded)

The answer is "Echo: " + the text of the last user message; the model is echoed from the request.
As Anthropic does, a request with "thinking": {"type": "enabled"} gets a thinking block (with a
signature) before the text, and one with a cache_control marker anywhere reports
cache_creation_input_tokens / cache_read_input_tokens in its usage.
Magic strings in the last user message steer it:
  [[fail:503]]  that HTTP status with the dialect's error JSON: the type and code the real API
                gives for that status (OpenAI 400 context_length_exceeded, 429 rate_limit_exceeded
                with x-ratelimit-* headers; Anthropic rate_limit_error with anthropic-ratelimit-*),
                its message containing the API key that was sent, so tests can prove the gateway
                redacts it
  [[slow:2.5]]  sleep that many seconds before answering
  [[tool]]      answer with a get_weather tool call ({"city":"Paris"}), as deltas when streaming
                (Anthropic: a request whose tool_choice forces a tool gets that tool's call, its
                input {"answer": the usual text})
  [[cut]]       send part of the answer, then close the connection abruptly
  [[garbage]]   200 with a body that is not JSON
  [[gzip-bomb]] 200, Content-Encoding: gzip, 64 KiB on the wire that inflate to 64 MiB of JSON-ish text
  [[linger:3]]  streams only: keep the response open that many seconds after the terminal event
  [[stream-error]]  streams only: after two content events, an in-band error event quoting the
                sent API key (as OpenAI's "Incorrect API key provided" does), then the end
  [[stall:4]]   streams only: after two content events, silence for that many seconds, then the rest
  [[tail:0.3]]  streams only: wait that long between the terminal event and the body's last chunk
  [[retry-after:7]]  with [[fail:N]]: a Retry-After header of that many seconds
  [[reset]]     read the request, then reset the connection before any response byte
  [[hang]]      read the request, then never answer (until the gateway gives up)
  [[no-terminal]]  streams only: every event but the terminal one ([DONE] / message_stop), then
                the body's normal end
  [[endless]]   streams only: content events every 20 ms until the reader goes away; the
                prompt is then listed in fake.abandoned

Outages of a whole provider (or of one key), for failover tests, whatever the prompt:
  fake.force(status=503, times=2, key=None, retry_after=None, hang=False)  the next `times` chat
                calls (all when None) with `key` (any when None) get that status (or hang); rules
                are matched in the order added, cleared by reset()

Use from Python: `fake = FakeProvider().start(); fake.url; fake.calls; fake.reset(); fake.stop()`.
Use as a script (benchmarks): `python3 fake_provider.py --port 0 --latency-ms 50` prints the port.
"""
from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import functools
import json
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

DEFAULT_API_KEY = "sk-test-fake-0123456789abcdef"
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = '{"city":"Paris"}'
MODELS = ["gpt-4o-mini", "gpt-4o", "grok-2-latest", "claude-haiku-4-5"]

_AZURE_PATH = re.compile(r"/openai/deployments/([^/]+)/chat/completions")
_FAIL = re.compile(r"\[\[fail:(\d{3})\]\]")
_SLOW = re.compile(r"\[\[slow:(\d+(?:\.\d+)?)\]\]")
_LINGER = re.compile(r"\[\[linger:(\d+(?:\.\d+)?)\]\]")
_TAIL = re.compile(r"\[\[tail:(\d+(?:\.\d+)?)\]\]")
_RETRY_AFTER = re.compile(r"\[\[retry-after:(\d+)\]\]")
_STALL = re.compile(r"\[\[stall:(\d+(?:\.\d+)?)\]\]")


# ----------------------------------------------------------------------------------------------
# Request helpers shared by tests
# ----------------------------------------------------------------------------------------------

def content_text(content: Any) -> str:
    """Text of an OpenAI or Anthropic message content: a string, or text parts/blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(body: Any) -> str:
    """Text of the last user message of an OpenAI or Anthropic request body ("" if none)."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return ""
    for message in reversed(body["messages"]):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def answer_for(prompt: str) -> str:
    """The deterministic answer the fake gives to a last user message."""
    return "Echo: " + prompt


def split_pieces(text: str, min_pieces: int = 4, max_pieces: int = 8) -> list[str]:
    """Splits text into between min_pieces and max_pieces non-empty pieces (fewer only if short)."""
    count = max(1, min(len(text), max(min_pieces, min(max_pieces, len(text) // 12))))
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _prompt_tokens(body: dict) -> int:
    total = _tokens(content_text(body.get("system")))
    for message in body.get("messages", []):
        if isinstance(message, dict):
            total += _tokens(content_text(message.get("content")))
    return total


@functools.cache
def _gzip_bomb() -> bytes:
    """64 MiB of one JSON string, gzipped (about 64 KiB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    block = b" " * (1 << 20)
    parts = [z.compress(b'{"choices": [{"message": {"content": "')]
    parts += [z.compress(block) for _ in range(64)]
    parts.append(z.compress(b'"}}]}') + z.flush())
    return b"".join(parts)


class _Plan:
    """What the magic strings in the prompt ask for."""

    def __init__(self, prompt: str):
        fail = _FAIL.search(prompt)
        slow = _SLOW.search(prompt)
        self.fail_status = int(fail.group(1)) if fail else None
        self.slow_secs = float(slow.group(1)) if slow else 0.0
        linger = _LINGER.search(prompt)
        self.linger_secs = float(linger.group(1)) if linger else 0.0
        tail = _TAIL.search(prompt)
        self.tail_secs = float(tail.group(1)) if tail else 0.0
        stall = _STALL.search(prompt)
        self.stall_secs = float(stall.group(1)) if stall else 0.0
        self.tool = "[[tool]]" in prompt
        self.cut = "[[cut]]" in prompt
        self.garbage = "[[garbage]]" in prompt
        self.gzip_bomb = "[[gzip-bomb]]" in prompt
        retry_after = _RETRY_AFTER.search(prompt)
        self.retry_after = retry_after.group(1) if retry_after else None
        self.reset = "[[reset]]" in prompt
        self.hang = "[[hang]]" in prompt
        self.no_terminal = "[[no-terminal]]" in prompt
        self.endless = "[[endless]]" in prompt
        self.stream_error = "[[stream-error]]" in prompt


# ----------------------------------------------------------------------------------------------
# Dialects: auth, validation, error shapes and answer bodies of each provider API
# ----------------------------------------------------------------------------------------------

class _OpenAIDialect:
    name = "openai"

    def error_body(self, message: str, type_: str, code: Any = None, param: Any = None) -> dict:
        return {"error": {"message": message, "type": type_, "param": param, "code": code}}

    def sent_key(self, headers) -> str:
        auth = headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else ""

    def auth_error(self, key: str) -> tuple[int, dict]:
        if not key:
            return 401, self.error_body(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error", None)
        return 401, self.error_body(f"Incorrect API key provided: {key[:5]}*****.",
                                    "invalid_request_error", "invalid_api_key")

    def preflight(self, query: dict) -> tuple[int, dict] | None:
        return None

    def validate(self, body: Any, require_model: bool = True) -> tuple[int, dict] | None:
        if not isinstance(body, dict):
            return 400, self.error_body("We could not parse the JSON body of your request.",
                                        "invalid_request_error")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, self.error_body("Missing required parameter: 'messages'.",
                                        "invalid_request_error", "missing_required_parameter", "messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                return 400, self.error_body(f"Invalid value for 'messages[{i}].role'.",
                                            "invalid_request_error", "invalid_value", f"messages[{i}].role")
        if require_model and not isinstance(body.get("model"), str):
            return 400, self.error_body("Missing required parameter: 'model'.",
                                        "invalid_request_error", "missing_required_parameter", "model")
        return None

    # (type, code, param) OpenAI gives with each status
    FAILURES = {400: ("invalid_request_error", "context_length_exceeded", "messages"),
                401: ("invalid_request_error", "invalid_api_key", None),
                403: ("invalid_request_error", "unsupported_country_region_territory", None),
                404: ("invalid_request_error", "model_not_found", None),
                409: ("invalid_request_error", None, None),
                422: ("invalid_request_error", None, None),
                429: ("requests", "rate_limit_exceeded", None)}

    def failure(self, status: int, key: str) -> dict:
        type_, code, param = self.FAILURES.get(status, ("server_error", None, None))
        return self.error_body(f"Simulated upstream failure {status} (request made with key {key})", type_, code,
                               param)

    def rate_limit_headers(self, retry_after: str | None) -> dict:
        return {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry_after or 1}s", "x-ratelimit-limit-tokens": "30000",
                "x-ratelimit-remaining-tokens": "29000", "x-ratelimit-reset-tokens": "2ms"}

    def model(self, body: dict, route_param: str | None) -> str:
        return body.get("model") or route_param or "gpt-4o-mini"

    def completion(self, body: dict, model: str, text: str | None, tool: bool) -> dict:
        message: dict = {"role": "assistant", "content": text, "refusal": None}
        if tool:
            message["content"] = None
            message["tool_calls"] = [{"id": "call_fake_" + uuid.uuid4().hex[:12], "type": "function",
                                      "function": {"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS}}]
        completion_tokens = _tokens(text or TOOL_ARGUMENTS)
        prompt_tokens = _prompt_tokens(body)
        return {
            "id": "chatcmpl-fake" + uuid.uuid4().hex[:20], "object": "chat.completion",
            "created": int(time.time()), "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if tool else "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def stream_error(self, message: str) -> bytes:
        return b"data: " + json.dumps({"error": {"message": message, "type": "server_error", "param": None,
                                                 "code": None}}).encode() + b"\n\n"

    def stream(self, body: dict, model: str, text: str, tool: bool) -> Iterable[tuple[str, bytes]]:
        """Yields (kind, sse bytes); kind "content" marks the events the fake spaces out in time."""
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-fake" + uuid.uuid4().hex[:20], "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model, "system_fingerprint": "fp_fake"}

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            payload = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None,
                                           "finish_reason": finish}])
            if include_usage:
                payload["usage"] = None
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        if tool:
            yield "head", chunk({"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": "call_fake_" + uuid.uuid4().hex[:12], "type": "function",
                 "function": {"name": TOOL_NAME, "arguments": ""}}]})
            for piece in split_pieces(TOOL_ARGUMENTS):
                yield "content", chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            yield "tail", chunk({}, "tool_calls")
        else:
            yield "head", chunk({"role": "assistant", "content": "", "refusal": None})
            for piece in split_pieces(text):
                yield "content", chunk({"content": piece})
            yield "tail", chunk({}, "stop")
        if include_usage:
            prompt_tokens, completion_tokens = _prompt_tokens(body), _tokens(text or TOOL_ARGUMENTS)
            payload = dict(base, choices=[], usage={"prompt_tokens": prompt_tokens,
                                                    "completion_tokens": completion_tokens,
                                                    "total_tokens": prompt_tokens + completion_tokens})
            yield "tail", b"data: " + json.dumps(payload).encode() + b"\n\n"
        yield "tail", b"data: [DONE]\n\n"


class _AzureDialect(_OpenAIDialect):
    name = "azure"

    def sent_key(self, headers) -> str:
        return headers.get("api-key", "").strip()

    def auth_error(self, key: str) -> tuple[int, dict]:
        return 401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key "
                                                         "or wrong API endpoint. Make sure to provide a "
                                                         "valid key for an active subscription and use a "
                                                         "correct regional API endpoint for your resource."}}

    def preflight(self, query: dict) -> tuple[int, dict] | None:
        if not query.get("api-version"):
            return 400, self.error_body("Missing required query parameter: api-version",
                                        "invalid_request_error", "BadRequest", "api-version")
        return None

    def validate(self, body: Any, require_model: bool = False) -> tuple[int, dict] | None:
        return super().validate(body, require_model=False)


class _AnthropicDialect:
    name = "anthropic"

    def error_body(self, message: str, type_: str) -> dict:
        return {"type": "error", "error": {"type": type_, "message": message}}

    def sent_key(self, headers) -> str:
        # The API takes x-api-key; anthropic SDK >= 2 sends the key as "Authorization: Bearer" instead.
        return headers.get("x-api-key", "").strip() or _OPENAI.sent_key(headers)

    def auth_error(self, key: str) -> tuple[int, dict]:
        return 401, self.error_body("invalid x-api-key", "authentication_error")

    def preflight(self, query: dict) -> tuple[int, dict] | None:
        return None

    def check_version(self, headers) -> tuple[int, dict] | None:
        if not headers.get("anthropic-version"):
            return 400, self.error_body("anthropic-version: header is required", "invalid_request_error")
        return None

    def validate(self, body: Any) -> tuple[int, dict] | None:
        if not isinstance(body, dict):
            return 400, self.error_body("There was an issue with the request body: not an object",
                                        "invalid_request_error")
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return 400, self.error_body(f"{field}: Field required", "invalid_request_error")
        if not isinstance(body["max_tokens"], int) or isinstance(body["max_tokens"], bool):
            return 400, self.error_body("max_tokens: Input should be a valid integer", "invalid_request_error")
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return 400, self.error_body("messages: at least one message is required", "invalid_request_error")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                return 400, self.error_body(f"messages.{i}.role: Input should be 'user' or 'assistant'",
                                            "invalid_request_error")
        return None

    def failure(self, status: int, key: str) -> dict:
        type_ = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        return self.error_body(f"Simulated upstream failure {status} (request made with key {key})", type_)

    def rate_limit_headers(self, retry_after: str | None) -> dict:
        return {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": "2026-12-02T00:00:07Z"}

    def model(self, body: dict, route_param: str | None) -> str:
        return body["model"]

    def _usage(self, body: dict, text: str) -> dict:
        usage = {"input_tokens": _prompt_tokens(body), "output_tokens": _tokens(text)}
        if '"cache_control"' in json.dumps(body):  # prompt caching: the marked prefix was written
            usage.update(cache_creation_input_tokens=usage["input_tokens"], cache_read_input_tokens=0)
        return usage

    @staticmethod
    def _thinking(body: dict) -> tuple[str, str] | None:
        """Extended thinking: the (thinking, signature) an answer opens with when the request enables it."""
        if (body.get("thinking") or {}).get("type") != "enabled":
            return None
        return "Considering: " + last_user_text(body), "sig_fake" + uuid.uuid4().hex[:24]

    @staticmethod
    def _tool_use(body: dict, text: str | None, tool: bool) -> tuple[str, str] | None:
        """(name, input JSON) of the tool_use an answer is: the forced tool of a
        tool_choice {"type": "tool"} (its input {"answer": the text}), or get_weather for [[tool]]."""
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            return choice.get("name", ""), json.dumps({"answer": text or ""})
        return (TOOL_NAME, TOOL_ARGUMENTS) if tool else None

    def completion(self, body: dict, model: str, text: str | None, tool: bool) -> dict:
        use = self._tool_use(body, text, tool)
        tool = use is not None
        if use:
            content = [{"type": "tool_use", "id": "toolu_fake" + uuid.uuid4().hex[:16], "name": use[0],
                        "input": json.loads(use[1])}]
        else:
            content = [{"type": "text", "text": text}]
        if thinking := self._thinking(body):
            content.insert(0, {"type": "thinking", "thinking": thinking[0], "signature": thinking[1]})
        return {"id": "msg_fake" + uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
                "model": model, "content": content, "stop_reason": "tool_use" if tool else "end_turn",
                "stop_sequence": None, "usage": self._usage(body, text or TOOL_ARGUMENTS)}

    def stream_error(self, message: str) -> bytes:
        return b"event: error\ndata: " + json.dumps({"type": "error", "error": {"type": "api_error",
                                                                             "message": message}}).encode() + b"\n\n"

    def stream(self, body: dict, model: str, text: str, tool: bool) -> Iterable[tuple[str, bytes]]:
        def event(name: str, payload: dict) -> bytes:
            return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()

        use = self._tool_use(body, text, tool)
        tool = use is not None
        usage = self._usage(body, text or TOOL_ARGUMENTS)
        yield "head", event("message_start", {"type": "message_start", "message": {
            "id": "msg_fake" + uuid.uuid4().hex[:20], "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {**{k: v for k, v in usage.items() if k != "output_tokens"}, "output_tokens": 1}}})
        index = 0
        if thinking := self._thinking(body):
            yield "head", event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
                "type": "thinking", "thinking": "", "signature": ""}})
            for delta in ({"type": "thinking_delta", "thinking": thinking[0]},
                          {"type": "signature_delta", "signature": thinking[1]}):
                yield "head", event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            yield "head", event("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        if use:
            block = {"type": "tool_use", "id": "toolu_fake" + uuid.uuid4().hex[:16], "name": use[0], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in split_pieces(use[1])]
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in split_pieces(text)]
        yield "head", event("content_block_start", {"type": "content_block_start", "index": index,
                                                    "content_block": block})
        yield "head", event("ping", {"type": "ping"})
        for delta in deltas:
            yield "content", event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": delta})
        yield "tail", event("content_block_stop", {"type": "content_block_stop", "index": index})
        yield "tail", event("message_delta", {"type": "message_delta",
                                              "delta": {"stop_reason": "tool_use" if tool else "end_turn",
                                                        "stop_sequence": None},
                                              "usage": {"output_tokens": usage["output_tokens"]}})
        yield "tail", event("message_stop", {"type": "message_stop"})


_OPENAI, _AZURE, _ANTHROPIC = _OpenAIDialect(), _AzureDialect(), _AnthropicDialect()


# ----------------------------------------------------------------------------------------------
# HTTP layer
# ----------------------------------------------------------------------------------------------

class _Aborted(Exception):
    """The handler closed the connection on purpose ([[cut]]) or the client went away."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeProvider/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are dropped after this

    server: "_Server"

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.fake.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.fake.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- plumbing ---------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            raise _Aborted("request body truncated")
        return data

    def _send_bytes(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, extra: dict | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", extra)

    def _start_stream(self, extra: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Aborted("cut on purpose")

    def _dispatch(self) -> None:
        fake = self.server.fake
        try:
            url = urlsplit(self.path)
            raw = self._read_body()
            try:
                body = json.loads(raw) if raw else None
                bad_json = False
            except ValueError:
                body, bad_json = None, True
            if url.path == "/_fake/calls" and self.command == "GET":
                return self._send_json(200, fake.calls)
            if url.path == "/_fake/reset" and self.command == "POST":
                fake.reset()
                return self._send_json(200, {"ok": True})
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            fake._record({"method": self.command, "path": url.path, "query": query,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body, "raw_body": raw.decode("utf-8", "replace"), "time": time.time()})
            with fake.active():
                self._route(url.path, query, body, bad_json)
        except _Aborted:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True

    def _route(self, path: str, query: dict, body: Any, bad_json: bool) -> None:
        azure = _AZURE_PATH.fullmatch(path)
        if path == "/v1/models":
            if self.command != "GET":
                return self._send_json(405, _OPENAI.error_body("Method not allowed", "invalid_request_error"))
            return self._models()
        if path in ("/v1/embeddings", "/v1/messages/count_tokens"):
            if self.command != "POST":
                return self._send_json(405, _OPENAI.error_body("Method not allowed", "invalid_request_error"))
            return self._embeddings(body) if path == "/v1/embeddings" else self._count_tokens(body)
        if path == "/v1/chat/completions":
            dialect, route_param = _OPENAI, None
        elif azure:
            dialect, route_param = _AZURE, azure.group(1)
        elif path == "/v1/messages":
            dialect, route_param = _ANTHROPIC, None
        else:
            return self._send_json(404, _OPENAI.error_body(f"Unknown path {path}", "invalid_request_error",
                                                           "unknown_url"))
        if self.command != "POST":
            return self._send_json(405, dialect.error_body("Method not allowed", "invalid_request_error"))
        self._chat(dialect, route_param, query, body, bad_json)

    def _models(self) -> None:
        """GET /v1/models: OpenAI's list, or Anthropic's when anthropic-version is sent."""
        fake = self.server.fake
        anthropic = self.headers.get("anthropic-version") is not None
        dialect = _ANTHROPIC if anthropic else _OPENAI
        key = dialect.sent_key(self.headers)
        if not fake.key_ok(key):
            return self._send_json(*dialect.auth_error(key))
        if anthropic:
            return self._send_json(200, {"data": [
                {"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                 "created_at": "2025-10-01T00:00:00Z"} for m in MODELS],
                "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})
        self._send_json(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in MODELS]})

    def _embeddings(self, body: Any) -> None:
        key = _OPENAI.sent_key(self.headers)
        if not self.server.fake.key_ok(key):
            return self._send_json(*_OPENAI.auth_error(key))
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or "input" not in body:
            return self._send_json(400, _OPENAI.error_body("'model' and 'input' are required",
                                                           "invalid_request_error", None, "input"))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if inputs and all(isinstance(i, int) for i in inputs):
            inputs = [inputs]
        texts = [i if isinstance(i, str) else " ".join(map(str, i)) for i in inputs]
        for text in texts:
            failure = _FAIL.search(text)
            if failure:
                status = int(failure.group(1))
                return self._send_json(status, _OPENAI.failure(status, key))
        data = []
        for index, text in enumerate(texts):
            raw = text.encode()
            vector = [((sum(raw[j::8]) % 97) + 1) / 97.0 for j in range(8)]
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack("<8f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(_tokens(t) for t in texts)
        self._send_json(200, {"object": "list", "data": data, "model": body["model"],
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _count_tokens(self, body: Any) -> None:
        check = _ANTHROPIC.check_version(self.headers)
        if check:
            return self._send_json(*check)
        key = _ANTHROPIC.sent_key(self.headers)
        if not self.server.fake.key_ok(key):
            return self._send_json(*_ANTHROPIC.auth_error(key))
        # Checked as a message is, but count_tokens takes no max_tokens.
        invalid = _ANTHROPIC.validate({"max_tokens": 1, **body} if isinstance(body, dict) else body)
        if invalid:
            return self._send_json(*invalid)
        self._send_json(200, {"input_tokens": _prompt_tokens(body) + 10})

    def _chat(self, dialect, route_param: str | None, query: dict, body: Any, bad_json: bool) -> None:
        fake = self.server.fake
        request_id = "req_fake" + uuid.uuid4().hex[:16]
        ids = {"x-request-id": request_id, "request-id": request_id}
        for check in (dialect.preflight(query),
                      dialect.check_version(self.headers) if dialect is _ANTHROPIC else None):
            if check:
                return self._send_json(*check, ids)
        key = dialect.sent_key(self.headers)
        if not fake.key_ok(key):
            return self._send_json(*dialect.auth_error(key), ids)
        if bad_json:
            return self._send_json(400, dialect.error_body("The request body is not valid JSON.",
                                                           "invalid_request_error"), ids)
        invalid = dialect.validate(body)
        if invalid:
            return self._send_json(*invalid, ids)

        prompt = last_user_text(body)
        plan = _Plan(prompt)
        fake.apply_forced(key, plan)
        delay = fake.latency_ms / 1000.0 + plan.slow_secs
        if delay:
            time.sleep(delay)
        if plan.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._abort()
        if plan.hang:
            while not self.server.stopping:  # until the gateway hangs up (then the write fails) or the fake stops
                time.sleep(0.1)
                try:
                    self.connection.setblocking(False)
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return
                except BlockingIOError:
                    pass
                finally:
                    self.connection.setblocking(True)
            return
        if plan.fail_status:
            extra = {**ids, "Retry-After": plan.retry_after} if plan.retry_after else dict(ids)
            if plan.fail_status == 429:
                extra.update(dialect.rate_limit_headers(plan.retry_after))
            return self._send_json(plan.fail_status, dialect.failure(plan.fail_status, key), extra)
        if plan.garbage:
            return self._send_bytes(200, b"<html>this is <b>not</b> JSON {{{", "application/json", ids)
        if plan.gzip_bomb:
            return self._send_bytes(200, _gzip_bomb(), "application/json", {**ids, "Content-Encoding": "gzip"})

        model = dialect.model(body, route_param)
        text = answer_for(prompt)
        if body.get("stream") is True:
            return self._stream(dialect, body, model, text, plan, ids)
        payload = json.dumps(dialect.completion(body, model, text, plan.tool)).encode()
        if plan.cut:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self._abort()
        self._send_bytes(200, payload, "application/json", ids)

    def _stream(self, dialect, body: dict, model: str, text: str, plan: _Plan, ids: dict) -> None:
        fake = self.server.fake
        self._start_stream(ids)
        contents_sent = 0
        if plan.endless:
            events = list(dialect.stream(body, model, text, plan.tool))
            content = next(data for kind, data in events if kind == "content")
            try:
                for kind, data in events:
                    if kind == "content":
                        break
                    self._write_chunk(data)
                while True:
                    self._write_chunk(content)
                    self.wfile.flush()
                    time.sleep(0.02)
            except OSError:
                with fake._lock:
                    fake.abandoned.append(last_user_text(body))
                raise _Aborted("the reader went away")
        events = list(dialect.stream(body, model, text, plan.tool))
        if plan.no_terminal:
            events = events[:-1]
        for kind, data in events:
            if kind == "content":
                if plan.cut and contents_sent == 2:
                    self._abort()
                if plan.stall_secs and contents_sent == 2:
                    self.wfile.flush()
                    time.sleep(plan.stall_secs)
                if plan.stream_error and contents_sent == 2:
                    self._write_chunk(dialect.stream_error(f"Incorrect API key provided: {dialect.sent_key(self.headers)}"))
                    break
                if fake.chunk_delay:
                    time.sleep(fake.chunk_delay)
                contents_sent += 1
            self._write_chunk(data)
        if plan.linger_secs or plan.tail_secs:
            self.wfile.flush()
            time.sleep(plan.linger_secs or plan.tail_secs)
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, fake: "FakeProvider"):
        self.fake = fake
        self.stopping = False  # ends [[hang]] handlers
        super().__init__(address, _Handler)


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------

class FakeProvider:
    """A fake OpenAI/Azure/Anthropic/xAI server in a background thread. Thread-safe."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_keys: Iterable[str] = (DEFAULT_API_KEY,),
                 any_key: bool = False, chunk_delay: float = 0.03, latency_ms: float = 0.0,
                 max_calls: int | None = None, verbose: bool = False):
        self.api_keys = set(api_keys)
        self.any_key = any_key
        self.chunk_delay = chunk_delay  # seconds between streamed content chunks
        self.latency_ms = latency_ms    # added before every chat answer
        self.verbose = verbose
        self._calls: collections.deque = collections.deque(maxlen=max_calls)
        self._forced: list[dict] = []
        self._lock = threading.Lock()
        self._active = 0
        self.peak_active = 0  # the most requests answered at once since the last reset()
        self.connections = 0  # TCP connections accepted, ever
        self.abandoned: list[str] = []  # prompts of [[endless]] streams whose reader went away
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeProvider":
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping = True
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def key_ok(self, key: str) -> bool:
        return bool(key) and (self.any_key or key in self.api_keys)

    def _record(self, call: dict) -> None:
        with self._lock:
            self._calls.append(call)

    @property
    def calls(self) -> list[dict]:
        """A snapshot of every request received so far (method, path, query, headers, body, ...)."""
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._forced.clear()
            self.peak_active = self._active

    def force(self, status: int | None = 503, times: int | None = None, key: str | None = None,
              retry_after: str | None = None, hang: bool = False) -> None:
        """The next `times` chat calls (every one when None) sent with `key` (any key when None)
        fail with `status` (its dialect's error body, Retry-After when given) or hang."""
        with self._lock:
            self._forced.append({"status": status, "times": times, "key": key, "retry_after": retry_after,
                                 "hang": hang})

    def apply_forced(self, key: str, plan: "_Plan") -> None:
        """Turns the first forced rule matching `key` into the call's plan (called per chat call)."""
        with self._lock:
            for rule in self._forced:
                if rule["times"] == 0 or (rule["key"] is not None and rule["key"] != key):
                    continue
                if rule["times"] is not None:
                    rule["times"] -= 1
                plan.hang = plan.hang or rule["hang"]
                if rule["status"]:
                    plan.fail_status = rule["status"]
                    plan.retry_after = rule["retry_after"]
                return

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Counts a request being answered (peak_active)."""
        with self._lock:
            self._active += 1
            self.peak_active = max(self.peak_active, self._active)
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1

    def calls_for(self, prompt: str) -> list[dict]:
        """The calls whose last user message contains `prompt`."""
        return [c for c in self.calls if prompt in last_user_text(c["body"])]

    def count(self, prompt: str) -> int:
        return len(self.calls_for(prompt))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port (printed on stdout)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every chat answer")
    parser.add_argument("--chunk-delay-ms", type=float, default=30.0, help="delay between streamed chunks")
    parser.add_argument("--api-key", action="append", help=f"accepted key (repeatable; default {DEFAULT_API_KEY})")
    parser.add_argument("--any-key", action="store_true", help="accept any non-empty key")
    parser.add_argument("--max-calls", type=int, default=10000, help="calls kept in the log")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    fake = FakeProvider(args.host, args.port, api_keys=args.api_key or [DEFAULT_API_KEY], any_key=args.any_key,
                        chunk_delay=args.chunk_delay_ms / 1000.0, latency_ms=args.latency_ms,
                        max_calls=args.max_calls, verbose=args.verbose)
    print(fake.port, flush=True)
    print(f"fake provider listening on http://{args.host}:{fake.port}", file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fake.start()
    stop.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
