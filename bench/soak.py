#!/usr/bin/env python3
"""Soak test (issue #11): Isartor under a steady mixed load for a bounded time, watched for leaks.

Starts the fast fake upstream (build/bench/fake_upstream, healthy, answering at once) and Isartor
(exact cache only, no models) the way bench/run.py does, warms one exact-cache entry, then runs wrk
back to back in --interval-second rounds for --minutes, each round with a mix of

  exact hits  the same body every time, answered from L1a (must be x-isartor-layer: l1a);
  misses      a unique prompt per request, passed to the upstream (must be l3);
  streams     a unique prompt with "stream": true, the upstream's SSE passed through (must be l3,
              text/event-stream, ending with data: [DONE]).

After each round it samples the gateway's RSS and open descriptors (RSS also every second for the
peak), and at the end prints a table of throughput per round, RSS start/end/max and errors. The
exact cache is capped (--cache-capacity) so that it fills during the warm-up and a growth after it
means memory that is not given back. A round restarts wrk's connections, so connection set-up and
tear-down are soaked too.

Errors: non-2xx answers, socket errors (connect, read, write, timeout), answers from the wrong
layer or streams without [DONE], hits that reached the upstream (the upstream's own request count
must equal the misses and streams), the gateway exiting. Exit status 1 if there were any, or if
the RSS after the warm-up grew by more than --max-rss-growth-mib (default 16 MiB), else 0.

Usage: python3 bench/soak.py [--minutes 10] [--build-dir build] [--upstream-bin PATH] ...
Builds nothing: fake_upstream comes from a build with -DISARTOR_BUILD_BENCH=ON (`make bench`, or
`cmake --build <dir> --target fake_upstream`). Progress goes to stderr, the table to stdout.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: processes, RSS sampling, constants)

ROOT = bench.ROOT

SOAK_LUA = r"""
-- One request in `hit_w + miss_w + stream_w` is chosen by a per-thread counter: the first hit_w of
-- every cycle are exact hits, the next miss_w unique misses, the last stream_w unique streams.
-- response() classifies each answer by what it is (the x-isartor-layer header, the content type),
-- since wrk does not say which request an answer belongs to; done() sums the threads' counters.
local counter = 0
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end
local salt, hit_w, miss_w, stream_w = "0", 6, 3, 1
sent_hit, sent_miss, sent_stream = 0, 0, 0
got_hit, got_miss, got_stream = 0, 0, 0
non2xx, wrong_layer, bad_stream = 0, 0, 0
function init(args)
  salt = args[1] or "0"
  hit_w, miss_w, stream_w = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer KEY"
end
local hit_body = '{"model":"MODEL","messages":[{"role":"user","content":"PROMPT"}]}'
function request()
  counter = counter + 1
  local slot = counter % (hit_w + miss_w + stream_w)
  if slot < hit_w then
    sent_hit = sent_hit + 1
    return wrk.format(nil, nil, nil, hit_body)
  end
  local unique = 'Soak question ' .. salt .. '-' .. tostring(tid) .. '-' .. counter .. ': what is the capital of France?'
  if slot < hit_w + miss_w then
    sent_miss = sent_miss + 1
    return wrk.format(nil, nil, nil, '{"model":"MODEL","messages":[{"role":"user","content":"' .. unique .. '"}]}')
  end
  sent_stream = sent_stream + 1
  return wrk.format(nil, nil, nil,
    '{"model":"MODEL","stream":true,"messages":[{"role":"user","content":"' .. unique .. '"}]}')
end
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    return
  end
  local layer, ctype = "", ""
  for k, v in pairs(headers) do
    local name = string.lower(k)
    if name == "x-isartor-layer" then layer = v elseif name == "content-type" then ctype = v end
  end
  if string.find(ctype, "text/event-stream", 1, true) then
    got_stream = got_stream + 1
    if layer ~= "l3" then wrong_layer = wrong_layer + 1 end
    if not string.find(body, "data: [DONE]", 1, true) then bad_stream = bad_stream + 1 end
  elseif layer == "l1a" then
    got_hit = got_hit + 1
  elseif layer == "l3" then
    got_miss = got_miss + 1
  else
    wrong_layer = wrong_layer + 1
  end
end
function done(summary, latency, requests)
  local t = {sent_hit = 0, sent_miss = 0, sent_stream = 0, got_hit = 0, got_miss = 0, got_stream = 0,
             non2xx = 0, wrong_layer = 0, bad_stream = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
  end
  io.write(string.format("SOAK requests=%d duration_us=%d connect=%d read=%d write=%d timeout=%d status=%d",
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
  for _, k in ipairs({"sent_hit", "sent_miss", "sent_stream", "got_hit", "got_miss", "got_stream", "non2xx",
                      "wrong_layer", "bad_stream"}) do
    io.write(string.format(" %s=%d", k, t[k]))
  end
  io.write(string.format(" p50_us=%d p99_us=%d max_us=%d\n", latency:percentile(50), latency:percentile(99),
    latency.max))
end
""".replace("MODEL", bench.MODEL).replace("PROMPT", bench.HIT_PROMPT).replace("KEY", bench.GATEWAY_KEY)


@dataclass
class Round:
    index: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    hits: int
    misses: int
    streams: int
    socket_errors: int
    non2xx: int
    content_errors: int  # wrong layer, stream without [DONE], answers of the wrong kind
    upstream_calls: int  # chat requests the upstream served in this round
    rss_kb: int          # at the end of the round
    fds: int

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non2xx + self.content_errors


@dataclass
class Soak:
    rounds: list[Round] = field(default_factory=list)
    rss_start_kb: int = 0
    rss_max_kb: int = 0
    fds_start: int = 0
    passed_total: int = 0    # misses and streams sent
    upstream_total: int = 0  # chat requests the upstream served meanwhile
    problems: list[str] = field(default_factory=list)


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def run_round(args, lua: Path, url: str, index: int) -> tuple[dict[str, int], str]:
    salt = f"{os.getpid()}r{index}"
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.interval:g}s", "--timeout", "10s",
            "-s", str(lua), url, "--", salt, str(args.mix[0]), str(args.mix[1]), str(args.mix[2])]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=args.interval + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("SOAK ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (exit {out.returncode}): {(out.stdout + out.stderr)[-400:]}")
    values = {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", line)}
    return values, line


def soak(args, stack: bench.Stack, tmp: Path) -> Soak:
    upstream = stack.start_upstream(args.upstream_bin)
    gateway = stack.start_isartor(args.isartor_bin, upstream, ISARTOR__CACHE_MAX_CAPACITY=str(args.cache_capacity),
                                  ISARTOR_LOG="warn")
    pid = gateway.proc.pid
    lua = tmp / "soak.lua"
    lua.write_text(SOAK_LUA)
    # The hit entry exists before the load starts, so every hit must be answered by L1a.
    hit_body = {"model": bench.MODEL, "messages": [{"role": "user", "content": bench.HIT_PROMPT}]}
    bench.http_post(gateway.chat_url, hit_body)
    _, headers, _ = bench.http_post(gateway.chat_url, hit_body)
    result = Soak()
    if headers.get("x-isartor-layer") != "l1a":
        result.problems.append(f"the warm-up hit was answered by {headers.get('x-isartor-layer')!r}, not l1a")
    time.sleep(0.5)
    result.rss_start_kb = bench.tree_rss_kb(pid)
    result.fds_start = open_fds(pid)
    result.rss_max_kb = result.rss_start_kb

    def upstream_calls_now() -> int | None:
        try:
            return stack.upstream_count(upstream)
        except (OSError, ValueError, KeyError):
            return None

    stop = threading.Event()

    def sample_peak():  # bounded by the stop event, set when the rounds end
        while not stop.wait(1.0):
            result.rss_max_kb = max(result.rss_max_kb, bench.tree_rss_kb(pid))

    sampler = threading.Thread(target=sample_peak, daemon=True)
    sampler.start()
    rounds = max(1, round(args.minutes * 60 / args.interval))
    deadline = time.monotonic() + args.minutes * 60 + 120  # hard bound: rounds plus a margin
    try:
        for i in range(rounds):
            if time.monotonic() > deadline:
                result.problems.append("stopped early: past the time bound")
                break
            t0 = time.monotonic()
            calls_before = upstream_calls_now()
            try:
                values, raw = run_round(args, lua, gateway.chat_url, i)
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                result.problems.append(f"round {i + 1}: wrk failed: {e}")
                break
            calls_after = upstream_calls_now()
            upstream_calls = calls_after - calls_before if calls_before is not None and calls_after is not None else -1
            seconds = time.monotonic() - t0
            rss = bench.tree_rss_kb(pid)
            result.rss_max_kb = max(result.rss_max_kb, rss)
            sent = values["sent_hit"] + values["sent_miss"] + values["sent_stream"]
            got = values["got_hit"] + values["got_miss"] + values["got_stream"]
            content = values["wrong_layer"] + values["bad_stream"]
            # Answers of each kind match what was sent, up to the requests still in flight when wrk
            # stopped (at most one per connection), those lost to socket errors and the one request()
            # wrk makes per thread to check the script; the upstream saw the misses and streams, never
            # a hit (up to the requests in flight at a round's edges).
            socket_errors = values["connect"] + values["read"] + values["write"] + values["timeout"]
            slack = args.connections + args.threads + socket_errors
            in_flight = sent - got - values["non2xx"] - content
            if not 0 <= in_flight <= slack:
                content += 1
                result.problems.append(f"round {i + 1}: {sent} requests sent, {got} good answers: {raw}")
            for kind in ("hit", "miss", "stream"):
                if not values["non2xx"] and not 0 <= values[f"sent_{kind}"] - values[f"got_{kind}"] <= slack:
                    content += 1
                    result.problems.append(f"round {i + 1}: {kind}s sent {values[f'sent_{kind}']}, "
                                           f"answered as {kind}s {values[f'got_{kind}']}")
            passed = values["sent_miss"] + values["sent_stream"]
            result.passed_total += passed
            result.upstream_total += max(upstream_calls, 0)
            if upstream_calls < 0:
                content += 1
                result.problems.append(f"round {i + 1}: the upstream's /stats did not answer")
            elif abs(upstream_calls - passed) > slack:
                content += 1
                result.problems.append(f"round {i + 1}: the upstream served {upstream_calls} chat requests for "
                                       f"{passed} misses and streams sent (hits must never reach it)")
            r = Round(index=i + 1, seconds=seconds, requests=values["requests"],
                      rps=got / (values["duration_us"] / 1e6) if values["duration_us"] else 0.0,
                      p50_ms=values["p50_us"] / 1000, p99_ms=values["p99_us"] / 1000,
                      hits=values["got_hit"], misses=values["got_miss"], streams=values["got_stream"],
                      socket_errors=socket_errors,
                      non2xx=values["non2xx"], content_errors=content, upstream_calls=upstream_calls,
                      rss_kb=rss, fds=open_fds(pid))
            result.rounds.append(r)
            bench.log(f"round {r.index}/{rounds}: {r.rps:,.0f} req/s (hits {r.hits}, misses {r.misses}, streams "
                      f"{r.streams}), p99 {r.p99_ms:.1f} ms, errors {r.errors}, RSS {r.rss_kb / 1024:.1f} MiB, "
                      f"fds {r.fds}")
            if gateway.proc.poll() is not None:
                result.problems.append(f"the gateway exited with {gateway.proc.returncode} in round {i + 1}: "
                                       f"{stack.stderr_tail('isartor')}")
                break
    finally:
        stop.set()
        sampler.join(timeout=5)
    return result


def report(args, result: Soak) -> int:
    rounds = result.rounds
    warm = min(args.warmup_rounds, max(len(rounds) - 1, 0))
    after = rounds[warm:]
    print(f"\nSoak: {args.minutes:g} min, {len(rounds)} rounds of {args.interval:g} s, wrk -t{args.threads} "
          f"-c{args.connections}, mix hit:miss:stream = {args.mix[0]}:{args.mix[1]}:{args.mix[2]} (misses and streams "
          f"unique), exact cache capped at {args.cache_capacity} entries, fake upstream healthy "
          f"(latency {args.upstream_latency_ms} ms)\n")
    print("| round | req/s | p50 ms | p99 ms | hits | misses | streams | upstream calls | errors | RSS MiB | fds |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rounds:
        mark = " (warm-up)" if r.index <= warm else ""
        print(f"| {r.index}{mark} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.1f} | {r.hits:,} | {r.misses:,} | "
              f"{r.streams:,} | {r.upstream_calls:,} | {r.errors} | {r.rss_kb / 1024:.1f} | {r.fds} |")
    failed = bool(result.problems)
    if after:
        rps = [r.rps for r in after]
        median = statistics.median(rps)
        low, high = min(rps), max(rps)
        spread = (high - low) / median if median else float("nan")
        stable = median > 0 and low >= 0.7 * median
        print(f"\nThroughput after warm-up: median {median:,.0f} req/s, min {low:,.0f}, max {high:,.0f} "
              f"(spread {spread:.0%} of the median): {'stable' if stable else 'NOT stable'} "
              f"(stable = every round at >= 70 % of the median; informational, the machine is shared)")
    rss_base = rounds[warm - 1].rss_kb if warm else result.rss_start_kb
    rss_end = rounds[-1].rss_kb if rounds else result.rss_start_kb
    growth_mib = (rss_end - rss_base) / 1024
    print(f"RSS: start {result.rss_start_kb / 1024:.1f} MiB, after warm-up {rss_base / 1024:.1f} MiB, end "
          f"{rss_end / 1024:.1f} MiB, max {result.rss_max_kb / 1024:.1f} MiB; growth after warm-up "
          f"{growth_mib:+.1f} MiB (bound {args.max_rss_growth_mib:g} MiB)")
    if len(after) >= 3:
        xs = [r.index * args.interval / 60 for r in after]
        ys = [r.rss_kb / 1024 for r in after]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        print(f"RSS trend after warm-up: {slope:+.2f} MiB/min (least squares)")
    if rounds:
        print(f"Open descriptors: start {result.fds_start}, end {rounds[-1].fds}")
    total = sum(r.requests for r in rounds)
    socket_errors = sum(r.socket_errors for r in rounds)
    non2xx = sum(r.non2xx for r in rounds)
    content = sum(r.content_errors for r in rounds)
    errors = socket_errors + non2xx + content
    print(f"Upstream: {result.upstream_total:,} chat requests for {result.passed_total:,} misses and streams sent "
          f"(hits answered by L1a: {sum(r.hits for r in rounds):,})")
    print(f"Requests: {total:,}; errors: {errors} (non-2xx {non2xx}, socket {socket_errors}, wrong answers {content})")
    if growth_mib > args.max_rss_growth_mib:
        result.problems.append(f"RSS grew {growth_mib:.1f} MiB after the warm-up (bound {args.max_rss_growth_mib:g})")
    if errors:
        failed = True
    for p in result.problems:
        print(f"PROBLEM: {p}")
    failed = failed or bool(result.problems)
    print(f"\nResult: {'FAIL' if failed else 'PASS'}")
    return 1 if failed else 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="length of the load (default 10)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds per wrk round and sample (default 10)")
    p.add_argument("--warmup-rounds", type=int, help="rounds before the RSS baseline (default: the first minute)")
    p.add_argument("--max-rss-growth-mib", type=float, default=16.0,
                   help="fail when RSS grows more than this after the warm-up (default 16)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mix", default="6:3:1", help="hit:miss:stream request weights (default 6:3:1)")
    p.add_argument("--cache-capacity", type=int, default=10000, help="ISARTOR__CACHE_MAX_CAPACITY (default 10000)")
    p.add_argument("--upstream-latency-ms", type=int, default=0)
    p.add_argument("--upstream-threads", type=int, default=1)
    p.add_argument("--chunks", type=int, default=8, help="SSE content chunks from the fake upstream")
    p.add_argument("--build-dir", default=os.environ.get("ISARTOR_BUILD_DIR", "build"),
                   help="build tree with isartor (and bench/fake_upstream unless --upstream-bin)")
    p.add_argument("--isartor-bin", default=os.environ.get("ISARTOR_BIN"), help="default <build-dir>/isartor")
    p.add_argument("--upstream-bin", help="default <build-dir>/bench/fake_upstream")
    a = p.parse_args()
    a.build_dir = Path(a.build_dir if os.path.isabs(a.build_dir) else ROOT / a.build_dir)
    a.isartor_bin = Path(a.isartor_bin) if a.isartor_bin else a.build_dir / "isartor"
    a.upstream_bin = Path(a.upstream_bin) if a.upstream_bin else a.build_dir / "bench/fake_upstream"
    try:
        a.mix = tuple(int(x) for x in a.mix.split(":"))
        assert len(a.mix) == 3 and min(a.mix) >= 0 and sum(a.mix) > 0
    except (ValueError, AssertionError):
        p.error("--mix wants three non-negative integers, e.g. 6:3:1")
    if a.minutes <= 0 or a.interval <= 0 or a.connections <= 0 or a.threads <= 0:
        p.error("--minutes, --interval, --connections and --threads must be positive")
    if a.warmup_rounds is None:
        a.warmup_rounds = max(1, round(60 / a.interval))
    return a


def main() -> int:
    args = parse_args()
    # Stopped from outside (timeout, make interrupted): unwind, so the Stack stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if shutil.which("wrk") is None:
        bench.log("wrk is missing: run scripts/bootstrap.sh (apt-get install wrk)")
        return 2
    for b in (args.isartor_bin, args.upstream_bin):
        if not b.exists():
            bench.log(f"{b} is missing: build first (make bench, or cmake -DISARTOR_BUILD_BENCH=ON and "
                      "cmake --build <dir> --target isartor fake_upstream)")
            return 2
    args.upstream_threads = max(1, args.upstream_threads)
    with tempfile.TemporaryDirectory(prefix="isartor-soak-") as tmpdir, bench.Stack(args, Path(tmpdir)) as stack:
        bench.log(f"soak: {args.minutes:g} min against {args.isartor_bin}")
        result = soak(args, stack, Path(tmpdir))
        gateway = next(s for s in stack.systems if s.key == "isartor")
        if gateway.proc.poll() is None:  # a clean stop is part of the soak
            gateway.proc.send_signal(signal.SIGTERM)
            try:
                code = gateway.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                code = None
            if code != 0:
                result.problems.append(f"the gateway did not exit 0 on SIGTERM after the soak (exit {code})")
    return report(args, result)


if __name__ == "__main__":
    sys.exit(main())
