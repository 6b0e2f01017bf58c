#!/usr/bin/env python3
"""Instructions per request on the gateway's hot paths, counted by valgrind's callgrind: stable
numbers on a noisy machine (they do not depend on what else runs), for before/after comparisons.

For each case the gateway runs under callgrind (exact cache only, no models, the fast C++ fake
upstream from bench/), is warmed up, its counters are zeroed, then one keep-alive client sends
--requests requests and the counters are dumped: instructions / requests is the cost of one
request, all gateway threads included. The top functions by exclusive instructions come too.

usage: bench/callgrind_hits.py [--build-dir build] [--requests 400] [--cases hit,hit-anthropic,...]
                               [--top 12] [--json OUT.json] [--compare OLD.json] [--max-ratio 1.3]
cases: hit (OpenAI route, exact-cache hit), hit-anthropic, hit-stream (hit replayed as SSE),
       miss (unique prompt, answered by the upstream), health (GET /health)
"""
from __future__ import annotations

import argparse
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("hit", "hit-anthropic", "hit-stream", "miss", "health")


def log(message: str) -> None:
    print(f"[callgrind] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_for(case: str, i: int) -> tuple[str, str, bytes | None]:
    """(method, path, body) of request i of a case; hits repeat one prompt, misses never do."""
    if case == "health":
        return "GET", "/health", None
    prompt = "What is the capital of France?" if case != "miss" else f"unique {i} {uuid.uuid4().hex}"
    messages = [{"role": "user", "content": prompt}]
    if case == "hit-anthropic":
        return "POST", "/v1/messages", json.dumps({"model": "claude-x", "max_tokens": 64, "messages": messages}).encode()
    body = {"model": "gpt-4o-mini", "messages": messages}
    if case == "hit-stream":
        body["stream"] = True
    return "POST", "/v1/chat/completions", json.dumps(body).encode()


def send(conn: http.client.HTTPConnection, case: str, i: int) -> None:
    method, path, body = request_for(case, i)
    headers = {"Content-Type": "application/json"} if body else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{case}: HTTP {resp.status}: {data[:200]!r}")


def wait_http(port: int, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered GET {path} on port {port} within {timeout}s")


def parse_dump(path: Path, top: int) -> tuple[int, list[tuple[int, str]]]:
    """Total instructions and the `top` functions by exclusive instructions, via callgrind_annotate."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", str(path)], capture_output=True, text=True,
                         check=True).stdout
    total = 0
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = re.match(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$", line)
        # Frames that span the whole measured window (main, the event loop) are listed with the
        # total; they are not the cost of any one function.
        if m and total and len(rows) < top and int(m.group(1).replace(",", "")) < 0.9 * total:
            name = re.sub(r"^[^:]*:", "", m.group(2)).strip()  # drop the file part
            rows.append((int(m.group(1).replace(",", "")), name[:110]))
    return total, rows


def run_case(args, case: str, workdir: Path) -> dict:
    build = args.build_dir
    upstream = subprocess.Popen([str(build / "bench/fake_upstream"), "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    try:
        up_port = int(upstream.stdout.readline().strip())
        port = free_port()
        out = workdir / f"callgrind.{case}.out"
        env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""),
               "ISARTOR__HOST_PORT": f"127.0.0.1:{port}", "ISARTOR__CACHE_MODE": "exact",
               "ISARTOR__ENABLE_SLM_ROUTER": "false", "ISARTOR__EXTERNAL_LLM_API_KEY": "sk-bench",
               "ISARTOR__EXTERNAL_LLM_URL": f"http://127.0.0.1:{up_port}/v1", "ISARTOR__WORKER_THREADS": "1",
               "ISARTOR_LOG": "warn"}
        gateway = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
                                    "--dump-instr=no", "--collect-atstart=yes", str(build / "isartor")],
                                   env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(port, "/healthz", 120)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for i in range(20):  # warm-up: the hit cases fill the cache here
                send(conn, case, -i - 1)
            subprocess.run(["callgrind_control", "--zero", str(gateway.pid)], check=True, capture_output=True)
            started = time.monotonic()
            for i in range(args.requests):
                send(conn, case, i)
            wall = time.monotonic() - started
            conn.close()
            subprocess.run(["callgrind_control", "--dump=measured", str(gateway.pid)], check=True, capture_output=True)
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=120)
        dumps = sorted(workdir.glob(f"callgrind.{case}.out.{gateway.pid}.1"))  # the --dump, not the exit
        if not dumps:
            raise RuntimeError(f"callgrind wrote no dump for {case}")
        total, rows = parse_dump(dumps[0], args.top)
        return {"case": case, "requests": args.requests, "instructions": total,
                "per_request": total / args.requests, "wall_s": wall, "top": rows}
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--cases", default="hit,hit-anthropic,hit-stream,miss,health")
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--json", help="write the results here")
    p.add_argument("--keep", help="keep the callgrind dumps in this folder (for callgrind_annotate / kcachegrind)")
    p.add_argument("--compare", help="results of an earlier run (--json) to compare with")
    p.add_argument("--max-ratio", type=float, default=1.3,
                   help="the target: hit-anthropic and hit-stream cost at most this many times a hit (exit 3 if not)")
    args = p.parse_args()
    args.build_dir = Path(args.build_dir if os.path.isabs(args.build_dir) else ROOT / args.build_dir)
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            log(f"{tool} is missing (apt-get install valgrind)")
            return 1
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        log(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
        return 2
    old = {r["case"]: r for r in json.loads(Path(args.compare).read_text())} if args.compare else {}
    results = []
    with tempfile.TemporaryDirectory(prefix="isartor-callgrind-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for n, case in enumerate(cases, 1):
            log(f"{n}/{len(cases)} {case}: {args.requests} requests under callgrind")
            results.append(run_case(args, case, workdir))
    print("| case | instructions / request |" + (" before | change |" if old else ""))
    print("|---|---:|" + ("---:|---:|" if old else ""))
    for r in results:
        row = f"| {r['case']} | {r['per_request']:,.0f} |"
        if r["case"] in old:
            before = old[r["case"]]["per_request"]
            row += f" {before:,.0f} | {100 * (r['per_request'] - before) / before:+.1f} % |"
        elif old:
            row += " – | – |"
        print(row)
    for r in results:
        print(f"\n{r['case']}: top functions by own instructions (per request)\n")
        print("| instructions / request | function |\n|---:|---|")
        for count, name in r["top"]:
            print(f"| {count / r['requests']:,.0f} | `{name}` |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    # A hit in another form than the stored one sends bytes rendered once (L1a keeps them), so it
    # should cost little more than a hit on the OpenAI route: the request's own translation.
    by_case = {r["case"]: r["per_request"] for r in results}
    missed = []
    if "hit" in by_case:
        print(f"\nratio to an OpenAI-route hit (target <= {args.max_ratio}):")
        for case in ("hit-anthropic", "hit-stream"):
            if case in by_case:
                ratio = by_case[case] / by_case["hit"]
                print(f"  {case}: {ratio:.3f}")
                if ratio > args.max_ratio:
                    missed.append(case)
    if missed:
        log(f"over the target: {', '.join(missed)}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
