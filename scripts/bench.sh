#!/usr/bin/env bash
# Exact-cache hit throughput and latency of build/isartor with wrk, as a Markdown table.
# Usage: scripts/bench.sh [--quick]   (BIN=..., DURATION=10s, CONNECTIONS="1 16 64 256")
# The fuller side-by-side suite (peers, misses, streaming, plots) is tracked in issue #5.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/isartor}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-"1 16 64 256"}
if [ "${1:-}" = "--quick" ]; then DURATION=3s; CONNECTIONS="1 64"; fi
command -v wrk >/dev/null || { echo "wrk is missing: run scripts/bootstrap.sh" >&2; exit 1; }

tmp=$(mktemp -d)
cleanup() { kill "${fake_pid:-}" "${gw_pid:-}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

python3 tests/fakes/fake_provider.py --port 0 --any-key >"$tmp/fake.out" 2>"$tmp/fake.err" &
fake_pid=$!
for _ in $(seq 50); do [ -s "$tmp/fake.out" ] && break; sleep 0.1; done
fake_port=$(head -1 "$tmp/fake.out")
gw_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ISARTOR__HOST_PORT=127.0.0.1:$gw_port ISARTOR__EXTERNAL_LLM_URL=http://127.0.0.1:$fake_port/v1 \
  ISARTOR__EXTERNAL_LLM_API_KEY=sk-bench ISARTOR__ENABLE_SLM_ROUTER=false ISARTOR__CACHE_MODE=exact \
  ISARTOR_LOG=warn "$BIN" up 2>"$tmp/gw.err" &
gw_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$gw_port/healthz" >/dev/null && break; sleep 0.1; done

body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"What is the capital of France?"}]}'
curl -sf "http://127.0.0.1:$gw_port/v1/chat/completions" -H 'Content-Type: application/json' -d "$body" >/dev/null
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.body   = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

echo "| connections | requests/s | p50 | p90 | p99 |"
echo "|---:|---:|---:|---:|---:|"
for c in $CONNECTIONS; do
  echo "running exact-hit load at $c connection(s) for $DURATION" >&2
  out=$(wrk -t1 -c"$c" -d"$DURATION" --latency -s "$tmp/post.lua" "http://127.0.0.1:$gw_port/v1/chat/completions")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p90=$(awk '$1=="90%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "| $c | $rps | $p50 | $p90 | $p99 |"
done
echo
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'); wrk and isartor share the cores"
