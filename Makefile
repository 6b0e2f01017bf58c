# The two commands a new user needs: `make run` and `make test`. Everything else is a step of them.
CUDA       ?= 0
# NATIVE=1: tuned for this machine's CPU (-march=native, AMX still off); runs only on CPUs like it.
NATIVE     ?= 0
# SANITIZE=address,undefined or SANITIZE=thread: the project's code and tests under those
# sanitizers, in build-asan/ or build-tsan/ (README "Fuzzing and sanitizers"); e.g.
# `make unit SANITIZE=address,undefined`.
SANITIZE   ?=
SAN_SUFFIX  = $(if $(SANITIZE),-$(if $(findstring thread,$(SANITIZE)),tsan,asan))
BUILD      ?= build$(if $(filter 1,$(NATIVE)),-native)$(if $(filter 1,$(CUDA)),-cuda)$(SAN_SUFFIX)
BUILD_TYPE ?= $(if $(SANITIZE),RelWithDebInfo,Release)
JOBS       ?= $(shell nproc)
PYTEST     ?= python3 -m pytest

.PHONY: all deps build run test unit integration bench soak clean

all: build

deps:
	ISARTOR_CUDA=$(CUDA) ISARTOR_NATIVE=$(NATIVE) scripts/bootstrap.sh

# CUDA=1: llama.cpp's CUDA backend into build-cuda/ (needs nvcc; runs on CPU without a GPU).
CMAKE_FLAGS = $(if $(filter 1,$(CUDA)),-DISARTOR_CUDA=ON) $(if $(filter 1,$(NATIVE)),-DISARTOR_NATIVE=ON) \
              $(if $(SANITIZE),-DISARTOR_SANITIZE=$(SANITIZE))
# A finding fails the test that made it, with a stack trace.
export ASAN_OPTIONS  ?= detect_leaks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS  ?= halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)
	@ls -l $(BUILD)/isartor | awk '{printf "built %s (%.1f MB)\n", $$NF, $$5/1048576}'

run: build
	$(BUILD)/isartor up

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

integration: build
	ISARTOR_BIN=$(CURDIR)/$(BUILD)/isartor $(PYTEST) tests/integration -q

deploy-test: build
	ISARTOR_BIN=$(CURDIR)/$(BUILD)/isartor $(PYTEST) tests/deploy -q

# `make test` also runs the unit tests under ASan + UBSan (build-asan/), so that CI sees memory
# errors and undefined behaviour. (`make fuzz-short` is not in it yet: README "Fuzzing".)
.PHONY: unit-asan
unit-asan:
	$(MAKE) unit SANITIZE=address,undefined

test: unit integration deploy-test unit-asan

# Release artefacts (README "Installing"): dist/isartor-<version>-linux-<arch>.tar.gz + .sha256,
# dist/isartor_<version>_<debarch>.deb; install puts bin/isartor and share/isartor/ under
# $(DESTDIR)$(PREFIX).
PREFIX ?= /usr/local
.PHONY: dist deb install deploy-test
dist: build
	ISARTOR_BIN=$(BUILD)/isartor scripts/dist.sh tar

deb: build
	ISARTOR_BIN=$(BUILD)/isartor scripts/dist.sh deb

install: build
	ISARTOR_BIN=$(BUILD)/isartor DESTDIR=$(DESTDIR) scripts/dist.sh install $(PREFIX)

# The container image (docker/Dockerfile) from the `make dist` archive, built and run with podman +
# runc on a debootstrapped Debian 12 base; installs podman, runc, debootstrap. Not part of `make test`.
.PHONY: test-container
test-container:
	scripts/container_test.sh

# libFuzzer (README "Fuzzing and sanitizers"): every target in fuzz/ for FUZZ_SECONDS each, built
# with Debian's clang 19 (installed by the bootstrap with ISARTOR_FUZZ=1) under ASan and UBSan
# into build-fuzz/. fuzz-short: 30 s each.
FUZZ_SECONDS ?= 600
FUZZ_BUILD   ?= build-fuzz
.PHONY: fuzz fuzz-short fuzz-build
fuzz-build:
	ISARTOR_FUZZ=1 scripts/bootstrap.sh apt
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-19 \
	  -DCMAKE_CXX_COMPILER=clang++-19 -DISARTOR_FUZZ=ON -DISARTOR_SANITIZE=address,undefined
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all

fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-short:
	$(MAKE) fuzz FUZZ_SECONDS=30

bench: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DISARTOR_BUILD_BENCH=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	ISARTOR_BUILD_DIR=$(BUILD) scripts/bench.sh $(BENCH_ARGS)

# bench/soak.py (README "Soak test"): 10 minutes of mixed load by default (SOAK_ARGS="--minutes N").
.PHONY: soak
soak: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DISARTOR_BUILD_BENCH=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS) --target isartor fake_upstream
	python3 bench/soak.py --build-dir $(BUILD) $(SOAK_ARGS)

clean:
	rm -rf $(BUILD)
