"""Fixtures for the integration suite: the fake cloud provider and real `isartor` gateway processes.

Gateways are started as subprocesses of the real binary ($ISARTOR_BIN or <repo>/build/isartor) in a
temp working dir with a clean environment, on a free port, pointed at the fake provider. A gateway
counts as started once its own log says "Listening on 127.0.0.1:PORT" (so a process that took the
port first is never mistaken for it); one that lost its port to another process between the pick
and its bind is started again on a fresh port (start_listening). Gateways with the common
configuration are shared by the whole session (one per provider, all with the gateway key
"gw-secret"); tests that need special settings start their own with `gateway_factory`.
When a test fails, the part of each gateway's log written during that test is attached to the report.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fakes"))

from fake_provider import DEFAULT_API_KEY, FakeProvider, answer_for, last_user_text  # noqa: E402

GATEWAY_KEY = "gw-secret"
PROVIDER_KEY = DEFAULT_API_KEY
PROVIDERS = ("openai", "azure", "anthropic", "xai")
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "azure": "gpt-4o", "anthropic": "claude-haiku-4-5",
                  "xai": "grok-2-latest"}
AZURE_DEPLOYMENT = "dep1"
AZURE_API_VERSION = "2024-10-21"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 5  # fresh ports tried when another process takes the one picked
CHUNK_DELAY = 0.03

__all__ = ["answer_for", "last_user_text", "GATEWAY_KEY", "PROVIDER_KEY", "PROVIDERS", "DEFAULT_MODELS"]


def isartor_bin() -> Path:
    return Path(os.environ.get("ISARTOR_BIN") or REPO / "build" / "isartor")


def require_binary() -> Path:
    path = isartor_bin()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"isartor binary not found at {path}: build it or set ISARTOR_BIN", pytrace=False)
    return path


def free_port() -> int:
    """A port that was free a moment ago: another process may take it before the caller binds it,
    so whatever listens on it must be started with start_listening (or retried like it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uniq(label: str = "q") -> str:
    """A prompt no other test uses, so cache state never leaks between tests."""
    return f"{label} {uuid.uuid4().hex[:12]}"


def long_uniq(label: str = "q") -> str:
    """A unique prompt long enough (> 96 chars) that the fake streams its answer in 8 pieces, 30 ms
    apart, so arrival-time checks keep a wide margin on a loaded machine."""
    return uniq(label) + " " + "lorem ipsum dolor sit amet " * 4


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env.update(extra)
    return env


def provider_env(provider: str, fake_url: str) -> dict[str, str]:
    """The environment that points a gateway for `provider` at the fake, per the SDK base-URL rules."""
    env = {
        "ISARTOR__LLM_PROVIDER": provider,
        "ISARTOR__EXTERNAL_LLM_URL": fake_url + "/v1" if provider in ("openai", "xai") else fake_url,
        "ISARTOR__EXTERNAL_LLM_API_KEY": PROVIDER_KEY,
        "ISARTOR__EXTERNAL_LLM_MODEL": DEFAULT_MODELS[provider],
        "ISARTOR__ENABLE_SLM_ROUTER": "false",
        "ISARTOR__CACHE_MODE": "exact",
        "ISARTOR__L3_TIMEOUT_SECS": "10",
        "ISARTOR_LOG": "debug",
    }
    if provider == "azure":
        env["ISARTOR__AZURE_DEPLOYMENT_ID"] = AZURE_DEPLOYMENT
        env["ISARTOR__AZURE_API_VERSION"] = AZURE_API_VERSION
    return env


def run_isartor(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Runs the binary to completion (CLI sub-commands, start-up failures)."""
    return subprocess.run([str(require_binary()), *args], env=clean_env(env), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def config_rejection(gateway: "Gateway") -> str:
    """Runs `isartor config` with a (not started) gateway's environment, asserts that the
    configuration is refused, and returns what it printed."""
    out = run_isartor(["config"], clean_env(gateway.env), gateway.workdir)
    assert out.returncode != 0, out.stdout
    return out.stdout + out.stderr


def wait_for_http(proc: subprocess.Popen, url: str, timeout: float, what: str, log) -> None:
    """Polls GET `url` until it answers 200; AssertionError with `log()` if `proc` exits first or the
    time runs out (the caller stops the process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} during start-up:\n{log()}")
        try:
            if requests.get(url, timeout=0.5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what} did not answer {url} within {timeout}s:\n{log()}")


# ----------------------------------------------------------------------------------------------
# Starting a gateway on a port nobody else has
# ----------------------------------------------------------------------------------------------

# What src/http/server.cpp logs once bound, and what main() logs when the bind fails.
LISTENING = re.compile(r"Listening on 127\.0\.0\.1:(\d+)")
PORT_TAKEN = re.compile(r"cannot listen on 127\.0\.0\.1:(\d+): Address already in use")


class PortTaken(Exception):
    """The gateway exited because another process had its port."""


def read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def wait_listening(proc: subprocess.Popen, log_path: Path, offset: int, port: int, timeout: float,
                   what: str = "isartor") -> None:
    """Waits until `proc` logs (in `log_path` after `offset`) that it listens on `port`. PortTaken if
    it exits because the port was taken; AssertionError with its log if it exits otherwise or the
    time runs out (the caller stops the process)."""
    deadline = time.monotonic() + timeout
    while True:
        exited = proc.poll() is not None  # read the log after this, so nothing it wrote is missed
        text = read_from(log_path, offset)
        if any(int(m[1]) == port for m in LISTENING.finditer(text)):
            return
        if exited:
            if any(int(m[1]) == port for m in PORT_TAKEN.finditer(text)):
                raise PortTaken(f"127.0.0.1:{port} was taken")
            raise AssertionError(f"{what} exited with {proc.returncode} during start-up:\n{text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not log 'Listening on 127.0.0.1:{port}' within {timeout}s (ISARTOR_LOG "
                                 f"must let INFO lines of target isartor through):\n{text}")
        time.sleep(0.02)


def start_listening(command: list[str], env: dict[str, str], cwd: Path, log_path: Path, timeout: float,
                    what: str = "isartor", attempts: int = START_ATTEMPTS) -> tuple[subprocess.Popen, int]:
    """Starts `command` (the gateway, possibly under a wrapper such as prlimit or strace) with `env`
    plus ISARTOR__HOST_PORT=127.0.0.1:<a free port>, its output appended to `log_path`, and returns
    (process, port) once that process logged that it listens there and answers /healthz. When another
    process takes the port between free_port() and the gateway's bind, it starts again on a fresh one,
    up to `attempts` times. (The config refuses port 0, so the kernel cannot pick it at the bind.)"""
    for attempt in range(1, attempts + 1):
        port = free_port()
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(command, env={**env, "ISARTOR__HOST_PORT": f"127.0.0.1:{port}"}, cwd=cwd,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_listening(proc, log_path, offset, port, timeout, what)
            wait_for_http(proc, f"http://127.0.0.1:{port}/healthz", timeout, what,
                          lambda: read_from(log_path, offset))
            return proc, port
        except PortTaken:
            proc.wait()
            if attempt == attempts:
                raise AssertionError(f"{what}: {attempts} ports in a row were taken before it could bind them:\n"
                                     f"{read_from(log_path, offset)}")
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------------------------
# Gateway process
# ----------------------------------------------------------------------------------------------

class Gateway:
    """One running `isartor` process. `key` is the gateway key clients send by default (or None)."""

    def __init__(self, provider: str, fake: FakeProvider, extra_env: dict[str, str] | None = None,
                 workdir: Path | None = None, wrapper: list[str] | None = None, start_timeout: float = START_TIMEOUT):
        """`wrapper` runs the binary under another program (an emulator), given `start_timeout` to answer."""
        self.provider = provider
        self.wrapper = wrapper or []
        self.start_timeout = start_timeout
        self.fake = fake
        # Set by start() to where the gateway actually listens.
        self.port = 0
        self.url = ""
        self.env = provider_env(provider, fake.url)
        self.env.update(extra_env or {})
        self.key: str | None = self.env.get("ISARTOR__GATEWAY_API_KEY") or None
        self.model = self.env.get("ISARTOR__EXTERNAL_LLM_MODEL", "")
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="isartor-it-")) if workdir is None else workdir
        self.log_path = self.workdir / "isartor.log"
        self.proc: subprocess.Popen | None = None
        self.http = requests.Session()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> "Gateway":
        """Starts the gateway on a free port (see start_listening); `port` and `url` say where."""
        binary = require_binary()
        self.proc, self.port = start_listening([*self.wrapper, str(binary)], clean_env(self.env), self.workdir,
                                               self.log_path, self.start_timeout)
        self.url = f"http://127.0.0.1:{self.port}"
        self.env["ISARTOR__HOST_PORT"] = f"127.0.0.1:{self.port}"
        return self

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"isartor did not exit within {timeout}s of SIGTERM:\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERM, then the exit code (AssertionError if it hangs)."""
        self.http.close()
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.terminate()
        return self.wait_exit()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self) -> None:
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self, settle: float = 0.05) -> str:
        """The log so far. The gateway writes its log from a thread of its own, a moment after the
        line was made: this waits until the file stopped growing for `settle` s (at most 3 s)."""
        deadline = time.monotonic() + 3
        size = self.log_size()
        while time.monotonic() < deadline:
            time.sleep(settle)
            now = self.log_size()
            if now == size:
                break
            size = now
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_tail(self, since: int = 0, limit: int = 20000) -> str:
        text = self.log()[since:]
        return text if len(text) <= limit else "...\n" + text[-limit:]

    def wait_layer(self, name: str, timeout: float = 60.0) -> dict:
        """Polls /health until layer `name` is ready or says it is unavailable; returns its status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.get("/health").json()["layers"][name]
            if status["ready"] or status["detail"].startswith("unavailable") or time.monotonic() > deadline:
                return status
            time.sleep(0.1)

    # -- requests ---------------------------------------------------------------------------

    def auth(self, key: str | None = "default") -> dict[str, str]:
        key = self.key if key == "default" else key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def request(self, method: str, path: str, *, json_body: Any = None, data: bytes | str | None = None,
                headers: dict[str, str] | None = None, key: str | None = "default",
                timeout: float = 10.0) -> requests.Response:
        hdrs = self.auth(key)
        hdrs.update(headers or {})
        if json_body is not None:
            data = json.dumps(json_body)
            hdrs.setdefault("Content-Type", "application/json")
        return self.http.request(method, self.url + path, data=data, headers=hdrs, timeout=timeout)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, json_body=body, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def stream(self, path: str, body: Any, headers: dict[str, str] | None = None, key: str | None = "default",
               timeout: float = 10.0) -> "SseResult":
        hdrs = self.auth(key)
        hdrs.update(headers or {})
        return sse_request(self.url, path, body, hdrs, timeout)


# ----------------------------------------------------------------------------------------------
# Raw sockets, for what HTTP client libraries will not send or read
# ----------------------------------------------------------------------------------------------

def raw_post(gw, body: Any, version: str = "1.1", extra: str = "") -> bytes:
    """The bytes of a POST /v1/chat/completions with the gateway key; `extra` adds header lines."""
    payload = json.dumps(body).encode()
    auth = "".join(f"{k}: {v}\r\n" for k, v in gw.auth().items())
    head = (f"POST /v1/chat/completions HTTP/{version}\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {len(payload)}\r\n{extra}\r\n")
    return head.encode() + payload


def raw_exchange(gw, payload: bytes, close_write: bool = False, timeout: float = 10.0) -> bytes:
    """Sends raw bytes (then half-closes when `close_write`) and reads until the gateway closes."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=timeout) as s:
        data = b""
        try:
            s.sendall(payload)
            if close_write:
                s.shutdown(socket.SHUT_WR)
        except OSError:  # the server may answer and close before it read everything
            pass
        try:
            while chunk := s.recv(65536):
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return data


# ----------------------------------------------------------------------------------------------
# SSE over raw http.client, timestamping each event as its bytes arrive
# ----------------------------------------------------------------------------------------------

@dataclass
class SseEvent:
    event: str
    data: str
    t: float  # seconds since the response headers arrived

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseResult:
    status: int
    headers: dict[str, str]
    raw: bytes
    events: list[SseEvent] = field(default_factory=list)
    error: str | None = None  # transport error while reading (e.g. connection cut mid-stream)

    def body_json(self) -> Any:
        return json.loads(self.raw)

    # OpenAI view
    def data_events(self) -> list[SseEvent]:
        return [e for e in self.events if e.event in ("", "message")]

    def openai_chunks(self) -> list[dict]:
        return [e.json() for e in self.data_events() if e.data != "[DONE]"]

    def done(self) -> bool:
        data = self.data_events()
        return bool(data) and data[-1].data == "[DONE]"

    def content_events(self) -> list[SseEvent]:
        """OpenAI chunks with non-empty delta content, or Anthropic text/input_json deltas."""
        out = []
        for e in self.events:
            if e.data == "[DONE]" or not e.data.startswith("{"):
                continue
            payload = e.json()
            if payload.get("type") == "content_block_delta":
                out.append(e)
            elif any((c.get("delta") or {}).get("content") for c in payload.get("choices") or []):
                out.append(e)
        return out

    def openai_text(self) -> str:
        return "".join((c.get("delta") or {}).get("content") or ""
                       for chunk in self.openai_chunks() for c in chunk.get("choices") or [])

    def finish_reasons(self) -> list[str]:
        return [c["finish_reason"] for chunk in self.openai_chunks() for c in chunk.get("choices") or []
                if c.get("finish_reason")]

    # Anthropic view
    def anthropic_events(self) -> list[tuple[str, dict]]:
        return [(e.event, e.json()) for e in self.events if e.data.startswith("{")]

    def anthropic_text(self) -> str:
        return "".join(d["delta"].get("text", "") for name, d in self.anthropic_events()
                       if name == "content_block_delta" and d["delta"].get("type") == "text_delta")


def _parse_sse_block(block: str, t: float) -> SseEvent | None:
    event, data, has_data = "", [], False
    for line in block.split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
            has_data = True
    return SseEvent(event, "\n".join(data), t) if has_data else None


def sse_request(base_url: str, path: str, body: Any, headers: dict[str, str], timeout: float = 10.0) -> SseResult:
    """POSTs `body` and reads the response incrementally; SSE events carry their arrival time."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    hdrs = {"Content-Type": "application/json", "Accept": "text/event-stream", **headers}
    try:
        conn.request("POST", path, body=json.dumps(body) if not isinstance(body, (bytes, str)) else body, headers=hdrs)
        resp = conn.getresponse()
        t0 = time.monotonic()
        result = SseResult(resp.status, {k.lower(): v for k, v in resp.getheaders()}, b"")
        is_sse = result.headers.get("content-type", "").startswith("text/event-stream")
        pending = ""
        while True:
            try:
                data = resp.read1(65536)
            except (http.client.IncompleteRead, ConnectionError, socket.timeout, OSError) as e:
                result.error = f"{type(e).__name__}: {e}"
                break
            if not data:
                break
            result.raw += data
            if not is_sse:
                continue
            now = time.monotonic() - t0
            pending += data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
            while "\n\n" in pending:
                block, pending = pending.split("\n\n", 1)
                event = _parse_sse_block(block, now)
                if event:
                    result.events.append(event)
        if is_sse and pending.strip():
            event = _parse_sse_block(pending, time.monotonic() - t0)
            if event:
                result.events.append(event)
        return result
    finally:
        conn.close()


# ----------------------------------------------------------------------------------------------
# Request bodies and response checks
# ----------------------------------------------------------------------------------------------

def oa_body(prompt: str, stream: bool = False, **extra: Any) -> dict:
    body: dict = {"messages": [{"role": "user", "content": prompt}], **extra}
    if stream:
        body["stream"] = True
    return body


def an_body(prompt: str, stream: bool = False, max_tokens: int = 256, **extra: Any) -> dict:
    body: dict = {"max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}], **extra}
    if stream:
        body["stream"] = True
    return body


def native_body(prompt: str, **extra: Any) -> dict:
    return {"prompt": prompt, **extra}


def assert_openai_error(resp: requests.Response | SseResult, status: int) -> dict:
    is_requests = isinstance(resp, requests.Response)
    text = resp.text if is_requests else resp.raw.decode(errors="replace")
    assert (resp.status_code if is_requests else resp.status) == status, text
    body = resp.json() if is_requests else resp.body_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), text
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], text
    assert "type" in body["error"], text
    return body["error"]


def assert_anthropic_error(resp: requests.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body.get("type") == "error", resp.text
    assert isinstance(body.get("error"), dict), resp.text
    assert isinstance(body["error"].get("type"), str) and body["error"]["type"], resp.text
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], resp.text
    return body["error"]


def assert_completion(resp: requests.Response, text: str) -> dict:
    """A 200 OpenAI chat.completion whose single assistant choice says `text`."""
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("object") == "chat.completion", body
    assert isinstance(body.get("id"), str) and body["id"], body
    assert isinstance(body.get("model"), str) and body["model"], body
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant", body
    assert choice["message"]["content"] == text, body
    assert choice["finish_reason"] == "stop", body
    return body


def assert_message(resp: requests.Response, text: str) -> dict:
    """A 200 Anthropic "message" whose text content is `text`."""
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("type") == "message" and body.get("role") == "assistant", body
    assert isinstance(body.get("id"), str) and body["id"], body
    assert isinstance(body.get("model"), str) and body["model"], body
    texts = [b["text"] for b in body["content"] if b.get("type") == "text"]
    assert "".join(texts) == text, body
    assert body.get("stop_reason") == "end_turn", body
    assert isinstance(body.get("usage", {}).get("output_tokens"), int), body
    return body


def assert_openai_stream(result: SseResult, text: str) -> None:
    """A complete OpenAI SSE stream saying `text` and ending with data: [DONE]."""
    assert result.status == 200, result.raw[:2000]
    assert result.headers.get("content-type", "").startswith("text/event-stream"), result.headers
    assert result.error is None, result.error
    assert result.done(), result.raw[-500:]
    chunks = result.openai_chunks()
    assert chunks and all(c.get("object") == "chat.completion.chunk" for c in chunks), result.raw[:2000]
    assert result.openai_text() == text, result.raw[:4000]
    assert result.finish_reasons() == ["stop"], result.raw[:4000]


def assert_anthropic_stream(result: SseResult, text: str) -> None:
    """A complete Anthropic SSE stream saying `text`."""
    assert result.status == 200, result.raw[:2000]
    assert result.headers.get("content-type", "").startswith("text/event-stream"), result.headers
    assert result.error is None, result.error
    events = result.anthropic_events()
    assert_anthropic_sequence(events)
    assert result.anthropic_text() == text, result.raw[:4000]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn", events[-2]


def assert_incremental(result: SseResult, min_spread: float = 0.06) -> None:
    """The content events reached the client spread over time, not in one burst at the end."""
    times = [e.t for e in result.content_events()]
    assert len(times) >= 2, result.raw[:2000]
    assert times[-1] - times[0] >= min_spread, f"content events arrived at {times}"


def assert_layer(resp: requests.Response | SseResult, layer: str) -> None:
    headers = {k.lower(): v for k, v in resp.headers.items()}
    assert headers.get("x-isartor-layer") == layer, headers
    assert headers.get("x-isartor-deflected") == ("false" if layer == "l3" else "true"), headers


def assert_anthropic_sequence(events: list[tuple[str, dict]]) -> None:
    """The Anthropic stream grammar: message_start, (block_start delta* block_stop)+, message_delta,
    message_stop, with pings anywhere after message_start; each data.type equals the event name."""
    names = [name for name, _ in events]
    for name, data in events:
        assert data.get("type") == name, (name, data)
    body = [n for n in names if n != "ping"]
    assert body and body[0] == "message_start", names
    assert body[-2:] == ["message_delta", "message_stop"], names
    open_index = None
    for name, data in [(n, d) for n, d in events if n != "ping"][1:-2]:
        if name == "content_block_start":
            assert open_index is None, names
            open_index = data["index"]
        elif name == "content_block_delta":
            assert open_index == data["index"], names
        elif name == "content_block_stop":
            assert open_index == data["index"], names
            open_index = None
        else:
            raise AssertionError(f"unexpected {name} in {names}")
    assert open_index is None, names
    assert "content_block_start" in names, names


# ----------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fake() -> FakeProvider:
    provider = FakeProvider(chunk_delay=CHUNK_DELAY).start()
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def _fresh_fake(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        provider = request.getfixturevalue("fake")
        provider.reset()
        provider.chunk_delay = CHUNK_DELAY
        provider.latency_ms = 0.0


def _watch(node: pytest.Item, gateway: Gateway) -> None:
    """Remembers the gateway and its log position so a failure can show what it logged meanwhile."""
    watched = node.__dict__.setdefault("_isartor_gateways", [])
    watched.append((gateway, gateway.log_size()))


class GatewayPool:
    """Session-wide gateways keyed by their configuration."""

    def __init__(self, fake: FakeProvider):
        self.fake = fake
        self.gateways: dict[tuple, Gateway] = {}
        self.crashed: list[Gateway] = []  # replaced after dying; reported at the end

    def get(self, provider: str, **env: str) -> Gateway:
        """The live gateway for this configuration; one that died is replaced (so a crash fails the
        test that caused it, not every later one) and reported when the session ends."""
        key = (provider, tuple(sorted(env.items())))
        gateway = self.gateways.get(key)
        if gateway is not None and not gateway.alive():
            self.crashed.append(gateway)
            gateway = None
        if gateway is None:
            gateway = Gateway(provider, self.fake, env)
            try:
                gateway.start()
            except BaseException:
                gateway.cleanup()
                raise
            self.gateways[key] = gateway
        return gateway

    def close(self) -> list[str]:
        problems = []
        for gateway in [*self.crashed, *self.gateways.values()]:
            try:
                if not gateway.alive():
                    problems.append(f"{gateway.provider} gateway died (rc {gateway.proc.returncode}):\n"
                                    f"{gateway.log_tail(limit=4000)}")
                    continue
                rc = gateway.stop()
                if rc != 0:
                    problems.append(f"{gateway.provider} gateway exited {rc} on SIGTERM:\n"
                                    f"{gateway.log_tail(limit=4000)}")
            except AssertionError as e:
                problems.append(str(e))
            finally:
                gateway.cleanup()
        return problems


@pytest.fixture(scope="session")
def gateway_pool(fake: FakeProvider) -> GatewayPool:
    pool = GatewayPool(fake)
    yield pool
    problems = pool.close()
    assert not problems, "\n\n".join(problems)


@pytest.fixture
def shared_gateway(request: pytest.FixtureRequest, gateway_pool: GatewayPool):
    """shared_gateway(provider, **env) -> a session-wide gateway with gateway key gw-secret.
    A gateway that dies during the test fails the test (at teardown) with its exit code and log."""
    used: list[Gateway] = []

    def get(provider: str, **env: str) -> Gateway:
        env.setdefault("ISARTOR__GATEWAY_API_KEY", GATEWAY_KEY)
        gateway = gateway_pool.get(provider, **env)
        _watch(request.node, gateway)
        used.append(gateway)
        return gateway

    yield get
    dead = [g for g in used if not g.alive()]
    if dead:
        pytest.fail("; ".join(f"the {g.provider} gateway died during this test (exit code {g.proc.returncode}): "
                              f"{g.log_tail(limit=600).strip().splitlines()[-1] if g.log() else 'no log'}"
                              for g in dead), pytrace=False)


@pytest.fixture
def gw_openai(shared_gateway) -> Gateway:
    return shared_gateway("openai")


@pytest.fixture
def gw_anthropic(shared_gateway) -> Gateway:
    return shared_gateway("anthropic")


@pytest.fixture(params=PROVIDERS)
def any_gw(request: pytest.FixtureRequest, shared_gateway) -> Gateway:
    """The shared gateway of each provider in turn."""
    return shared_gateway(request.param)


@pytest.fixture
def gateway_factory(request: pytest.FixtureRequest, fake: FakeProvider):
    """gateway_factory(provider, start=True, workdir=None, **env) -> a gateway for this test only.
    At teardown it must exit 0 on SIGTERM within 10 s (unless the test already stopped it)."""
    made: list[Gateway] = []

    def make(provider: str = "openai", start: bool = True, workdir: Path | None = None, **env: str) -> Gateway:
        gateway = Gateway(provider, fake, env, workdir)
        made.append(gateway)
        if start:
            gateway.start()
        _watch(request.node, gateway)
        return gateway

    yield make
    problems = []
    for gateway in made:
        try:
            if gateway.alive():
                rc = gateway.stop()
                if rc != 0:
                    problems.append(f"gateway exited {rc} on SIGTERM:\n{gateway.log_tail(limit=4000)}")
        except AssertionError as e:
            problems.append(str(e))
        finally:
            gateway.cleanup()
    assert not problems, "\n\n".join(problems)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, (gateway, offset) in enumerate(item.__dict__.get("_isartor_gateways", [])):
            report.sections.append((f"isartor log [{gateway.provider} gateway {i} on {gateway.url}]",
                                    gateway.log_tail(offset, limit=8000) or "(empty)"))
