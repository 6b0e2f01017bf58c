#!/usr/bin/env bash
# Side-by-side benchmark (issue #5): Isartor vs LiteLLM proxy vs the upstream itself, plus the
# in-process component benchmarks; writes docs/benchmarks.md and docs/img/*.png.
# Builds nothing: `make bench` builds in Release with -DISARTOR_BUILD_BENCH=ON first.
# Usage: scripts/bench.sh [--quick] [bench/run.py options; --help lists them]
#   ISARTOR_BUILD_DIR=build   the build tree holding isartor and bench/fake_upstream
#   ISARTOR_BIN=...           another isartor binary
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/run.py "$@"
