#!/usr/bin/env bash
# Runs every libFuzzer target of a `make fuzz` build for SECONDS each, FUZZ_JOBS (default: the
# number of cores) at a time, and prints a table of each target's executions per second and
# coverage (libFuzzer's final "cov:" and "ft:" counters). New inputs go to BUILD/corpus/<target>/
# (the committed seeds in fuzz/corpus/<target>/ are only read); a crash is written to
# BUILD/artifacts/<target>/, the remaining targets still run, and the script exits 1.
# Usage: scripts/fuzz.sh BUILD SECONDS
set -uo pipefail
cd "$(dirname "$0")/.."
build="${1:?usage: scripts/fuzz.sh BUILD SECONDS}"
seconds="${2:?usage: scripts/fuzz.sh BUILD SECONDS}"
jobs="${FUZZ_JOBS:-$(nproc)}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
symbolizer=$(command -v llvm-symbolizer-19 || command -v llvm-symbolizer || true)
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer"

# One target; its exit status goes to BUILD/logs/<target>.rc.
run_target() {
  local bin="$1" name="${1##*/fuzz_}"
  local corpus="$build/corpus/$name" artifacts="$build/artifacts/$name" log="$build/logs/$name.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=20 -rss_limit_mb=3072 \
    -artifact_prefix="$artifacts/" "$corpus" "fuzz/corpus/$name" >"$log" 2>&1
  echo $? >"$build/logs/$name.rc"
}

targets=("$build"/fuzz/fuzz_*)
rm -f "$build"/logs/*.rc  # a target whose run dies before writing its own must not read an old one
printf '[fuzz] %d targets, %s s each, %d at a time\n' "${#targets[@]}" "$seconds" "$jobs" >&2
for bin in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  printf '[fuzz] %s\n' "${bin##*/fuzz_}" >&2
  run_target "$bin" &
done
wait

failed=0
printf '%-20s %10s %10s %8s %8s  %s\n' target runs exec/s cov ft status
for bin in "${targets[@]}"; do
  name="${bin##*/fuzz_}"
  log="$build/logs/$name.log"
  rc=$(cat "$build/logs/$name.rc" 2>/dev/null || echo 1)
  # "#123456 DONE cov: 1234 ft: 5678 corp: 90/12Kb lim: 4096 exec/s: 4115 rss: 80Mb"
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  execs=$(sed -nE 's/.* exec\/s: ([0-9]+).*/\1/p' <<<"$last")
  status=ok
  if [ "$rc" -ne 0 ]; then
    status="FAILED (rc $rc, see $log; inputs in $build/artifacts/$name/)"
    failed=1
  fi
  printf '%-20s %10s %10s %8s %8s  %s\n' "$name" "${runs:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$status"
done
exit "$failed"
