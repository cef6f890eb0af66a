# Sluice: every target works on a fresh Debian 12 machine (missing packages are installed).
#   make run      deps + optimised build + the embedded default pipeline (offline, no secrets)
#   make test     deps + ASan/UBSan build + every test (CTest)
#   make bench    deps + optimised build + benchmarks (results: docs/BENCHMARKS.md)
#   make install  PREFIX=/usr/local: the sluice binary, built-in plugins and the plugin SDK
#   make docs     regenerate the plugin reference in docs/plugins/

SHELL := /bin/bash
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
BUILD_TEST := build/test
BUILD_RELEASE := build/release
PIPELINE ?= pipelines/liquidations_replay.toml

# Debian 12 packages the build, tests and benchmarks need.
PACKAGES := cmake make g++ pkg-config binutils \
  libboost-dev libboost-filesystem-dev libzmq3-dev cppzmq-dev \
  flatbuffers-compiler libflatbuffers-dev libtomlplusplus-dev libspdlog-dev libfmt-dev \
  libsimdjson-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev \
  libbenchmark-dev libsqlite3-dev libssl-dev libkainjow-mustache-dev

WERROR := $(if $(filter true,$(CI)),ON,OFF)

.PHONY: deps build-test build-release run test bench install docs clean

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

bench: build-release
	bash bench/run_benchmarks.sh $(BUILD_RELEASE)

install: build-release
	cmake --install $(BUILD_RELEASE) --prefix $(PREFIX)

docs: build-release
	$(BUILD_RELEASE)/sluice plugins docs --out docs/plugins

clean:
	rm -rf build
