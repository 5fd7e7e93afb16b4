# jobworker build. `make test` and `make run` work on a fresh machine with only the
# Swift toolchain: `deps` installs the C libraries and the Python venv they need.

SWIFT ?= swift
VENV ?= .venv
PYTHON ?= python3
PKGS := openssl liburing libnghttp2
APT_PKGS := libssl-dev liburing-dev libnghttp2-dev pkg-config openssl
BENCH_APT_PKGS := redis-server nghttp2-server gcc
GRPCIO_VERSION := 1.85.1
PROTOBUF_VERSION := 7.36.2
RUN_DIR ?= $(HOME)/.jobworker
# Extra jobd flags for make run, e.g. JOBD_FLAGS="--cgroup-root mine --listen 127.0.0.1:50052".
JOBD_FLAGS ?=
QUICK ?=
REPEAT ?=

.PHONY: all deps libs venv build api cli run test bench fmt clean

all: build

# deps: everything the tests need; libs: only the C libraries the binaries build against.
deps: libs venv

libs:
	@if ! pkg-config --exists $(PKGS) 2>/dev/null; then \
		echo "installing $(APT_PKGS) with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q grpcio==$(GRPCIO_VERSION) grpcio-tools==$(GRPCIO_VERSION) \
		protobuf==$(PROTOBUF_VERSION)
	touch $@

build: libs
	$(SWIFT) build -c release

api: build
	mkdir -p bin
	cp "$$($(SWIFT) build -c release --show-bin-path)/jobd" bin/jobd

cli: build
	mkdir -p bin
	cp "$$($(SWIFT) build -c release --show-bin-path)/jobctl" bin/jobctl

run: api cli
	@test -f $(RUN_DIR)/certs/ca.pem || bin/jobctl certs init $(RUN_DIR)/certs
	bin/jobd --state-dir $(RUN_DIR)/state \
		--tls-ca $(RUN_DIR)/certs/ca.pem \
		--tls-cert $(RUN_DIR)/certs/server.pem \
		--tls-key $(RUN_DIR)/certs/server-key.pem $(JOBD_FLAGS)

test: deps
	$(SWIFT) build --build-tests
	JOBWORKER_VENV=$(abspath $(VENV)) $(SWIFT) test --skip-build --disable-swift-testing

# The baselines need Redis (pub/sub, TLS) and nghttpd; the load generator is a release build.
bench: deps api cli
	@if ! command -v redis-server >/dev/null || ! command -v nghttpd >/dev/null; then \
		echo "installing $(BENCH_APT_PKGS) with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_APT_PKGS); \
	fi
	$(SWIFT) build -c release --product jobworker-loadgen
	QUICK=$(QUICK) REPEAT=$(REPEAT) perf/run

fmt:
	$(SWIFT) format --in-place --recursive --configuration .swift-format Sources Tests perf/loadgen Package.swift

clean:
	$(SWIFT) package clean
	rm -rf bin .build $(VENV)
