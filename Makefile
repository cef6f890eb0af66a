# Sluice: every target works on a fresh Debian 12 machine (missing packages are installed).
#   make run      deps + optimised build + the embedded default pipeline (offline, no secrets)
#   make test     deps + ASan/UBSan build + every test (CTest)
#   make fuzz     deps + clang/libFuzzer build + every fuzz target for FUZZ_SECONDS (docs/fuzzing.md)
#   make fuzz-smoke  the same, briefly (FUZZ_SMOKE_SECONDS each), plus every regression input
#   make test-tsan   deps + ThreadSanitizer build (build/tsan) + every test
#   make bench    deps + optimised build + benchmarks (results: docs/BENCHMARKS.md)
#   make install  PREFIX=/usr/local: the sluice binary, built-in plugins and the plugin SDK
#   make docs     regenerate the plugin reference in docs/plugins/

SHELL := /bin/bash
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
BUILD_TEST := build/test
BUILD_RELEASE := build/release
BUILD_FUZZ := build/fuzz
BUILD_TSAN := build/tsan
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
# Scratch space for what fuzzing finds (new corpus entries, crashes, logs): never the repo.
FUZZ_WORK ?= $(BUILD_FUZZ)/work
# Only these targets, e.g. FUZZ_TARGETS="expr event"; empty = every fuzz/*_fuzz.cpp.
FUZZ_TARGETS ?=
PIPELINE ?= pipelines/liquidations_replay.toml

# Debian 12 packages the build, tests and benchmarks need.
PACKAGES := cmake make g++ pkg-config binutils \
  libboost-dev libboost-filesystem-dev libzmq3-dev cppzmq-dev \
  flatbuffers-compiler libflatbuffers-dev libtomlplusplus-dev libspdlog-dev libfmt-dev \
  libsimdjson-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev \
  libbenchmark-dev libsqlite3-dev libssl-dev libkainjow-mustache-dev \
  clang-14 libfuzzer-14-dev libclang-rt-14-dev

WERROR := $(if $(filter true,$(CI)),ON,OFF)

.PHONY: deps build-test build-release build-fuzz build-tsan run test fuzz fuzz-smoke test-tsan \
  bench install docs clean

deps:
	@missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build-test: deps
	cmake -S . -B $(BUILD_TEST) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON \
	  -DSLUICE_WERROR=$(WERROR) -DSLUICE_BUILD_BENCH=OFF
	cmake --build $(BUILD_TEST) -j$(JOBS)

build-release: deps
	cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD_RELEASE) -j$(JOBS)

run: build-release
	$(BUILD_RELEASE)/sluice run $(PIPELINE)

test: build-test
	cd $(BUILD_TEST) && ASAN_OPTIONS=detect_leaks=1 ctest -j$(JOBS) --output-on-failure \
	  --timeout 600

# libFuzzer needs clang; every library is instrumented for coverage (SLUICE_FUZZ) and built
# with ASan + UBSan, at -O1 as libFuzzer recommends. Tests are not part of this build, and
# warnings are not errors here: make test's gcc build gates them.
build-fuzz: deps
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE= \
	  -DCMAKE_C_FLAGS="-O1 -g" -DCMAKE_CXX_FLAGS="-O1 -g" -DSLUICE_FUZZ=ON -DSLUICE_SANITIZE=ON \
	  -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF -DSLUICE_WERROR=OFF
	cmake --build $(BUILD_FUZZ) -j$(JOBS) --target sluice_fuzz_all

fuzz: build-fuzz
	bash fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_WORK) $(FUZZ_TARGETS)

fuzz-smoke: build-fuzz
	bash fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SMOKE_SECONDS) $(FUZZ_WORK)/smoke $(FUZZ_TARGETS)

# ThreadSanitizer cannot be combined with ASan, hence its own build tree; tests labelled
# no_tsan say in their CMakeLists why they cannot run under it (docs/fuzzing.md).
build-tsan: deps
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_TSAN=ON \
	  -DSLUICE_WERROR=$(WERROR) -DSLUICE_BUILD_BENCH=OFF
	cmake --build $(BUILD_TSAN) -j$(JOBS)

test-tsan: build-tsan
	cd $(BUILD_TSAN) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 \
	  suppressions=$(CURDIR)/fuzz/tsan.supp" ctest -j$(JOBS) --output-on-failure --timeout 1200 -LE no_tsan

bench: build-release
	bash bench/run_benchmarks.sh $(BUILD_RELEASE)

install: build-release
	cmake --install $(BUILD_RELEASE) --prefix $(PREFIX)

docs: build-release
	$(BUILD_RELEASE)/sluice plugins docs --out docs/plugins

clean:
	rm -rf build
