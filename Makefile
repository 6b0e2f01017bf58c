# The two commands a new user needs: `make run` and `make test`. Everything else is a step of them.
BUILD      ?= build
BUILD_TYPE ?= Release
JOBS       ?= $(shell nproc)
PYTEST     ?= python3 -m pytest

.PHONY: all deps build run test unit integration bench clean

all: build

deps:
	scripts/bootstrap.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)
	@ls -l $(BUILD)/isartor | awk '{printf "built %s (%.1f MB)\n", $$NF, $$5/1048576}'

run: build
	$(BUILD)/isartor up

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

integration: build
	ISARTOR_BIN=$(CURDIR)/$(BUILD)/isartor $(PYTEST) tests/integration -q

test: unit integration

bench: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DISARTOR_BUILD_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)
	ISARTOR_BUILD_DIR=$(BUILD) scripts/bench.sh $(BENCH_ARGS)

clean:
	rm -rf $(BUILD)
